"""Where an archive's links lead once unpacked: inside the extraction folder, or out of it.

A link member is harmless while it points at another place inside the
archive (trainers and `tarfile` of a folder keep relative symlinks such as
`latest -> checkpoint-500`). It is an attack when the extractor would follow
it out of the folder: an absolute target, a `..` that climbs above the root,
or a chain of links that does so only once every link is followed (`a -> b`,
`b -> ../..`). Targets are resolved the way the file system resolves them
after extraction: component by component, each component that is a link
replaced by where it points, so the verdict does not depend on member order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.formats.archives import members
from auditor.formats.contract import ScanContext

MAX_HOPS = 64  # more link substitutions than this: a loop, or built to exhaust the resolver
MAX_STEPS = 1_000_000  # path components walked per archive, all links together
MAX_TARGET = 4096  # PATH_MAX: a symlink's data longer than this is not a path


def parts(path: str) -> tuple[str, ...]:
    """A member path as components, with separators normalised and `.`/empty ones dropped."""
    return tuple(p for p in path.replace("\\", "/").split("/") if p not in ("", "."))


@dataclass(frozen=True)
class Link:
    name: str
    target: str
    hard: bool  # a tar hard link: target relative to the archive root
    offset: int | None


@dataclass
class Links:
    """The link members of one archive, judged together once every member is known."""

    found: list[Link] = field(default_factory=list)

    def add(self, name: str, target: str, hard: bool, offset: int | None) -> None:
        self.found.append(Link(name, target, hard, offset))

    def report(self, ctx: ScanContext) -> None:
        """Flag every link whose target, followed through the others, leaves the root."""
        table = {parts(link.name): link.target for link in self.found if not link.hard}
        steps = [0]
        for link in self.found:
            walk = Walk(table, steps)
            base = () if link.hard else walk.resolve((), "/".join(parts(link.name)[:-1]))
            if base is not None and walk.resolve(base, link.target) is not None:
                continue
            kind = "hard link" if link.hard else "symbolic link"
            if steps[0] > MAX_STEPS:
                members.add_at(ctx, members.LINK, link.name, f"{kind} to {link.target!r} not "
                               f"resolved: more than {MAX_STEPS} path steps in the archive's "
                               f"links", link.offset)
                ctx.limit_hit()
            else:
                members.add_at(ctx, members.LINK, link.name, f"{kind} to {link.target!r} "
                               f"leads outside the archive once extracted", link.offset)


@dataclass
class Walk:
    """One link's resolution: its substitutions counted for loops, its steps for the archive
    (the OCI source resolves its layers' links with it too, as a runtime's file system)."""

    table: dict[tuple[str, ...], str]
    steps: list[int]  # shared by every link of the archive
    hops: int = 0

    def resolve(self, base: tuple[str, ...], target: str) -> tuple[str, ...] | None:
        """Where `target`, read from folder `base`, lands; None when it leaves the root.

        A resolution that needs more than MAX_HOPS substitutions, or more steps
        than the archive has left, is None too: the extractor fails or loops, and
        the scanner cannot vouch for where it ends.
        """
        norm = target.replace("\\", "/")
        absolute = norm.startswith("/") or members.DRIVE.match(norm) is not None
        if len(norm) > MAX_TARGET or absolute or "\x00" in norm:
            return None
        here = list(base)
        for comp in parts(norm):
            self.steps[0] += 1
            if self.steps[0] > MAX_STEPS:
                return None
            if comp == "..":
                if not here:
                    return None
                here.pop()
                continue
            here.append(comp)
            inner = self.table.get(tuple(here))
            if inner is not None:
                self.hops += 1
                if self.hops > MAX_HOPS:
                    return None
                landed = self.resolve(tuple(here[:-1]), inner)
                if landed is None:
                    return None
                here = list(landed)
        return tuple(here)
