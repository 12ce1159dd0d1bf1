"""PyTorch zip checkpoints, TorchScript archives and the legacy tar layout."""

from __future__ import annotations

import io
import struct
import tarfile
import textwrap
import zipfile

import pytest

from tests.builders import damaged
from tests.test_archive_zip import at, rules, scan
from tests.zip_builders import ZMember, benign_pickle, build_zip, canary_pickle

torch = pytest.importorskip("torch")


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def _optimizer_state():
    net = _net()
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 4)).sum().backward()
    opt.step()
    return {"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}


REAL_CHECKPOINTS = {
    "state_dict": lambda: _net().state_dict(),
    "optimizer": _optimizer_state,
    "nested": lambda: {"a": [torch.ones(2), (torch.zeros(3, dtype=torch.int64), {"b": 1.5})],
                       "meta": {"name": "x", "steps": [1, 2, 3]}},
    "dtypes": lambda: {str(d): torch.ones(2, dtype=d) for d in
                       (torch.float16, torch.bfloat16, torch.int8, torch.bool, torch.float64)},
}


@pytest.mark.parametrize("kind", sorted(REAL_CHECKPOINTS))
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_real_torch_save_outputs_pass_the_default_gate(tmp_path, run_cli, kind, protocol):
    path = tmp_path / "model.pt"
    torch.save(REAL_CHECKPOINTS[kind](), path, pickle_protocol=protocol)
    report = scan(path)
    assert report.format == "pytorch-zip"
    assert report.coverage.value == "scanned"
    assert report.facts["storages"] >= 1
    assert not {r for r in rules(report) if r.startswith(("AUD-ARC", "AUD-PT"))}
    assert run_cli("scan", path).code == 0


def _scripted(tmp_path):
    source = tmp_path / "tiny_module.py"
    source.write_text(textwrap.dedent("""
        import torch

        class Tiny(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(3, 2)

            def forward(self, x):
                y = torch.relu(self.lin(x))
                if y.sum() > 0:
                    y = y * 2
                return y + torch.tensor([1.0, 2.0])
    """))
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_module", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the test's own fixture code, not a scanned artifact
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(module.Tiny()), path)
    return path


def test_torchscript_archive_passes_with_code_noted(tmp_path, run_cli):
    path = _scripted(tmp_path)
    report = scan(path)
    assert report.format == "torchscript"
    assert at(report, "AUD-PT-002")[0].severity.label == "medium"
    assert "AUD-PT-003" not in rules(report)
    assert run_cli("scan", path).code == 0


def _rewrite(path, replace: dict[str, bytes], add: dict[str, bytes] | None = None):
    """Repack a torch zip with some members' bytes replaced (names and order kept)."""
    with zipfile.ZipFile(path) as src:
        items = [(i.filename, src.read(i)) for i in src.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name, data in items:
            dst.writestr(name, replace.get(name, data))
        for name, data in (add or {}).items():
            dst.writestr(name, data)
    path.write_bytes(out.getvalue())


def test_torchscript_code_with_python_constructs_is_flagged(tmp_path):
    path = _scripted(tmp_path)
    with zipfile.ZipFile(path) as z:
        code = next(n for n in z.namelist() if "/code/" in n and n.endswith(".py"))
        text = z.read(code)
    _rewrite(path, {code: b"import os\n" + text + b"\n    os.system('id')\n"})
    found = at(scan(path), "AUD-PT-003")
    assert {f.location.member for f in found} == {code}
    assert any("import" in f.detail for f in found)


def test_malicious_data_pkl_is_flagged(tmp_path, canary):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    _rewrite(path, {"model/data.pkl": canary_pickle(canary)})
    report = scan(path)
    assert any(f.severity.label == "critical" and f.location.member == "model/data.pkl"
               for f in report.findings)


@pytest.mark.parametrize("name", ["model/extra.pkl", "model/constants.pkl", "model/aux_state",
                                  "other/data.pkl"])
def test_every_pickle_member_is_scanned_whatever_its_name(tmp_path, canary, name):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    _rewrite(path, {}, add={name: canary_pickle(canary, protocol=4)})
    report = scan(path)
    assert any(f.severity.label == "critical" and f.location.member == name
               for f in report.findings), report.findings


def test_storage_holding_a_pickle_is_flagged_and_scanned(tmp_path, canary):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(64)}, path)
    _rewrite(path, {"model/data/0": canary_pickle(canary).ljust(256, b"\x00")})
    report = scan(path)
    (finding,) = at(report, "AUD-PT-001")
    assert finding.location.member == "model/data/0"
    assert any(f.severity.label == "critical" for f in report.findings)


