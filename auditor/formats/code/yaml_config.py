"""YAML configs (`*.yaml`, `*.yml`): Python tags that an unsafe loader turns into calls.

Model repositories ship YAML configs (training recipes, NeMo/Hydra configs,
old Keras `model_from_yaml` models), and PyYAML's unsafe loaders
(`yaml.load` with `Loader`/`UnsafeLoader`, `yaml.unsafe_load`, `FullLoader`
before 5.4: CVE-2020-14343; Keras `model_from_yaml`: CVE-2021-37678) build
`!!python/object/apply:os.system [...]` into a call. Text alone would pass
such a file, so the name claims it and the YAML parser reads it into events:
tags come out resolved (`%TAG` handles, `!<...>` verbatim tags and
%-escapes decoded) and nothing is constructed. The same events carry the
Hydra `_target_` mappings (`instantiate`), which are code too, and the
model ids a mergekit recipe merges (`merge_models`), which are lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, BinaryIO

from auditor.errors import FormatError
from auditor.formats._lib.streams import read_capped
from auditor.formats._lib.text import is_text
from auditor.formats.code import instantiate
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

PYTHON_TAG = Rule(
    "AUD-YAML-001", Severity.CRITICAL, "YAML config carries Python object tags",
    "Tags under tag:yaml.org,2002:python/ make unsafe YAML loaders import modules and call "
    "functions (python/object/apply:os.system) while building the config: code execution on "
    "load, the YAML equivalent of a malicious pickle.",
    "Do not load this file; configs need only plain scalars, lists and mappings.",
)
MALFORMED = Rule(
    "AUD-YAML-002", Severity.MEDIUM, "YAML config does not parse",
    "A config the scanner cannot parse cannot be checked for Python tags; PyYAML will refuse "
    "it too, but other YAML readers may be more lenient.",
    "Fix the YAML syntax.",
)
RULES = (PYTHON_TAG, MALFORMED, *instantiate.RULES)

PYTHON_TAG_PREFIX = "tag:yaml.org,2002:python/"
MAX_TAG_FINDINGS = 5
_EXTENSIONS = (".yaml", ".yml")
MAX_MERGE_MODELS = 64  # model ids kept from a mergekit recipe
MAX_MODEL_ID = 200  # characters kept of one model id (the org part survives a cut)
MAX_ANCHORS = 256  # scalar anchors remembered for aliases in model positions

# Where mergekit reads a model reference (`[]` is any sequence item): the recipe's
# `base_model`, each `models[].model` and each `slices[].sources[].model`.
_MODEL_ROOTS = (("base_model",), ("models", "[]", "model"),
                ("slices", "[]", "sources", "[]", "model"))
# A reference is a string (`org/a`, `org/a+org/lora`, `org/a@rev`) or a mapping of
# mergekit's ModelReference: `{model: {path}, lora: {path}}`, or a ModelPath `{path}`.
_MODEL_SUFFIXES = ((), ("path",), ("model",), ("model", "path"), ("lora",), ("lora", "path"))
_MODEL_PATHS = frozenset(root + suffix for root in _MODEL_ROOTS for suffix in _MODEL_SUFFIXES)


def sniff(head: bytes, name: str) -> bool:
    return name.lower().endswith(_EXTENSIONS) and is_text(head)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    import yaml

    data = read_capped(f, ctx.limits.max_json_bytes, "YAML")
    parser = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
    tags = 0
    sites = instantiate.YamlSites()
    merge = _MergeModels()
    try:
        for event in yaml.parse(data, Loader=parser):
            sites.feed(event)
            merge.feed(event)
            tag = getattr(event, "tag", None)
            if isinstance(tag, str) and tag.startswith(PYTHON_TAG_PREFIX):
                tags += 1
                if tags <= MAX_TAG_FINDINGS:
                    line = event.start_mark.line + 1 if event.start_mark else None
                    ctx.add(PYTHON_TAG, f"line {line}: !!{tag.removeprefix('tag:yaml.org,2002:')}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FormatError(f"{where}{problem}", None, MALFORMED) from None
    ctx.result.facts["python_tags"] = tags
    if found := instantiate.report(sites.sites, ctx, sites.names.get):
        ctx.result.facts["instantiation_targets"] = found
    if merge.recipe and merge.found:
        ctx.result.facts["merge_models"] = merge.found
    return ctx.result


@dataclass
class _Node:
    """An open mapping or sequence: its path from the document root and the key being read."""

    is_map: bool
    path: tuple[str, ...]
    key: str | None = None
    expect_key: bool = True


@dataclass
class _MergeModels:
    """Feed it parser events; `found` collects the scalars in mergekit's model positions.

    Only paths and scalars are tracked (a stack as deep as the document), so
    nothing is built from the YAML; a scalar alias is followed to its anchor.
    `recipe` is set by a top-level `merge_method`, which every mergekit recipe
    has: other configs (an axolotl `base_model`) are not merges.
    """

    found: list[str] = field(default_factory=list)
    recipe: bool = False
    _stack: list[_Node] = field(default_factory=list)
    _anchors: dict[str, str] = field(default_factory=dict)

    def feed(self, event: Any) -> None:
        import yaml

        if isinstance(event, yaml.DocumentStartEvent):
            self._stack.clear()
            self._anchors.clear()
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._stack.append(_Node(isinstance(event, yaml.MappingStartEvent), self._child()))
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self._stack.pop()
            self._value(None)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor and len(self._anchors) < MAX_ANCHORS:
                self._anchors[event.anchor] = event.value
            self._value(event.value)
        elif isinstance(event, yaml.AliasEvent):
            self._value(self._anchors.get(event.anchor))

    def _child(self) -> tuple[str, ...]:
        """Path of the value that starts now (`<key>` for a mapping used as a key)."""
        if not self._stack:
            return ()
        node = self._stack[-1]
        if not node.is_map:
            return (*node.path, "[]")
        return (*node.path, "<key>" if node.expect_key or node.key is None else node.key)

    def _value(self, value: str | None) -> None:
        """A scalar (or, with None, a closed collection) took the next place in its parent."""
        if not self._stack:
            return
        node = self._stack[-1]
        if node.is_map and node.expect_key:
            node.key, node.expect_key = value, False
            return
        where = self._child()
        if value is not None and where in _MODEL_PATHS and len(self.found) < MAX_MERGE_MODELS:
            self.found.append(value[:MAX_MODEL_ID])
        self.recipe = self.recipe or where == ("merge_method",)
        if node.is_map:
            node.expect_key = True


SPEC = FormatSpec(
    id=FormatId.YAML, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("python_tags", "instantiation_targets", "merge_models"),
)
