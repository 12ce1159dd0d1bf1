"""Instantiation targets (`_target_`) in configs: found at any depth, graded as calls.

Hydra's `instantiate`, NeMo's `from_config_dict` and the trainers built on them
import the dotted name in a mapping's `_target_` and call it with the
mapping's other keys (`_args_` positionally; with `_partial_` the call is
deferred, not avoided); Stable Diffusion's `target` + `params`, NeMo's
legacy `cls` + `params` and LightningCLI's `class_path` + `init_args` are the
same call in other spellings. A config is
therefore code when it names something other than a framework class,
whatever file it sits in: a YAML recipe, a JSON config, a `.nemo` or zip
bundle (their members come here through the engine), or a string in
safetensors `__metadata__`.

YAML is read as parser events, never composed or constructed: anchors,
aliases and `<<` merge keys are followed through constant-size summaries, so
an alias bomb costs what its text costs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats.code import targets
from auditor.formats.contract import ScanContext
from auditor.formats.pickle.imports import Tier, classify, tiers_for
from auditor.model import Rule, Severity

DANGEROUS = Rule(
    "AUD-YAML-003", Severity.CRITICAL,
    "Config instantiates a process, code, file or network function (_target_)",
    "Hydra/OmegaConf instantiate imports the _target_ and calls it with the config's values "
    "when the config is loaded (so do target + params, NeMo's cls + params and LightningCLI's "
    "class_path + init_args): os.system, subprocess, eval, file writes or downloads named "
    "there run with the loader's privileges (with _partial_ they run when the program calls "
    "the returned function).",
    "Do not load this config; targets must be framework classes (torch.nn, torch.optim, "
    "transformers, nemo.collections).",
)
UNLISTED = Rule(
    "AUD-YAML-004", Severity.HIGH, "Config instantiates a target outside the framework classes",
    "A _target_ that is not a class of an installed ML framework is a call into code the "
    "audit cannot vouch for: a module of the repository, another package's function, a method "
    "that downloads or loads (from_pretrained).",
    "Review what the target does; name a framework class instead, or pin this config by "
    "digest in policy once reviewed.",
)
COMPUTED = Rule(
    "AUD-YAML-005", Severity.HIGH, "Config instantiation target is not a plain dotted name",
    "A _target_ built by interpolation (${...}, resolvers), given as a non-string, or held "
    "in metadata that does not parse is decided at load time: what is called cannot be "
    "known from the file.",
    "Write the target as a literal dotted class name.",
)
RULES = (DANGEROUS, UNLISTED, COMPUTED)

TARGET_KEY = "_target_"
# The other spellings, each with the key that carries its arguments: `target` + `params`
# (CompVis/Stability `instantiate_from_config`, at every level of Stable Diffusion configs),
# NeMo's legacy `cls` + `params` (rewritten to `_target_`), and jsonargparse's `class_path` +
# `init_args` (LightningCLI's saved config.yaml). These words have other uses, so an unlisted
# name counts only beside its arguments key; a dangerous one counts alone.
OTHER_KEYS = {"target": "params", "cls": "params", "class_path": "init_args"}
# Keys whose values the grading or the finding's detail read; nothing else is kept.
TRACKED = frozenset({TARGET_KEY, "_partial_", "_args_", "path", *OTHER_KEYS,
                     *OTHER_KEYS.values()})
_MERGE_KEY = "<<"
MAX_FINDINGS = 20
MAX_ARGS_SHOWN = 3
MAX_NAME_PARTS = 64
MAX_SEQUENCE_KEPT = 64  # items of a YAML sequence kept for _args_ and merge lists
_TRUE = frozenset({"true", "yes", "on", "1"})
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@dataclass(frozen=True)
class Site:
    """One mapping that instantiates: where it is and what its tracked keys hold."""

    where: str
    keys: dict[str, Any]  # the tracked keys: strings, tuples of strings, or a container marker
    key: str = TARGET_KEY  # which key names the target


def site_key(keys: dict[str, Any]) -> str | None:
    """The key that makes a mapping with these tracked keys instantiate, if any."""
    if TARGET_KEY in keys:
        return TARGET_KEY
    for key in OTHER_KEYS:
        value = keys.get(key)
        if isinstance(value, str) and _dotted(value):
            return key
    return None


def _dotted(value: str) -> bool:
    parts = value.split(".")
    return len(parts) > 1 and all(p.isidentifier() for p in parts)


@dataclass(frozen=True)
class Grade:
    """The rule a reference breaks (None when it is allowed) and why."""

    rule: Rule | None
    reason: str


def grade(name: Any, params: dict[str, Any] | None = None) -> Grade:
    """How a target name (or a library.Class reference of a loader) is judged."""
    if not isinstance(name, str):
        return Grade(COMPUTED, f"not a string ({type(name).__name__})")
    if "${" in name:
        return Grade(COMPUTED, "interpolated at load time")
    path = (params or {}).get("path")
    if name in targets.LOOKUPS and isinstance(path, str):  # the looked-up name is what runs
        inner = grade(path)
        return Grade(inner.rule, f"{name} of {path!r}: {inner.reason or 'allowed'}")
    parts = name.split(".")
    if len(parts) > MAX_NAME_PARTS:  # judged part by part below, quadratically
        return Grade(COMPUTED, f"{len(parts)} dotted parts: not a plausible import path")
    why = _dangerous(parts)
    if why:
        return Grade(DANGEROUS, why)
    if _allowed(parts):
        return Grade(None, "")
    return Grade(UNLISTED, "not a framework class on the allowlist")


def _dangerous(parts: list[str]) -> str:
    table = _target_table()
    for start in range(len(parts)):
        for end in range(len(parts), start, -1):
            why = table.get(".".join(parts[start:end]))
            if why:
                return why
    if len(parts) > 1:
        verdict = classify(parts[0], ".".join(parts[1:]), tiers_for())
        if verdict.tier is Tier.DANGEROUS:
            return verdict.reason
    return ""


@cache
def _target_table() -> dict[str, str]:
    return {path: why for why, paths in targets.DANGEROUS.items() for path in paths}


def _allowed(parts: list[str]) -> bool:
    name = ".".join(parts)
    if name in targets.EXACT:
        return True
    if not all(p.isidentifier() for p in parts):
        return False
    for package in targets.FUNCTION_PACKAGES:
        if name.rsplit(".", 1)[0] == package:
            return True
    for package in targets.CLASS_PACKAGES:
        depth = package.count(".") + 1
        if parts[:depth] == package.split(".") and len(parts) > depth:
            *modules, last = parts[depth:]
            if all(m[:1].islower() or m.startswith("_") for m in modules) and _class_like(last):
                return True
    return False


def _class_like(name: str) -> bool:
    stripped = name.lstrip("_")
    return stripped[:1].isupper()


def report(sites: Iterable[Site], ctx: ScanContext,
           resolve: Callable[[str], Any] | None = None) -> int:
    """Findings for the sites that are not allowed; returns how many sites were seen.

    `resolve` maps an absolute config path to its value, so a target that only
    interpolates another key (`${cmd}`) is judged by what it names too.
    """
    seen = shown = hidden = 0
    worst_hidden = UNLISTED
    for site in sites:
        seen += 1
        keys = site.keys
        verdict = grade(keys.get(site.key), keys)
        if verdict.rule is COMPUTED and resolve is not None:
            verdict = _through_reference(keys.get(site.key), resolve) or verdict
        if verdict.rule is None or (
                verdict.rule is UNLISTED and site.key in OTHER_KEYS
                and OTHER_KEYS[site.key] not in keys):
            continue
        if shown >= MAX_FINDINGS:
            hidden += 1
            if verdict.rule.severity > worst_hidden.severity:
                worst_hidden = verdict.rule
            continue
        shown += 1
        ctx.add(verdict.rule, _detail(site, verdict.reason))
    if hidden:
        ctx.add(worst_hidden, f"and {hidden} more instantiation targets")
    return seen


def _through_reference(target: Any, resolve: Callable[[str], Any]) -> Grade | None:
    """The grade of what a whole-value `${a.b}` names, when that is dangerous."""
    match = _REFERENCE.fullmatch(target) if isinstance(target, str) else None
    if match is None:
        return None
    inner = grade(resolve(match[1]))
    if inner.rule is not DANGEROUS:
        return None
    return Grade(DANGEROUS, f"interpolates {match[1]} = {resolve(match[1])!r}: {inner.reason}")


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted path of a parsed JSON value, or None."""
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _detail(site: Site, reason: str) -> str:
    keys = site.keys
    text = f"{site.where or '(top level)'}: {site.key} {keys.get(site.key)!r}"
    if str(keys.get("_partial_", "")).lower() in _TRUE:
        text += " (_partial_)"
    args = keys.get("_args_")
    if isinstance(args, tuple) and args:
        text += f" _args_ {list(args[:MAX_ARGS_SHOWN])!r}"
    return f"{text}: {reason}"


