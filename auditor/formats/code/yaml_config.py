"""YAML configs (`*.yaml`, `*.yml`): Python tags that an unsafe loader turns into calls.

Model repositories ship YAML configs (training recipes, NeMo/Hydra configs,
old Keras `model_from_yaml` models), and PyYAML's unsafe loaders
(`yaml.load` with `Loader`/`UnsafeLoader`, `yaml.unsafe_load`, `FullLoader`
before 5.4: CVE-2020-14343; Keras `model_from_yaml`: CVE-2021-37678) build
`!!python/object/apply:os.system [...]` into a call. Text alone would pass
such a file, so the name claims it and the YAML parser reads it into events:
tags come out resolved (`%TAG` handles, `!<...>` verbatim tags and
%-escapes decoded) and nothing is constructed. The same events carry the
Hydra `_target_` mappings (`instantiate`), which are code too.
"""

from __future__ import annotations

from typing import BinaryIO

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


def sniff(head: bytes, name: str) -> bool:
    return name.lower().endswith(_EXTENSIONS) and is_text(head)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    import yaml

    data = read_capped(f, ctx.limits.max_json_bytes, "YAML")
    parser = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
    tags = 0
    sites = instantiate.YamlSites()
    try:
        for event in yaml.parse(data, Loader=parser):
            sites.feed(event)
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
    return ctx.result


SPEC = FormatSpec(
    id=FormatId.YAML, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("python_tags", "instantiation_targets"),
)
