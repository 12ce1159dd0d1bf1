"""Format by content, never by extension; extensions only to catch lies.

The format modules decide whether they own a stream (their `sniff`). What is
left is classified here from magic bytes, and every file's extension is
checked against the formats that extension may legitimately hold.
"""

from __future__ import annotations

from auditor.formats._lib.text import is_text

# Magic numbers of content we recognise but do not parse.
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
}
_UNPARSED_ARCHIVE_MAGIC = {
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x04\x22\x4d\x18": "lz4",
    b"MSCF": "cab",
}

# Extension -> the content formats that file name may truthfully hold.
# A format name here is a format module's NAME (or a FormatResult.format).
PICKLE_FAMILY = frozenset(
    {"pickle", "pytorch-zip", "pytorch-legacy", "pytorch-tar", "torchscript", "joblib"}
)
_TEXT = frozenset({"text", "json", "empty"})
EXPECTED_BY_EXTENSION: dict[str, frozenset[str]] = {
    ".safetensors": frozenset({"safetensors"}),
    ".gguf": frozenset({"gguf"}),
    ".bin": PICKLE_FAMILY | {"safetensors", "gguf", "unknown"},
    ".pt": PICKLE_FAMILY,
    ".pth": PICKLE_FAMILY,
    ".ckpt": PICKLE_FAMILY | {"safetensors"},
    ".pkl": PICKLE_FAMILY,
    ".pickle": PICKLE_FAMILY,
    ".joblib": frozenset({"joblib", "pickle", "gzip", "bz2", "xz", "lzma", "zlib"}),
    ".npy": frozenset({"numpy"}),
    ".npz": frozenset({"npz"}),
    ".onnx": frozenset({"onnx"}),
    ".pb": frozenset({"tf-savedmodel", "tf-graphdef", "tf-keras-metadata", "tf-fingerprint"}),
    ".tflite": frozenset({"tflite"}),
    ".pbtxt": frozenset({"tf-pbtxt"}),
    ".keras": frozenset({"keras"}),
    ".h5": frozenset({"hdf5", "keras-h5"}),
    ".hdf5": frozenset({"hdf5", "keras-h5"}),
    ".json": frozenset({"json", "empty"}),
    ".txt": _TEXT,
    ".md": _TEXT | {"modelcard"},
    ".yaml": _TEXT | {"yaml"},
    ".yml": _TEXT | {"yaml"},
    ".jinja": _TEXT | {"jinja"},
    ".model": frozenset({"sentencepiece", "text"}),  # tiktoken vocabularies are text
    ".msgpack": frozenset({"msgpack"}),
    ".py": _TEXT | {"python"},
    ".zip": frozenset({"zip", "pytorch-zip", "torchscript", "npz", "keras"}),
    ".tar": frozenset({"tar", "pytorch-tar"}),
    ".gz": frozenset({"gzip"}),
    ".tgz": frozenset({"gzip"}),
    ".bz2": frozenset({"bz2"}),
    ".xz": frozenset({"xz"}),
    ".lzma": frozenset({"lzma"}),
    ".png": frozenset({"image"}),
    ".jpg": frozenset({"image"}),
    ".jpeg": frozenset({"image"}),
}


def extension_of(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def extension_mismatch(name: str, fmt: str) -> frozenset[str] | None:
    """The formats `name`'s extension promises, when `fmt` is not one of them."""
    expected = EXPECTED_BY_EXTENSION.get(extension_of(name))
    if expected is None or fmt in expected:
        return None
    return expected


def classify_unparsed(head: bytes) -> str:
    """Name what no format module claimed: empty, text, image, an archive, or unknown."""
    if not head:
        return "empty"
    for magic, name in _UNPARSED_ARCHIVE_MAGIC.items():
        if head.startswith(magic):
            return name
    for magic, _ in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return "image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image"
    if is_text(head):
        return "text"
    return "unknown"


def is_unparsed_archive(fmt: str) -> bool:
    return fmt in _UNPARSED_ARCHIVE_MAGIC.values()

