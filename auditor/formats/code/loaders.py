"""Class references that loaders import from JSON configs, beyond `auto_map`.

Three loaders import a class named in a config and call it, so a config that
names something outside the framework is remote code as surely as `auto_map`:

- diffusers `model_index.json`: each component is `[library, class]`; a
  library that is neither diffusers, transformers nor a diffusers pipeline
  module is imported from the component folder's `<library>.py` (custom
  component) or from any installed package; a list `_class_name` and
  `custom_pipeline` load a pipeline's code from the repository, another
  repository or the community collection;
- PEFT `adapter_config.json` `auto_mapping`: `importlib.import_module(
  parent_library)` then `getattr(base_model_class)`;
- sentence-transformers `modules.json`: each `type` is imported by its dotted
  name and its `load(path)` is called.

Every reference is graded like an instantiation target (`instantiate.grade`):
a framework class passes, a process/exec/file/network name is critical.
"""

from __future__ import annotations

from typing import Any

from auditor.formats.code import instantiate, targets
from auditor.formats.code.python import path_outside
from auditor.formats.contract import ScanContext
from auditor.model import Rule, Severity

ST_MODULE = Rule(
    "AUD-JSON-004", Severity.HIGH,
    "modules.json imports a class outside sentence-transformers or a path outside the model",
    "sentence-transformers imports each module's `type` by its dotted name and calls its "
    "load(path): any installed function with a load (joblib.numpy_pickle unpickles) runs on "
    "any file the path names, and custom types are code that was not part of the review.",
    "Use sentence_transformers module types with paths inside the model folder.",
)
DIFFUSERS_CODE = Rule(
    "AUD-JSON-005", Severity.HIGH,
    "Diffusers pipeline loads a component or pipeline from code outside diffusers",
    "A model_index.json component whose library is not diffusers, transformers or a diffusers "
    "pipeline module is imported from a Python file of the repository (custom component) or "
    "any installed package; a list _class_name or a custom_pipeline runs pipeline code from "
    "this or another repository. That code runs when the pipeline loads.",
    "Use diffusers/transformers classes; review and pin the custom code by digest otherwise.",
)
PEFT_AUTO_MAPPING = Rule(
    "AUD-JSON-006", Severity.HIGH, "PEFT auto_mapping imports a class outside transformers",
    "AutoPeftModel imports auto_mapping's parent_library and calls the named class's "
    "from_pretrained: a module of the repository or another package runs on load (PEFT "
    "versions before its import allowlist do so without asking).",
    "Save the adapter with a task_type on a transformers model, or remove auto_mapping.",
)
RULES = (ST_MODULE, DIFFUSERS_CODE, PEFT_AUTO_MAPPING)

ST_MODULE_FILE = "modules.json"
ST_PACKAGE = "sentence_transformers"
MODEL_INDEX_FILES = ("model_index.json", "modular_model_index.json")
_BY_NAME = {ST_MODULE_FILE: ST_MODULE, **dict.fromkeys(MODEL_INDEX_FILES, DIFFUSERS_CODE)}
_REPO_FILE = "a Python module of this repository or an installed package"


def check(value: Any, ctx: ScanContext, complete: bool = True) -> None:
    """The loader references of one parsed JSON file.

    `complete` is False for a file too big to parse whole (only its top-level
    keys were kept): the files a loader reads by name are then refused, since
    their references could not be read.
    """
    by_name = _BY_NAME.get(ctx.name)
    if by_name is not None and not complete:
        ctx.add(by_name, "too large to parse whole: the classes it names were not read")
        return
    if ctx.name == ST_MODULE_FILE:
        _check_st_modules(value, ctx)
    if not isinstance(value, dict):
        return
    if ctx.name in MODEL_INDEX_FILES:  # what DiffusionPipeline.from_pretrained reads
        _check_model_index(value, ctx)
    if value.get("auto_mapping") is not None:
        _check_auto_mapping(value["auto_mapping"], ctx)


def _add(ctx: ScanContext, rule: Rule, verdict: instantiate.Grade, detail: str) -> None:
    critical = verdict.rule is instantiate.DANGEROUS
    ctx.add(rule, f"{detail}: {verdict.reason}",
            severity=Severity.CRITICAL if critical else None)


