"""Keras: the `.keras` zip (config.json, metadata.json, weights) and the model config review.

Keras rebuilds a model from its JSON config by resolving `module` +
`class_name` to Python objects, so the config is where code comes in:
`Lambda` layers carry marshalled bytecode (base64), and objects resolved from
modules outside Keras, or Keras functions that are not layers (`get_file`,
`enable_unsafe_deserialization`), are how `safe_mode` has been bypassed
(CVE-2025-1550, CVE-2025-8747, CVE-2025-9906). Layer configs that name files
(a `StringLookup` vocabulary given as a path) make the loader read them
(CVE-2025-12058). The config is parsed as JSON data and walked; nothing is
imported, unmarshalled or deserialized. `review_config` is shared with the
legacy HDF5 reader (`hdf5.py`), whose `model_config` has the same shape.

The zip is read by the archive reader with a Keras layout, like any other
zip: escaping member names, links, header disagreements and bytes outside
the members are judged there. The layout keeps the two JSON files for the
review here; every other member (weights, assets) goes back to the engine.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats._lib.streams import read_capped
from auditor.formats.archives import zip as archive_zip
from auditor.formats.archives.members import Layout, Role
from auditor.formats.code import python as python_code
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult, Rule, Severity

LAMBDA_CODE = Rule(
    "AUD-KERAS-001", Severity.CRITICAL, "Keras Lambda with embedded Python bytecode",
    "A serialized lambda is marshalled bytecode that Keras rebuilds into a function and runs "
    "as part of the model: arbitrary code on load (legacy .h5) or with safe_mode=False.",
    "Do not load the model; replace Lambda layers with registered custom layers whose code you "
    "ship and review.",
)
LAMBDA_FUNCTION = Rule(
    "AUD-KERAS-002", Severity.HIGH, "Keras Lambda calling a named Python function",
    "The Lambda runs a function the loader looks up by name in a Python module: code outside "
    "the model file decides what runs.",
    "Review the named function; prefer registered custom layers.",
)
FOREIGN_MODULE = Rule(
    "AUD-KERAS-003", Severity.HIGH, "Keras config resolves an object outside Keras",
    "Keras imports `module` and takes `class_name` from it; a module outside the Keras "
    "packages (os, subprocess, builtins, a third-party package) is how safe_mode was bypassed "
    "(CVE-2025-1550).",
    "Refuse the model unless the module is a reviewed dependency; upgrade Keras to >= 3.9.",
)
GADGET = Rule(
    "AUD-KERAS-004", Severity.CRITICAL, "Keras config calls a non-modelling Keras API",
    "get_file, enable_unsafe_deserialization, load_model and similar are Keras functions but "
    "not model parts: in a config they download or write files or switch safe_mode off "
    "(CVE-2025-8747, CVE-2025-9906).",
    "Do not load the model; upgrade Keras to a release that refuses non-modelling APIs.",
)
CUSTOM_OBJECT = Rule(
    "AUD-KERAS-005", Severity.MEDIUM, "Keras config needs registered custom objects",
    "Custom layers, losses or functions load only when their Python code is imported first; "
    "that code is not in the model file and was not reviewed here.",
    "Review and pin the package that registers these objects.",
)
FILE_PATH = Rule(
    "AUD-KERAS-006", Severity.HIGH, "Keras layer config names a file the loader reads",
    "Lookup and tokenizer layers read a vocabulary given as a path or URL when the model is "
    "built, even in safe mode (CVE-2025-12058): an absolute, '..' or remote path reads host "
    "files or fetches from the network.",
    "Store vocabularies inside the .keras file (assets) instead of as paths.",
)
LEGACY_H5 = Rule(
    "AUD-KERAS-007", Severity.MEDIUM, "Legacy HDF5 Keras model (loading ignores safe_mode)",
    "Keras loads .h5 models without safe_mode (CVE-2025-9905): any Lambda bytecode in them "
    "runs. None was found here, but the format offers no protection if the file changes.",
    "Re-save the model in the .keras format, or ship weights only.",
    benign="Keras' own model.save('model.h5') writes this format; the note is about what the "
    "format cannot protect against, not about anything found in the file.",
)
MALFORMED = Rule(
    "AUD-KERAS-008", Severity.HIGH, "Keras archive or config is malformed",
    "A .keras file that is not a readable zip with a JSON config cannot be reviewed; Keras may "
    "still load parts of it.",
    "Re-save the model with model.save('model.keras').",
)
RULES = (LAMBDA_CODE, LAMBDA_FUNCTION, FOREIGN_MODULE, GADGET, CUSTOM_OBJECT, FILE_PATH,
         LEGACY_H5, MALFORMED)

KERAS_PACKAGES = frozenset({"keras", "keras_hub", "keras_cv", "keras_nlp", "tf_keras"})
# Keras functions a model config has no business naming (Keras' own non-modelling list + more).
GADGETS = frozenset({
    "clear_session", "enable_unsafe_deserialization", "load_model", "model_from_json",
    "model_from_yaml", "save_model", "load_weights", "save_weights", "get_file", "load_img",
    "save_img", "deserialize_keras_object", "serialize_keras_object",
    "register_keras_serializable", "image_dataset_from_directory",
    "text_dataset_from_directory", "audio_dataset_from_directory", "func_load",
})
# Config keys whose string value is a path or URL the layer opens.
FILE_KEYS = frozenset({
    "vocabulary", "vocabulary_file", "vocab_file", "vocabulary_path", "merges", "merges_file",
    "idf_weights", "proto", "spm_proto", "lookup_table", "table_path", "filepath", "file_path",
})
KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5",
                           "model.weights.npz", "assets.json"})
MAX_NODES = 5_000_000
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# The members Keras opens by these exact names; the rest are scanned as ordinary members.
_ROLES = {"config.json": Role.CODE, "metadata.json": Role.METADATA}


def sniff(head: bytes, name: str) -> bool:
    """A zip whose first member is a Keras member, or a zip named `.keras`.

    The name may decide here because the content is verified as a zip and a
    `.keras` zip is what Keras itself opens by that name; otherwise the
    generic archive module would scan config.json as plain JSON.
    """
    if not head.startswith(b"PK\x03\x04") or len(head) < 30:
        return False
    length = int.from_bytes(head[26:28], "little")
    first = head[30 : 30 + length].decode("utf-8", "replace")
    return first in KERAS_MEMBERS or name.lower().endswith(".keras")


@dataclass
class _Review:
    """What the layout handlers saw of the two JSON members during one zip scan.

    The zip reader turns an error raised by a handler into an archive finding;
    a config that cannot be reviewed is a Keras failure, so it is kept here and
    raised once the archive checks are done.
    """

    config_seen: bool = False
    error: FormatError | None = None

    def config(self, ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
        self.config_seen = True
        doc = self._read(stream, name, ctx)
        if doc is not None:
            ctx.result.facts.update(review_config(doc, ctx, name))

    def metadata(self, ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
        doc = self._read(stream, name, ctx)
        if isinstance(doc, dict):
            ctx.result.facts["keras_version"] = doc.get("keras_version")
            ctx.result.facts["date_saved"] = doc.get("date_saved")

    def _read(self, stream: BinaryIO, name: str, ctx: ScanContext) -> Any:
        try:
            return _read_json(stream, name, ctx)
        except FormatError as exc:
            self.error = self.error or exc
            return None

    def layout(self) -> Layout:
        """Keras's members by name; the format is already known from the sniff."""
        return Layout(
            detect=_always_keras, role=lambda name: _ROLES.get(name, Role.SCAN),
            formats=(FormatId.KERAS,),
            handlers={Role.CODE: self.config, Role.METADATA: self.metadata},
        )


