"""Legacy (non-zip) torch.save files: five pickles and raw storages, parsed by that layout."""

from __future__ import annotations

import io
import os
import pickle
import struct

import pytest

from auditor.formats.contract import FormatOptions, ScanContext
from auditor.formats.pickle import torch_legacy
from auditor.model import Severity
from auditor.scanning.engine import dispatch

torch = pytest.importorskip("torch")


def save(obj, protocol: int = 2) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    return buf.getvalue()


def scan(data: bytes, name: str = "model.pt"):
    ctx = ScanContext(file=name, name=name, size=len(data), options=FormatOptions(),
                      dispatch=dispatch)
    return dispatch(io.BytesIO(data), ctx)


def rules(result) -> list[str]:
    return [f.rule for f in result.findings]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.int8, torch.uint8, torch.int64, torch.bool,
                                   torch.complex64])
def test_every_common_dtype_is_clean(dtype):
    result = scan(save({"t": torch.ones(3, 2, dtype=dtype), "n": 1}))
    assert result.format == "pytorch-legacy" and result.findings == []
    assert result.facts["storages"] == 1


def test_whole_model_save_calls_its_module_classes_through_persistent_ids():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    result = scan(save(model))
    assert result.format == "pytorch-legacy"
    assert {f.rule for f in result.findings} == {"AUD-PKL-003"}
    assert any("torch.nn.modules.linear.Linear" in f.detail and "called by NEWOBJ" in f.detail
               for f in result.findings)


def test_sparse_and_quantized_tensors_are_clean():
    q = torch.quantize_per_tensor(torch.rand(4), 0.1, 10, torch.quint8)
    result = scan(save({"sparse": torch.eye(3).to_sparse(), "q": q}))
    assert result.format == "pytorch-legacy" and result.findings == []


def test_storage_bytes_that_look_like_opcodes_are_not_opcodes():
    data = torch.frombuffer(bytearray(b"cos\nsystem\n(S'x'\ntR."), dtype=torch.uint8)
    assert scan(save([data.clone()])).findings == []


def test_magic_number_produced_by_reduce_is_not_legacy_and_is_flagged():
    magic = (b"\x80\x02cbuiltins\neval\n(X\x1c\x00\x00\x000x1950a86a20f9469cfc6c + 0*0x0tR.")
    data = magic + save({"a": torch.zeros(2)})[15:]
    result = scan(data)
    assert result.format == "pickle"
    assert any(f.rule == "AUD-PKL-001" and f.severity == Severity.CRITICAL
               for f in result.findings)


def test_trailing_data_after_the_last_storage_is_flagged():
    result = scan(save({"a": torch.zeros(2)}) + b"extra")
    assert rules(result) == ["AUD-PT-102"]


def test_storage_count_mismatch_is_flagged():
    data = bytearray(save({"a": torch.zeros(4)}))
    count_at = len(data) - 16 - 8
    assert struct.unpack("<q", data[count_at:count_at + 8])[0] == 4
    data[count_at:count_at + 8] = struct.pack("<q", 3)
    assert rules(scan(bytes(data))) == ["AUD-PT-101"]


def test_truncated_storage_is_flagged():
    data = save({"a": torch.zeros(100)})
    assert rules(scan(data[:-10])) == ["AUD-PT-101"]


def test_payload_in_the_object_pickle_is_critical():
    class Payload:
        def __reduce__(self):
            return (os.system, ("true",))

    head = pickle.dumps(torch_legacy.MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001}, protocol=2)
    evil = head + pickle.dumps([Payload()], protocol=2) + pickle.dumps([], protocol=2)
    result = scan(evil)
    assert result.format == "pytorch-legacy"
    assert any(f.rule == "AUD-PKL-001" for f in result.findings)


def test_wrong_protocol_version_is_a_layout_finding():
    data = save([1])
    bad = data[:15] + pickle.dumps(1000, protocol=2) + data[21:]
    assert rules(scan(bad)) == ["AUD-PT-101"]


def test_sniff_needs_the_literal_magic_first():
    assert torch_legacy.sniff(save([1])[:64], "x.pt")
    assert not torch_legacy.sniff(pickle.dumps([1], protocol=2), "x.pt")
