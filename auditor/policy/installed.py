"""The policies shipped with auditor, by name: `--policy baseline` works wherever it is installed.

The repository's `policies/` folder is the source; the package reaches it through
`auditor/policies` (a link in the repository, real files in a wheel), so a pip
install carries the same files a clone has. A `--policy` value that names an
existing file is that file; a bare name (no folder, no `.yaml`) that is not a file
is looked up here. Anything else is an error that lists what is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditor.errors import ConfigError

FOLDER = Path(__file__).resolve().parent.parent / "policies"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Installed:
    """One shipped policy: how it is asked for, what it is for, how many rules it has."""

    name: str
    purpose: str
    rules: int
    path: Path


def names() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def resolve(spec: str | Path) -> Path:
    """The policy file `spec` means: an existing path, else a shipped policy's name."""
    path = Path(spec)
    if path.is_file():
        return path
    text = str(spec)
    bare = "/" not in text and "\\" not in text and not text.endswith(SUFFIXES)
    if bare and (FOLDER / f"{text}.yaml").is_file():
        return FOLDER / f"{text}.yaml"
    known = ", ".join(names()) or "none"
    raise ConfigError(f"{spec}: no such policy file, and no installed policy of that name "
                      f"(installed: {known}; `auditor policy list`)")


def available() -> list[Installed]:
    """Every shipped policy, parsed (a broken shipped policy is an error, not a gap)."""
    from auditor.policy.lint import lint_policy
    from auditor.policy.schema import raise_first

    out = []
    for name in names():
        path = FOLDER / f"{name}.yaml"
        policy, problems = lint_policy(path)
        raise_first(problems)
        assert policy is not None
        out.append(Installed(name, _one_line(policy.description), len(policy.rules), path))
    return out


def _one_line(description: str, width: int = 90) -> str:
    """The description's first sentence, cut at a word to fit one line of a listing."""
    text = " ".join(description.split()).split(". ")[0].rstrip(".")
    if len(text) <= width:
        return text
    return text[:width].rsplit(" ", 1)[0].rstrip(",;") + " …"
