"""The formats the engine tries, in the order their `sniff` is tried, each imported on first need.

More specific sniffers come first (a PyTorch zip before a generic zip; a
tar-based checkpoint before the generic archive). Adding a format is adding
its module, with a `SPEC`, and one `Entry` here. The generic archive format is
given the member layouts of the formats that live in zips and tars.

Importing every format module costs a scan's start-up more than the scan of a
small model, and most models hold three or four formats. So an entry names its
module instead of importing it, with `maybe`: a cheap test on the head and the
name that is true for every head the spec's `sniff` claims (a magic byte, an
extension), written from that `sniff`. The module is imported, and its `sniff`
asked, only when `maybe` holds; `maybe=None` asks the spec always.
tests/test_formats_registry.py holds each `maybe` to its `sniff` and the lazy
order to the eager one. `SPECS` (every spec, all imported) is for the rule
catalogue and the docs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from auditor.formats.contract import FormatSpec, Sniff
from auditor.model import FormatId

_ZIP = b"PK"  # local header and end-of-directory signatures alike
_PROTO_FIELD_1_VARINT = (b"\x08", b"\x88")  # the key byte of field 1, wire type 0 (minimal or not)
_PROTO_FIELD_1_LEN = (b"\x0a", b"\x8a")  # field 1, wire type 2
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
# First bytes of gzip, bzip2, xz, ZFP-framed zlib, zlib and lzma-alone (archives/compressed.py).
_COMPRESSED_FIRST = frozenset(b"\x1fB\xfdZ\x78\x5d")


def _is_tar(head: bytes, name: str) -> bool:
    return head[257:262] == b"ustar"


def _extension(*endings: str) -> Sniff:
    return lambda head, name: name.lower().endswith(endings)


@dataclass(frozen=True)
class Entry:
    """One format in the sniff order: its id, how to get its spec, and what rules it out cheaply."""

    id: FormatId
    load: Callable[[], FormatSpec]
    maybe: Sniff | None  # true for every head the spec's sniff claims; None: always ask the spec


def _spec(module: str) -> Callable[[], FormatSpec]:
    """The `SPEC` of `module`, imported the first time it is asked for."""
    return lambda: importlib.import_module(module).SPEC


@cache
def _archive() -> FormatSpec:
    """The generic archive spec, given the layouts of the formats that live in zips and tars."""
    from auditor.formats.archives import archive
    from auditor.formats.pickle import numpy, torch_zip

    return archive.spec(
        zip_layouts=(torch_zip.ZIP_LAYOUT, numpy.NPZ_LAYOUT), tar_layouts=(torch_zip.TAR_LAYOUT,)
    )


_F = "auditor.formats."
ENTRIES: tuple[Entry, ...] = (
    Entry(FormatId.SAFETENSORS, _spec(_F + "weights.safetensors"),
          lambda head, name: b"\x00" in head[:8]),
    Entry(FormatId.GGUF, _spec(_F + "weights.gguf"), lambda head, name: head[:4] == b"GGUF"),
    Entry(FormatId.NUMPY, _spec(_F + "pickle.numpy"),
          lambda head, name: head.startswith((b"\x93NUMPY", _ZIP))),
    Entry(FormatId.PYTORCH_ZIP, _spec(_F + "pickle.torch_zip"),
          lambda head, name: head.startswith(_ZIP) or _is_tar(head, name)),
    Entry(FormatId.KERAS, _spec(_F + "weights.keras"), lambda head, name: head.startswith(_ZIP)),
    Entry(FormatId.HDF5, _spec(_F + "weights.hdf5"),
          lambda head, name: b"\x89HDF\r\n\x1a\n" in head),
    Entry(FormatId.ONNX, _spec(_F + "weights.onnx"),
          lambda head, name: head[:1] in _PROTO_FIELD_1_VARINT),
    Entry(FormatId.TF_SAVEDMODEL, _spec(_F + "weights.tf_savedmodel"),
          lambda head, name: head[:1] in _PROTO_FIELD_1_VARINT or name.lower().endswith(".pb")),
    Entry(FormatId.TFLITE, _spec(_F + "weights.tflite"), lambda head, name: head[4:8] == b"TFL3"),
    Entry(FormatId.SENTENCEPIECE, _spec(_F + "code.sentencepiece"),
          lambda head, name: head[:1] in _PROTO_FIELD_1_LEN),
    Entry(FormatId.TIKTOKEN, _spec(_F + "code.tiktoken"),
          lambda head, name: bool(head) and head[0] in _BASE64),
    Entry(FormatId.MSGPACK, _spec(_F + "weights.msgpack"),
          lambda head, name: bool(head) and (0x81 <= head[0] <= 0x8F or head[0] in (0xDE, 0xDF))),
    Entry(FormatId.ZIP, _archive,
          lambda head, name: head.startswith(_ZIP) or _is_tar(head, name)
          or (bool(head) and head[0] in _COMPRESSED_FIRST)),
    Entry(FormatId.PYTORCH_LEGACY, _spec(_F + "pickle.torch_legacy"),
          lambda head, name: head[:1] == b"\x80"),
    Entry(FormatId.PICKLE, _spec(_F + "pickle.plain"), None),  # the engine imports it anyway
    Entry(FormatId.MODELCARD, _spec(_F + "code.modelcard"), _extension(".md")),
    Entry(FormatId.JINJA, _spec(_F + "code.jinja"), _extension(".jinja")),
    Entry(FormatId.PYTHON, _spec(_F + "code.python"), _extension(".py")),
    Entry(FormatId.TF_PBTXT, _spec(_F + "weights.tf_pbtxt"), _extension(".pbtxt")),
    Entry(FormatId.YAML, _spec(_F + "code.yaml_config"), _extension(".yaml", ".yml")),
    Entry(FormatId.JSON, _spec(_F + "code.json_config"), None),  # the catch-all text format
)


def claim(head: bytes, name: str) -> FormatSpec | None:
    """The first spec in sniff order whose `sniff` claims `head`; None when none does."""
    for entry in ENTRIES:
        if entry.maybe is None or entry.maybe(head, name):
            spec = entry.load()
            if spec.sniff(head, name):
                return spec
    return None


def __getattr__(name: str) -> tuple[FormatSpec, ...]:
    """`SPECS`: every spec in sniff order, each module imported (PEP 562)."""
    if name == "SPECS":
        return tuple(entry.load() for entry in ENTRIES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
