"""Format by content, never by extension; extensions only to catch lies.

The format modules decide whether they own a stream (their `sniff`). What is
left is classified here from magic bytes, and every file's extension is
checked against the formats that extension may legitimately hold.
"""

from __future__ import annotations

from auditor.formats._lib.text import is_text
from auditor.formats.contract import UNPARSED_ARCHIVES
from auditor.model import FormatId

# Magic numbers of content we recognise but do not parse.
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
}
_UNPARSED_ARCHIVE_MAGIC = {
    b"7z\xbc\xaf\x27\x1c": FormatId.SEVEN_Z,
    b"Rar!\x1a\x07": FormatId.RAR,
    b"\x28\xb5\x2f\xfd": FormatId.ZSTD,
    b"\x04\x22\x4d\x18": FormatId.LZ4,
    b"MSCF": FormatId.CAB,
}

# Extension -> the content formats that file name may truthfully hold.
PICKLE_FAMILY = frozenset({
    FormatId.PICKLE, FormatId.PYTORCH_ZIP, FormatId.PYTORCH_LEGACY, FormatId.PYTORCH_TAR,
    FormatId.TORCHSCRIPT, FormatId.JOBLIB,
})
_TEXT = frozenset({FormatId.TEXT, FormatId.JSON, FormatId.EMPTY})
EXPECTED_BY_EXTENSION: dict[str, frozenset[FormatId]] = {
    ".safetensors": frozenset({FormatId.SAFETENSORS}),
    ".gguf": frozenset({FormatId.GGUF}),
    ".bin": PICKLE_FAMILY | {FormatId.SAFETENSORS, FormatId.GGUF, FormatId.UNKNOWN},
    ".pt": PICKLE_FAMILY,
    ".pth": PICKLE_FAMILY,
    ".ckpt": PICKLE_FAMILY | {FormatId.SAFETENSORS},
    ".pkl": PICKLE_FAMILY,
    ".pickle": PICKLE_FAMILY,
    ".joblib": frozenset({
        FormatId.JOBLIB, FormatId.PICKLE, FormatId.GZIP, FormatId.BZ2, FormatId.XZ, FormatId.LZMA,
        FormatId.ZLIB,
    }),
    ".npy": frozenset({FormatId.NUMPY}),
    ".npz": frozenset({FormatId.NPZ}),
    ".onnx": frozenset({FormatId.ONNX}),
    ".pb": frozenset({
        FormatId.TF_SAVEDMODEL, FormatId.TF_GRAPHDEF, FormatId.TF_KERAS_METADATA,
        FormatId.TF_FINGERPRINT,
    }),
    ".tflite": frozenset({FormatId.TFLITE}),
    ".pbtxt": frozenset({FormatId.TF_PBTXT}),
    ".keras": frozenset({FormatId.KERAS}),
    ".h5": frozenset({FormatId.HDF5, FormatId.KERAS_H5}),
    ".hdf5": frozenset({FormatId.HDF5, FormatId.KERAS_H5}),
    ".json": frozenset({FormatId.JSON, FormatId.EMPTY}),
    ".txt": _TEXT,
    ".md": _TEXT | {FormatId.MODELCARD},
    ".yaml": _TEXT | {FormatId.YAML},
    ".yml": _TEXT | {FormatId.YAML},
    ".jinja": _TEXT | {FormatId.JINJA},
    ".model": frozenset({FormatId.SENTENCEPIECE, FormatId.TIKTOKEN, FormatId.TEXT}),
    ".msgpack": frozenset({FormatId.MSGPACK}),
    ".py": _TEXT | {FormatId.PYTHON},
    ".zip": frozenset({
        FormatId.ZIP, FormatId.PYTORCH_ZIP, FormatId.TORCHSCRIPT, FormatId.NPZ, FormatId.KERAS,
    }),
    ".tar": frozenset({FormatId.TAR, FormatId.PYTORCH_TAR}),
    # `checkpoint.pth.tar`: PyTorch's ImageNet example names torch.save output so
    ".pth.tar": PICKLE_FAMILY | {FormatId.TAR},
    ".gz": frozenset({FormatId.GZIP}),
    ".tgz": frozenset({FormatId.GZIP}),
    ".bz2": frozenset({FormatId.BZ2}),
    ".xz": frozenset({FormatId.XZ}),
    ".lzma": frozenset({FormatId.LZMA}),
    ".png": frozenset({FormatId.IMAGE}),
    ".jpg": frozenset({FormatId.IMAGE}),
    ".jpeg": frozenset({FormatId.IMAGE}),
}


def extension_of(name: str) -> str:
    if name.lower().endswith(".pth.tar"):
        return ".pth.tar"
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def extension_mismatch(name: str, fmt: str) -> frozenset[FormatId] | None:
    """The formats `name`'s extension promises, when `fmt` is not one of them."""
    expected = EXPECTED_BY_EXTENSION.get(extension_of(name))
    if expected is None or fmt in expected:
        return None
    return expected


def classify_unparsed(head: bytes) -> FormatId:
    """Name what no format module claimed: empty, text, image, an archive, or unknown."""
    if not head:
        return FormatId.EMPTY
    for magic, name in _UNPARSED_ARCHIVE_MAGIC.items():
        if head.startswith(magic):
            return name
    for magic, _ in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return FormatId.IMAGE
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return FormatId.IMAGE
    if is_text(head):
        return FormatId.TEXT
    return FormatId.UNKNOWN


def is_unparsed_archive(fmt: str) -> bool:
    return fmt in UNPARSED_ARCHIVES