def _check_st_modules(modules: Any, ctx: ScanContext) -> None:
    """Each sentence-transformers module: a library class, loaded from inside the folder."""
    for i, module in enumerate(modules if isinstance(modules, list) else [modules]):
        kind = module.get("type") if isinstance(module, dict) else None
        path = module.get("path", "") if isinstance(module, dict) else None
        verdict = _st_grade(kind)
        if verdict.rule is not None:
            _add(ctx, ST_MODULE, verdict, f"module {i}: type {kind!r}")
        if not isinstance(path, str) or path_outside(path):
            ctx.add(ST_MODULE, f"module {i}: path {path!r}")


def _st_grade(kind: Any) -> instantiate.Grade:
    """A class in sentence_transformers (modules, then the class), nothing reached through it."""
    verdict = instantiate.grade(kind)
    if verdict.rule is instantiate.DANGEROUS or not isinstance(kind, str):
        return verdict
    *modules, last = kind.split(".")
    if (modules[:1] == [ST_PACKAGE] and all(m.isidentifier() and m[:1].islower() for m in modules)
            and last.isidentifier() and last[:1].isupper()):
        return instantiate.Grade(None, "")
    return instantiate.Grade(instantiate.UNLISTED, "not a sentence_transformers module class")


def _check_model_index(doc: dict[str, Any], ctx: ScanContext) -> None:
    pipeline = doc.get("_class_name")
    if isinstance(pipeline, list):  # [module, class]: the pipeline class is the repo's code
        verdict = _component_grade(*[*pipeline, None, None][:2])
        if verdict.rule is not None:
            _add(ctx, DIFFUSERS_CODE, verdict,
                 f"_class_name {pipeline!r} ({_where_code(pipeline[0], _REPO_FILE)})")
    custom = doc.get("custom_pipeline")
    if custom is not None:
        ctx.add(DIFFUSERS_CODE, f"custom_pipeline {custom!r}: "
                f"{_where_code(custom, 'a community pipeline or a file of this repository')}")
    for name, spec in doc.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) < 2 or not all(
                isinstance(v, str | None) for v in spec[:2]):
            continue  # not a component: a flag, a list of numbers
        library, cls = spec[0], spec[1]
        if library is None and cls is None:  # an optional component left out
            continue
        verdict = _component_grade(library, cls)
        if verdict.rule is not None:
            _add(ctx, DIFFUSERS_CODE, verdict,
                 f"component {name!r}: class {cls!r} from {library!r} "
                 f"({_where_code(library, _REPO_FILE)})")


def _component_grade(library: Any, cls: Any) -> instantiate.Grade:
    if not (isinstance(library, str) and isinstance(cls, str) and cls.isidentifier()):
        return instantiate.Grade(instantiate.COMPUTED, "not a library and class name")
    if library in targets.DIFFUSERS_PIPELINE_MODULES:
        library = f"diffusers.pipelines.{library}"
    return instantiate.grade(f"{library}.{cls}")


def _where_code(name: Any, otherwise: str) -> str:
    """Where the loader takes the code from: another repository ('org/repo…'), or `otherwise`."""
    parts = name.strip("/").split("/") if isinstance(name, str) else []
    if len(parts) >= 2:
        return f"code from repository {parts[0]}/{parts[1]} or a path"
    return otherwise


def _check_auto_mapping(mapping: Any, ctx: ScanContext) -> None:
    if not isinstance(mapping, dict):
        ctx.add(PEFT_AUTO_MAPPING, f"auto_mapping is {type(mapping).__name__}, not a mapping")
        return
    parent, base = mapping.get("parent_library"), mapping.get("base_model_class")
    if not (isinstance(parent, str) and isinstance(base, str) and base.isidentifier()):
        ctx.add(PEFT_AUTO_MAPPING, f"parent_library {parent!r}, base_model_class {base!r}")
        return
    verdict = instantiate.grade(f"{parent}.{base}")
    if verdict.rule is not None:
        _add(ctx, PEFT_AUTO_MAPPING, verdict, f"{parent}.{base}")