def test_bookkeeping_member_with_binary_content_is_flagged(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    _rewrite(path, {"model/byteorder": bytes(range(256)) * 4})
    assert at(scan(path), "AUD-PT-004")[0].location.member == "model/byteorder"


def test_crc_tampered_data_pkl_is_flagged_and_still_scanned(tmp_path, canary):
    """CVE-2025-10156: torch ignores the CRC; strict scanners stop on it."""
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    _rewrite(path, {"model/data.pkl": canary_pickle(canary)})
    data = bytearray(path.read_bytes())
    cd = data.find(b"PK\x01\x02")  # data.pkl is the first central entry
    struct.pack_into("<L", data, cd + 16, 0xDEADBEEF)
    path.write_bytes(bytes(data))
    report = scan(path)
    assert "AUD-ARC-002" in rules(report)
    assert any(f.severity.label == "critical" for f in report.findings)


def test_local_name_tampering_on_a_real_checkpoint_is_flagged(tmp_path, canary):
    """CVE-2025-1944: rename data.pkl in the local header only."""
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    _rewrite(path, {"model/data.pkl": canary_pickle(canary)})
    data = path.read_bytes()
    local = data.index(b"model/data.pkl")  # the local header comes first
    path.write_bytes(data[:local] + b"model/data.pkX" + data[local + 14:])
    report = scan(path)
    assert "AUD-ARC-001" in rules(report)
    assert report.format == "pytorch-zip"
    assert any(f.severity.label == "critical" for f in report.findings)


def test_flipped_flags_on_a_real_checkpoint_are_flagged(tmp_path):
    """CVE-2025-1945: set the encrypted bit of data.pkl's local header."""
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    data = bytearray(path.read_bytes())
    data[6] |= 0x01
    path.write_bytes(bytes(data))
    assert {"AUD-ARC-003", "AUD-ARC-001"} <= rules(scan(path))


def test_scan_reads_storage_bytes_only_in_the_hashing_pass(tmp_path):
    from auditor import pipeline
    from auditor.scanning.options import ScanOptions

    path = tmp_path / "big.pt"
    torch.save({f"layer{i}": torch.zeros(1024 * 1024) for i in range(24)}, path)  # ~100 MB
    size = path.stat().st_size
    result = pipeline.scan(path, ScanOptions(jobs=1))
    overhead = result.bytes_read - size
    assert 0 <= overhead < 256 * 1024, overhead


def _legacy_tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _legacy_records(storage_record=None, trailing: bytes = b"") -> dict[str, bytes]:
    """The members of a legacy tar checkpoint, laid out as old torch.save wrote them."""
    import pickle

    record = storage_record or pickle.dumps(("0", "cpu", torch.FloatStorage), protocol=2)
    storages = (pickle.dumps(1, protocol=2) + record + struct.pack("<q", 3) + bytes(12)
                + pickle.dumps([], protocol=2) + trailing)
    tensors = (pickle.dumps(1, protocol=2) + pickle.dumps(("t0", "0", torch.FloatTensor),
                                                          protocol=2)
               + struct.pack("<ii", 1, 0) + struct.pack("<3q", 3, 1, 0))
    return {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True,
                                  "type_sizes": {"int": 4, "long": 8, "short": 2}}, protocol=2),
        "pickle": pickle.dumps({"w": 1}, protocol=2),
        "tensors": tensors,
        "storages": storages,
    }