def object_sites(doc: Any, where: str = "") -> Iterator[Site]:
    """Every mapping with a `_target_` in a parsed JSON value, at any depth (iteratively)."""
    stack: list[tuple[Any, str]] = [(doc, where)] if isinstance(doc, dict | list) else []
    while stack:
        value, here = stack.pop()
        if isinstance(value, dict):
            keys = {k: _plain(value[k]) for k in TRACKED if k in value}
            key = site_key(keys)
            if key is not None:
                yield Site(here, keys, key)
            stack.extend((v, f"{here}.{k}" if here else str(k)) for k, v in value.items()
                         if isinstance(v, dict | list))
        else:  # only containers are pushed
            stack.extend((v, f"{here}[{i}]") for i, v in enumerate(value)
                         if isinstance(v, dict | list))


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return value


class _Container:
    """A tracked key whose value is a mapping: kept only as a marker."""

    def __repr__(self) -> str:
        return "<mapping>"


_CONTAINER = _Container()


@dataclass
class _Frame:
    is_map: bool
    where: str
    anchor: str | None
    own: dict[str, Any] = field(default_factory=dict)
    merges: list[dict[str, Any]] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)  # sequence: scalar strings, mapping summaries
    key: Any = None
    expect_key: bool = True


@dataclass(frozen=True)
class _Map:
    keys: dict[str, Any]  # effective tracked keys (merges applied)


