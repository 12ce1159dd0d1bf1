"""TFLite: minimal FlatBuffers laid out by hand; custom and Flex operators flagged."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.model import FileReport
from auditor.scanning.options import ScanOptions
from tests.scan_helpers import rule_ids

Thunk = Callable[["Builder"], int]


class Builder:
    """Forward FlatBuffer writer: children are written after their parents (uoffsets point up)."""

    def __init__(self) -> None:
        self.buf = bytearray(8)

    def _align(self) -> None:
        self.buf += b"\x00" * (-len(self.buf) % 4)

    def _patch(self, slot: int, thunk: Thunk) -> None:
        child = thunk(self)
        struct.pack_into("<I", self.buf, slot, child - slot)

    def table(self, *fields: tuple[str, object] | None) -> int:
        """Fields by id: None (absent), (struct format, value) or ("ref", thunk)."""
        self._align()
        vtable = len(self.buf)
        self.buf += b"\x00" * (4 + 2 * len(fields))
        self._align()
        table = len(self.buf)
        self.buf += struct.pack("<i", table - vtable)
        refs = []
        for i, field in enumerate(fields):
            if field is None:
                continue
            struct.pack_into("<H", self.buf, vtable + 4 + 2 * i, len(self.buf) - table)
            kind, value = field
            if kind == "ref":
                refs.append((len(self.buf), value))
                self.buf += b"\x00" * 4
            else:
                self.buf += struct.pack(kind, value).ljust(4, b"\x00")
        struct.pack_into("<HH", self.buf, vtable, 4 + 2 * len(fields), len(self.buf) - table)
        for slot, thunk in refs:
            self._patch(slot, thunk)  # type: ignore[arg-type]
        return table

    def vector(self, thunks: list[Thunk]) -> int:
        self._align()
        vec = len(self.buf)
        self.buf += struct.pack("<I", len(thunks)) + b"\x00" * (4 * len(thunks))
        for k, thunk in enumerate(thunks):
            self._patch(vec + 4 + 4 * k, thunk)
        return vec

    def blob(self, data: bytes) -> int:
        self._align()
        pos = len(self.buf)
        self.buf += struct.pack("<I", len(data)) + data
        return pos

    def string(self, text: str) -> int:
        self._align()
        pos = len(self.buf)
        raw = text.encode()
        self.buf += struct.pack("<I", len(raw)) + raw + b"\x00"
        return pos

    def finish(self, root: Thunk) -> bytes:
        model = root(self)
        struct.pack_into("<I", self.buf, 0, model)
        self.buf[4:8] = b"TFL3"
        return bytes(self.buf)


def opcode(builtin: int, custom: str | None = None) -> Thunk:
    name = (lambda b: b.string(custom)) if custom else None
    return lambda b: b.table(("<b", min(builtin, 127)), ("ref", name) if name else None,
                             ("<i", 1), ("<i", builtin))


def operator(index: int) -> Thunk:
    return lambda b: b.table(("<I", index))


def buffer(data: bytes | None = None, offset: int = 0, size: int = 0) -> Thunk:
    inline = ("ref", lambda b: b.blob(data)) if data is not None else None
    return lambda b: b.table(inline, ("<Q", offset), ("<Q", size))


def model(codes: list[Thunk], ops: list[Thunk], description: str = "unit test",
          buffers: list[Thunk] | None = None) -> bytes:
    subgraph = lambda b: b.table(None, None, None, ("ref", lambda b2: b2.vector(ops)))  # noqa: E731
    root = lambda b: b.table(  # noqa: E731
        ("<I", 3),
        ("ref", lambda b2: b2.vector(codes)),
        ("ref", lambda b2: b2.vector([subgraph])),
        ("ref", lambda b2: b2.string(description)),
        ("ref", lambda b2: b2.vector(buffers or [buffer()])),
    )
    return Builder().finish(root)


ADD, CONV_2D, CUSTOM = 0, 3, 32


def _scan(tmp_path: Path, data: bytes) -> FileReport:
    (tmp_path / "model.tflite").write_bytes(data)
    result = pipeline.scan(tmp_path, ScanOptions(jobs=1))
    return {f.path: f for f in result.models[0].files}["model.tflite"]


def test_builtin_only_model_is_clean(tmp_path, run_cli):
    report = _scan(tmp_path, model([opcode(ADD), opcode(CONV_2D)],
                                   [operator(0), operator(1), operator(0)]))
    assert report.format == "tflite" and report.findings == ()
    assert report.facts["schema_version"] == 3 and report.facts["description"] == "unit test"
    assert report.facts["operators"] == 3 and report.facts["builtin_codes"] == [ADD, CONV_2D]
    assert run_cli("scan", tmp_path).code == 0


def test_custom_operator_is_high(tmp_path):
    report = _scan(tmp_path, model([opcode(ADD), opcode(CUSTOM, "MyNativeKernel")],
                                   [operator(1)]))
    (finding,) = report.findings
    assert finding.rule == "AUD-TFL-001" and "MyNativeKernel" in finding.detail
    assert report.facts["custom_ops"] == ["MyNativeKernel"]


@pytest.mark.parametrize(("name", "rule"), [("FlexAddV2", "AUD-TFL-002"),
                                            ("FlexReadFile", "AUD-TFL-003"),
                                            ("FlexPyFunc", "AUD-TFL-003")])
def test_flex_operators_are_flagged(tmp_path, name, rule):
    report = _scan(tmp_path, model([opcode(CUSTOM, name)], [operator(0)]))
    assert rule_ids(report) == [rule]


def test_opcode_index_out_of_range_is_malformed(tmp_path):
    report = _scan(tmp_path, model([opcode(ADD)], [operator(5)]))
    assert report.coverage.value == "error" and rule_ids(report) == ["AUD-TFL-004"]


def test_root_offset_outside_the_file_is_malformed(tmp_path):
    data = bytearray(model([opcode(ADD)], [operator(0)]))
    struct.pack_into("<I", data, 0, 2**31)
    assert rule_ids(_scan(tmp_path, bytes(data))) == ["AUD-TFL-004"]


def test_truncated_model_is_malformed(tmp_path):
    data = model([opcode(ADD), opcode(CUSTOM, "X")], [operator(0)])
    report = _scan(tmp_path, data[: len(data) // 2])
    assert report.format == "tflite" and "AUD-TFL-004" in rule_ids(report)


def test_hostile_vector_length_is_a_limit(tmp_path):
    data = bytearray(model([opcode(ADD)], [operator(0)]))
    root = struct.unpack_from("<I", data, 0)[0]
    vtable = root - struct.unpack_from("<i", data, root)[0]
    slot = root + struct.unpack_from("<H", data, vtable + 6)[0]  # Model.operator_codes
    vec = slot + struct.unpack_from("<I", data, slot)[0]
    assert struct.unpack_from("<I", data, vec)[0] == 1
    struct.pack_into("<I", data, vec, 0xFFFFFFF0)
    report = _scan(tmp_path, bytes(data))
    assert report.coverage.value == "partial"
    assert rule_ids(report) == ["AUD-SCAN-002"]


def test_inline_buffers_inside_the_file_are_fine(tmp_path):
    data = model([opcode(ADD)], [operator(0)], buffers=[buffer(), buffer(b"\x01" * 64)])
    assert _scan(tmp_path, data).findings == ()


@pytest.mark.parametrize("hostile", [buffer(offset=16, size=2**40), buffer(b"\xab" * 8)])
def test_buffer_beyond_the_file_is_malformed(tmp_path, hostile):
    data = bytearray(model([opcode(ADD)], [operator(0)], buffers=[hostile]))
    blob = b"\x08\x00\x00\x00" + b"\xab" * 8
    if blob in data:  # the inline blob: make it claim 1 MB
        at = data.index(blob)
        struct.pack_into("<I", data, at, 1 << 20)
    report = _scan(tmp_path, bytes(data))
    assert rule_ids(report) == ["AUD-TFL-004"]