def _always_keras(names: Sequence[str]) -> FormatId:
    return FormatId.KERAS


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    review = _Review()
    archive_zip.scan_zip(f, ctx, (review.layout(),))
    if review.error is not None:
        raise review.error
    if not review.config_seen:
        raise FormatError("no config.json member", 0, MALFORMED)
    return ctx.result


def _read_json(member: BinaryIO, name: str, ctx: ScanContext) -> Any:
    data = read_capped(member, ctx.limits.max_json_bytes, name)
    try:
        doc, _ = loads_strict(data, what=name)
    except LimitExceeded:
        raise
    except FormatError as exc:
        raise FormatError(str(exc), None, MALFORMED) from None
    return doc


def review_config(config: Any, ctx: ScanContext, where: str) -> dict[str, Any]:
    """Walk a Keras model config (any version) and record what it would make Keras run.

    Returns facts: the top-level class, the layer classes and the modules the
    config resolves objects from.
    """
    seen: set[tuple[str, str]] = set()

    def add(rule: Rule, detail: str, severity: Severity | None = None) -> None:
        if (rule.id, detail) not in seen:
            seen.add((rule.id, detail))
            ctx.add(rule, detail, severity=severity)

    classes: set[str] = set()
    modules: set[str] = set()
    stack: list[tuple[Any, str]] = [(config, where)]
    nodes = 0
    while stack:
        node, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise LimitExceeded(f"{where}: more than {MAX_NODES} values")
        if isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        stack.extend((v, f"{path}.{k}") for k, v in node.items())
        cls = node.get("class_name")
        if isinstance(cls, str):
            classes.add(cls)
            _review_object(node, cls, path, add, modules)
        for key in FILE_KEYS & node.keys():
            value = node[key]
            if isinstance(value, str) and value.strip():
                outside = _URL.match(value) or python_code.path_outside(value)
                add(FILE_PATH, f"{path}.{key} = {value!r}",
                    None if outside else Severity.MEDIUM)
    top = config.get("class_name") if isinstance(config, dict) else None
    return {"model_class": top, "classes": sorted(classes), "modules": sorted(modules)}