def test_legacy_tar_checkpoint_passes(tmp_path):
    from auditor import pipeline
    from auditor.scanning.options import ScanOptions

    path = tmp_path / "old.pt"
    path.write_bytes(_legacy_tar(_legacy_records()))
    options = ScanOptions(jobs=1)
    (report,) = pipeline.scan(path, options).models[0].files
    assert report.format == "pytorch-tar"
    assert report.facts["members"] == 4
    assert report.coverage.value == "scanned"
    assert report.worst is None or report.worst.label in ("info", "low", "medium"), \
        report.findings


def test_legacy_tar_malicious_pickle_member_is_flagged(tmp_path, canary):
    members = _legacy_records()
    members["pickle"] = canary_pickle(canary)
    path = tmp_path / "old.pt"
    path.write_bytes(_legacy_tar(members))
    report = scan(path)
    assert any(f.severity.label == "critical" and f.location.member == "pickle"
               for f in report.findings)


def test_legacy_tar_storage_record_is_analysed(tmp_path, canary):
    path = tmp_path / "old.pt"
    path.write_bytes(_legacy_tar(_legacy_records(storage_record=canary_pickle(canary))))
    report = scan(path)
    assert any(f.severity.label == "critical" and f.location.member == "storages"
               for f in report.findings)


def test_legacy_tar_data_after_the_records_is_flagged(tmp_path):
    path = tmp_path / "old.pt"
    path.write_bytes(_legacy_tar(_legacy_records(trailing=b"extra payload")))
    assert at(scan(path), "AUD-PT-102")[0].location.member == "storages"


def test_zip_that_only_reveals_torch_layout_in_its_directory_gets_the_torch_layout(tmp_path):
    data = build_zip([ZMember("readme.txt", b"hi\n"), ZMember("m/data.pkl", benign_pickle()),
                      ZMember("m/data/0", bytes(64)), ZMember("m/version", b"3\n")])
    path = tmp_path / "m.pt"
    path.write_bytes(data)
    report = scan(path)
    assert report.format == "pytorch-zip"
    assert report.facts["storages"] == 1
    assert "AUD-SCAN-003" not in rules(report)  # the storage is not an "unknown binary"


def test_corrupted_checkpoints_never_crash_the_scanner(tmp_path):
    """Fail closed on a real checkpoint with random byte damage and truncation."""
    import random

    path = tmp_path / "model.pt"
    torch.save(_optimizer_state(), path)
    base = path.read_bytes()
    for data in damaged(base, random.Random(7), 120, flips=8):
        path.write_bytes(data)
        assert "AUD-SCAN-007" not in rules(scan(path))


def test_broken_stream_with_payload_first_is_flagged(tmp_path, canary):
    """nullifAI: the payload runs before the loader meets the broken rest of the stream."""
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    _rewrite(path, {"model/data.pkl": canary_pickle(canary)[:-1] + b"\xff\xfe garbage"})
    report = scan(path)
    assert any(f.severity.label == "critical" and f.location.member == "model/data.pkl"
               for f in report.findings), report.findings


def test_hidden_member_named_like_a_storage_is_scanned_in_full(tmp_path, canary):
    data = build_zip([ZMember("m/data.pkl", benign_pickle()), ZMember("m/version", b"3\n"),
                      ZMember("m/data/7", b"\x00\x00" + canary_pickle(canary, protocol=0),
                              in_central=False)])
    path = tmp_path / "m.pt"
    path.write_bytes(data)
    report = scan(path)
    assert "AUD-ARC-004" in rules(report)
    assert any(f.location.member == "m/data/7" and f.rule != "AUD-ARC-004"
               for f in report.findings), report.findings


def test_protocol_1_pickle_disguised_as_a_storage_is_flagged(tmp_path, canary):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(64)}, path)
    _rewrite(path, {"model/data/0": b"(" + canary_pickle(canary, protocol=0)})
    assert "AUD-PT-001" in rules(scan(path))


# --- TorchScript code is parsed: strings and comments never count ------------------------------

