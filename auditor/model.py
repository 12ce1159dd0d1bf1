"""Data shared by every room: what was scanned, what was found, how far we looked.

Plain frozen dataclasses; logic lives in functions elsewhere. Everything here
is JSON-serialisable through `auditor.report.json`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Severity(enum.IntEnum):
    """Ordered so that `max()` gives the worst; `info` never fails a gate."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None


class Coverage(enum.StrEnum):
    """How far inside a file the scan looked: a verdict of its own.

    `scanned`: fully parsed. `partial`: a limit was hit. `unsupported`: a
    format we do not parse (hashed only). `error`: unreadable or malformed.
    """

    SCANNED = "scanned"
    PARTIAL = "partial"
    UNSUPPORTED = "unsupported"
    ERROR = "error"


class FormatId(enum.StrEnum):
    """Every format name in reports and SBOMs (`auditor:format`); the values never change."""

    # Formats with a spec (one module each), in no particular order.
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    NUMPY = "numpy"
    PYTORCH_ZIP = "pytorch-zip"
    KERAS = "keras"
    HDF5 = "hdf5"
    ONNX = "onnx"
    TF_SAVEDMODEL = "tf-savedmodel"
    TFLITE = "tflite"
    SENTENCEPIECE = "sentencepiece"
    MSGPACK = "msgpack"
    ZIP = "zip"
    PYTORCH_LEGACY = "pytorch-legacy"
    PICKLE = "pickle"
    MODELCARD = "modelcard"
    JINJA = "jinja"
    PYTHON = "python"
    TF_PBTXT = "tf-pbtxt"
    YAML = "yaml"
    JSON = "json"
    TIKTOKEN = "tiktoken"
    # Refinements: what a spec reports once it has seen more than the head (or the folder).
    TORCHSCRIPT = "torchscript"
    PYTORCH_TAR = "pytorch-tar"
    PYTORCH_EXPORT = "pytorch-export"  # a torch.export .pt2 archive
    NPZ = "npz"
    JOBLIB = "joblib"
    KERAS_H5 = "keras-h5"
    TF_GRAPHDEF = "tf-graphdef"
    TF_KERAS_METADATA = "tf-keras-metadata"
    TF_FINGERPRINT = "tf-fingerprint"
    TAR = "tar"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    LZMA = "lzma"
    ZLIB = "zlib"
    ONNX_EXTERNAL_DATA = "onnx-external-data"  # by the cross-file check of an ONNX model
    TF_VARIABLES = "tf-variables"  # by the cross-file check of a SavedModel
    # Unparsed classes: content no spec claimed, named by its magic bytes.
    EMPTY = "empty"
    TEXT = "text"
    IMAGE = "image"
    UNKNOWN = "unknown"
    SEVEN_Z = "7z"
    RAR = "rar"
    ZSTD = "zstd"
    LZ4 = "lz4"
    CAB = "cab"
    # Not scanned: no spec ran on these bytes.
    NESTED = "nested"  # past the container depth limit
    SPECIAL = "special"  # not a regular file (FIFO, device, escaping link)
    UNREADABLE = "unreadable"  # the file could not be read
    NOT_FETCHED = "not-fetched"  # a remote file not downloaded (remote audits)


class Grade(enum.StrEnum):
    """How strongly a provenance fact is proven: who could have forged it.

    `declared`: the artifact says so (a card, a config, GGUF metadata, a folder
    name, an option on the command line) — anyone editing a file forges it.
    `recorded`: a cache, mirror or download tool wrote it down — anyone who can
    write the folder forges it. `hub-verified`: fetched this run from the Hub
    at a pinned commit. `measured`: inferred by auditor from the bytes
    (fingerprints). `signed`: covered by a valid signature from an identity the
    trust configuration names. `rank` orders them, weakest first.
    """

    DECLARED = "declared"
    RECORDED = "recorded"
    HUB_VERIFIED = "hub-verified"
    MEASURED = "measured"
    SIGNED = "signed"

    @property
    def rank(self) -> int:
        return list(Grade).index(self)


@dataclass(frozen=True)
class LineageEdge:
    """One base model a model derives from, with where that was said and how strongly.

    `name` is a repository id (`org/name`) where one is known, else the name
    the declaration gives; `publisher` is the organisation it names (the org
    part of a repository id, a GGUF `organization`, the Hub's author);
    `evidence` lists each declaration (`README.md base_model`,
    `adapter_config.json base_model_name_or_path`, `x.gguf general.base_model.0`);
    `child` is the model it is a base of (None: the scanned model itself).
    """

    name: str
    relation: str  # finetune, adapter, quantized, merge, distillation, unknown
    grade: Grade
    evidence: tuple[str, ...]
    publisher: str | None = None
    publisher_grade: Grade | None = None
    child: str | None = None
    depth: int = 1
    commit: str | None = None
    resolved: bool = False  # looked up on the Hub (its publisher and commit are the Hub's)
    score: float | None = None  # a measured edge's similarity, in [0, 1]