def _review_object(node: dict[str, Any], cls: str, path: str, add: Any, modules: set[str]) -> None:
    inner = node.get("config")
    if cls == "__lambda__":
        code = inner.get("code") or inner.get("value") if isinstance(inner, dict) else None
        add(LAMBDA_CODE, f"{path}: {_describe_code(code)}")
    elif cls == "Lambda" and isinstance(inner, dict):
        fn = inner.get("function")
        kind = inner.get("function_type")
        if kind == "lambda" or isinstance(fn, list) or (kind is None and isinstance(fn, str)):
            code = fn[0] if isinstance(fn, list) and fn else fn
            add(LAMBDA_CODE, f"{path}: {_describe_code(code)}")
        elif isinstance(fn, str):
            add(LAMBDA_FUNCTION, f"{path}: {inner.get('module')}.{fn}")
        elif isinstance(fn, dict) and fn.get("class_name") != "__lambda__":
            add(LAMBDA_FUNCTION, f"{path}: {fn.get('module')}.{fn.get('config')}")
    module = node.get("module")
    name = inner if cls == "function" and isinstance(inner, str) else cls
    registered = node.get("registered_name")
    package = registered.split(">", 1)[0] if isinstance(registered, str) else None
    if package is not None and ">" in registered and package not in KERAS_PACKAGES:
        add(CUSTOM_OBJECT, f"{path}: {registered}")  # keras_hub registers its own classes
    if name.split(">")[-1] in GADGETS:
        add(GADGET, f"{path}: {module}.{name}")
        return
    if not isinstance(module, str) or not module:
        return
    modules.add(module)
    root = module.split(".")[0]
    full = f"{module}.{name}"
    plain = name if module in ("builtins", "__builtin__") else full  # builtins.exec is exec
    if python_code.dangerous_name(plain) is not None:
        add(FOREIGN_MODULE, f"{path}: {full}", Severity.CRITICAL)
    elif root not in KERAS_PACKAGES and not (module == "builtins" and cls == "function"):
        add(FOREIGN_MODULE, f"{path}: {full}")


def _describe_code(code: Any) -> str:
    """Say what the blob is without unmarshalling it: its size and whether it is a code object."""
    if not isinstance(code, str):
        return "serialized function"
    try:
        raw = base64.b64decode(code, validate=False)
    except (binascii.Error, ValueError):
        return f"{len(code)}-character encoded function"
    kind = "marshalled code object" if raw[:1] in (b"\xe3", b"c") else "encoded function"
    return f"{kind}, {len(raw)} bytes"


SPEC = FormatSpec(
    id=FormatId.KERAS, sniff=sniff, scan=scan, container=True, rules=RULES,
    facts=("model_class", "classes", "modules", "keras_version", "date_saved", "members",
           "hidden_members", "crc_unverified"),
)