@dataclass(frozen=True)
class _Seq:
    items: tuple[Any, ...]


class YamlSites:
    """Feed it a YAML file's parser events; `sites` collects the instantiating mappings."""

    def __init__(self, where: str = "") -> None:
        self.where = where  # path of the document itself (a metadata key)
        self.sites: list[Site] = []
        self.names: dict[str, str] = {}  # absolute path -> a dotted name it holds, for ${path}
        self._stack: list[_Frame] = []
        self._anchors: dict[str, Any] = {}

    def feed(self, event: Any) -> None:
        import yaml

        if isinstance(event, yaml.DocumentStartEvent):
            self._stack.clear()
            self._anchors.clear()
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            where = self._child_where()
            self._stack.append(_Frame(isinstance(event, yaml.MappingStartEvent), where,
                                      event.anchor))
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            frame = self._stack.pop()
            summary = self._close(frame)
            if frame.anchor:
                self._anchors[frame.anchor] = summary
            self._value(summary)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                self._anchors[event.anchor] = event.value
            self._value(event.value)
        elif isinstance(event, yaml.AliasEvent):
            self._value(self._anchors.get(event.anchor))

    def _child_where(self) -> str:
        if not self._stack:
            return self.where
        parent = self._stack[-1]
        if not parent.is_map:
            return f"{parent.where}[{len(parent.items)}]"
        if parent.expect_key:
            return f"{parent.where}.<key>"
        key = parent.key if isinstance(parent.key, str) else "<key>"
        return f"{parent.where}.{key}" if parent.where else key

    def _close(self, frame: _Frame) -> _Map | _Seq:
        if not frame.is_map:
            return _Seq(tuple(frame.items))
        keys: dict[str, Any] = {}
        for merged in frame.merges:  # earlier merged mappings win over later ones
            for k, v in merged.items():
                keys.setdefault(k, v)
        keys.update(frame.own)  # the mapping's own keys win over merged ones
        key = site_key(keys)
        if key is not None:
            self.sites.append(Site(frame.where, keys, key))
        return _Map(keys)

    def _value(self, value: Any) -> None:
        if not self._stack:
            return
        frame = self._stack[-1]
        if not frame.is_map:
            if isinstance(value, str | _Map) and len(frame.items) < MAX_SEQUENCE_KEPT:
                frame.items.append(value)
            return
        if frame.expect_key:
            frame.key, frame.expect_key = value, False
            return
        frame.expect_key = True
        if frame.key == _MERGE_KEY:
            merged = value.items if isinstance(value, _Seq) else (value,)
            frame.merges.extend(m.keys for m in merged if isinstance(m, _Map))
        elif isinstance(frame.key, str) and frame.key in TRACKED:
            frame.own[frame.key] = _summary_value(value)
        if isinstance(frame.key, str) and isinstance(value, str) and _dotted(value):
            self.names[f"{frame.where}.{frame.key}" if frame.where else frame.key] = value


def _summary_value(value: Any) -> Any:
    if isinstance(value, _Seq):
        return tuple(v for v in value.items if isinstance(v, str))
    if isinstance(value, _Map):
        return _CONTAINER
    return value


def text_sites(text: str, where: str) -> tuple[list[Site], bool]:
    """Sites in a string that holds a JSON or YAML document, and whether it failed to parse.

    safetensors `__metadata__` values are strings, and tools keep whole configs
    in them; a loader that instantiates from one reads it as JSON or YAML.
    """
    if ":" not in text:  # a mapping needs a literal ':' in JSON and YAML alike
        return [], False
    import yaml

    try:
        value, _ = loads_strict(text.encode())
        return list(object_sites(value, where)), False
    except (FormatError, LimitExceeded):
        pass
    found = YamlSites(where)
    parser = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
    try:
        for event in yaml.parse(text, Loader=parser):
            found.feed(event)
    except yaml.YAMLError:
        return [], TARGET_KEY in text
    return found.sites, False