def test_torchscript_strings_and_comments_naming_dangerous_functions_are_clean(tmp_path):
    from tests.benign.torchscript import _scripted as write_scripted

    write_scripted(tmp_path)
    for path in (tmp_path / "guarded.pt", tmp_path / "tagged.pt"):
        with zipfile.ZipFile(path) as z:
            code = b"".join(z.read(n) for n in z.namelist() if n.endswith(".py"))
        assert b"builtins.eval" in code or b"__import__" in code  # the text is there …
        assert "AUD-PT-003" not in rules(scan(path))  # … and is not a reference


@pytest.mark.parametrize("line, what", [
    ("    return os.system('id')", "system module"),
    ("    return builtins.eval(x)", "system module"),
    ("    return __builtins__['exec']('1')", "dynamic import"),
    ("    return __import__('os').popen('id')", "dynamic import"),
    ("    return importlib.import_module('os')", "dynamic import"),
    ("    return eval('1')", "eval/exec"),
    ("    return open('/etc/passwd').read()", "file open"),
    ("    return torch.from_file('/etc/shadow', size=4)", "from_file"),
    ("    import subprocess", "import statement"),
    ("    return os . system ( 'id' ) # a syntax error follows: (", "system module"),
])
def test_torchscript_real_references_are_flagged_in_several_spellings(tmp_path, line, what):
    from auditor.formats.pickle.torchscript_code import suspicious

    source = "def forward(self, x):\n    _0 = \"os.system is fine in a string\"\n" + line + "\n"
    if "syntax error" in line:
        source += "def broken(:\n"
    assert any(what in u.what for u in suspicious(source)), suspicious(source)
    path = _scripted(tmp_path)
    with zipfile.ZipFile(path) as z:
        member = next(n for n in z.namelist() if "/code/" in n and n.endswith(".py"))
    _rewrite(path, {member: source.encode()})
    found = at(scan(path), "AUD-PT-003")
    assert found and all(f.location.member == member for f in found)


def test_torchscript_source_that_cannot_be_tokenized_is_flagged():
    from auditor.formats.pickle.torchscript_code import suspicious

    assert [u.what for u in suspicious("def f(x):\n    return '''os.system\n")] == [
        "source that cannot be read as code"]


# --- torch.export archives ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tests.benign.torch_export import _export

    folder = tmp_path_factory.mktemp("pt2")
    _export(folder)
    return folder


def test_torch_export_archives_are_recognised_and_clean(exported):
    for path in sorted(exported.glob("*.pt2")):
        report = scan(path)
        assert report.format == "pytorch-export"
        assert report.coverage.value == "scanned"
        assert report.facts["storages"] >= 2  # raw weight bytes, judged as storages
        assert [f for f in report.findings if f.severity.label != "info"] == []


def _program_member(path):
    with zipfile.ZipFile(path) as z:
        return next(n for n in z.namelist() if "/models/" in n and n.endswith(".json"))


@pytest.mark.parametrize("target", [
    "torch.os.system", "torch.serialization.pickle.loads", "_operator.call",
    "torch._C._pickle_load_obj",
])
def test_export_program_node_target_outside_operators_is_flagged(tmp_path, exported, target):
    path = tmp_path / "linear.pt2"
    path.write_bytes((exported / "linear.pt2").read_bytes())
    member = _program_member(path)
    with zipfile.ZipFile(path) as z:
        program = z.read(member).replace(b'"torch.ops.aten.linear.default"', f'"{target}"'.encode())
    _rewrite(path, {member: program})
    found = at(scan(path), "AUD-PT-005")
    assert [f.location.member for f in found] == [member]
    assert target in found[0].detail


def test_export_pickled_weight_goes_through_the_pickle_analysis(tmp_path, exported, canary):
    path = tmp_path / "linear.pt2"
    path.write_bytes((exported / "linear.pt2").read_bytes())
    with zipfile.ZipFile(path) as z:
        weight = next(n for n in z.namelist() if "/data/weights/weight_" in n)
        custom = weight.replace("weights/weight_0", "constants/custom_obj_0")
    _rewrite(path, {weight: canary_pickle(canary)}, {custom: canary_pickle(canary)})
    report = scan(path)
    critical = [f.location.member or "" for f in report.findings if f.severity.label == "critical"]
    assert any(m.startswith(weight) for m in critical), critical
    assert any(m.startswith(custom) for m in critical), critical