@dataclass(frozen=True)
class Location:
    """Where inside a file: an archive member path (`a.zip/b/data.pkl`) and a byte offset."""

    member: str | None = None
    offset: int | None = None

    def __str__(self) -> str:
        parts = []
        if self.member:
            parts.append(self.member)
        if self.offset is not None:
            parts.append(f"@{self.offset}")
        return " ".join(parts)


# The one documented way a finding's detail names a line in its file ("line 12: eval").
_DETAIL_LINE = re.compile(r"line ([1-9][0-9]*): ")


# A git commit as the Hub names it: 40 lower-case hex digits, the only revision that pins bytes.
_COMMIT = re.compile(r"[0-9a-f]{40}")


def is_commit(revision: str) -> bool:
    """Whether `revision` is a full git commit id (a branch or tag can move; a commit cannot).

    Here, on the lowest floor, so that the Hub sources and the attestations that
    name `hf://…@<commit>` subjects read one rule."""
    return _COMMIT.fullmatch(revision) is not None


def detail_line(detail: str) -> int | None:
    """The line a finding's detail names, for reports that jump to it (SARIF regions)."""
    line = _DETAIL_LINE.match(detail)
    return int(line.group(1)) if line else None


@dataclass(frozen=True)
class Finding:
    """One fact that matters for the verdict; why/fix live in the rule catalogue."""

    rule: str
    severity: Severity
    file: str
    title: str
    detail: str = ""
    location: Location = field(default_factory=Location)


@dataclass(frozen=True)
class Rule:
    """A rule id with its default severity and the text a user needs to act on it."""

    id: str
    severity: Severity
    title: str
    why: str
    fix: str
    # Why this finding is fair on a file a real trainer wrote (a medium a reviewer would
    # agree with); empty for rules that should never fire on benign checkpoints.
    benign: str = ""

    def finding(
        self,
        file: str,
        detail: str = "",
        *,
        member: str | None = None,
        offset: int | None = None,
        severity: Severity | None = None,
        title: str | None = None,
    ) -> Finding:
        return Finding(
            rule=self.id,
            severity=self.severity if severity is None else severity,
            file=file,
            title=title or self.title,
            detail=detail,
            location=Location(member=member, offset=offset),
        )


@dataclass(frozen=True)
class Artifact:
    """One file of a model on disk, as a source lists it and the engine reads it.

    `relpath` is how it is reported, `path` how it is opened (links resolved);
    `problem` is set for a file that must not be opened (a FIFO, a device).
    """

    relpath: str
    path: Path
    size: int
    problem: Finding | None = None


@dataclass
class FormatResult:
    """What a format module returns: findings, facts for the SBOM, and its coverage."""

    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    coverage: Coverage = Coverage.SCANNED
    format: FormatId | None = None  # set by the engine to the spec's id; a spec may refine it


@dataclass(frozen=True)
class FileReport:
    path: str
    size: int
    digests: dict[str, str]
    format: FormatId
    coverage: Coverage
    findings: tuple[Finding, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return self.digests.get("sha256", "")

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    @property
    def verdict(self) -> str:
        """`clean` or the highest severity found."""
        worst = self.worst
        return "clean" if worst is None else worst.label


@dataclass(frozen=True)
class ModelReport:
    """One model: its files and the facts about the model as a whole."""

    name: str
    root: str
    source: str
    files: tuple[FileReport, ...]
    findings: tuple[Finding, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    revision: str | None = None

    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for f in self.files:
            out.extend(f.findings)
        return out

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.all_findings()), default=None)

    def coverage_counts(self) -> dict[str, int]:
        counts = {c.value: 0 for c in Coverage}
        for f in self.files:
            counts[f.coverage.value] += 1
        return counts


@dataclass(frozen=True)
class ScanResult:
    """Everything one `scan` produced; reporters and the SBOM start from here."""

    target: str
    models: tuple[ModelReport, ...]
    bytes_read: int
    elapsed_s: float
    rules_version: str

    def all_findings(self) -> list[Finding]:
        return [f for m in self.models for f in m.all_findings()]

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.all_findings()), default=None)

    def fails(self, fail_on: Severity) -> bool:
        worst = self.worst
        return worst is not None and worst >= fail_on
