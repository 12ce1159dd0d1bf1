"""Path traversal in any archive: names and links judged by where extraction would put them.

Not only model containers: a plain zip, tar, compressed tar, `.nemo` (a tar)
and `.mar` (a zip) are extracted by their loaders, so an escaping name or
link is high whatever the archive is called. A link that stays inside the
archive is what `tarfile` and trainers write for a folder with relative
symlinks, and is not flagged.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import tarfile
import zipfile

import pytest

from tests.test_archive_tar import make_tar, special
from tests.test_archive_zip import at, scan, write
from tests.zip_builders import ZMember, build_zip

SYM, HARD = tarfile.SYMTYPE, tarfile.LNKTYPE

ESCAPING_TAR_LINKS = {
    "absolute": [special("evil", SYM, "/home/user/.ssh/authorized_keys")],
    "climbing": [special("evil", SYM, "../../etc/cron.d/job")],
    "climbing-from-subfolder": [special("a/b/evil", SYM, "../../../x")],
    "backslashes": [special("evil", SYM, "..\\..\\x")],
    "drive": [special("evil", SYM, "C:\\Windows\\system32")],
    "unc": [special("evil", SYM, "\\\\server\\share\\x")],
    "dot-prefixed": [special("evil", SYM, "./../x")],
    "chain": [special("evil", SYM, "step"), special("step", SYM, "../..")],
    "through-linked-folder": [special("d", SYM, "."), special("d/evil", SYM, "..")],
    "deep-link-then-climb": [special("a", SYM, "x/y"), special("a/evil", SYM, "../../..")],
    "loop": [special("evil", SYM, "loop/x"), special("loop", SYM, "loop/x")],
    "hard-absolute": [special("evil", HARD, "/etc/shadow")],
    "hard-climbing": [special("evil", HARD, "../../etc/passwd")],
    "hard-through-symlink": [special("d", SYM, "sub"), special("sub", SYM, "/etc"),
                             special("evil", HARD, "d/shadow")],
}


@pytest.mark.parametrize("case", sorted(ESCAPING_TAR_LINKS))
def test_escaping_tar_links_are_high(tmp_path, case):
    report = scan(write(tmp_path, make_tar(ESCAPING_TAR_LINKS[case])))
    found = at(report, "AUD-ARC-012")
    assert found and all(f.severity.label == "high" for f in found)
    assert "evil" in {f.location.member.rsplit("/", 1)[-1] for f in found}


INTERNAL_TAR_LINKS = {
    "sibling": [("ckpt/model.bin", b"x"), special("latest", SYM, "ckpt/model.bin")],
    "up-and-back": [("a/f", b"x"), special("a/b/link", SYM, "../f")],
    "folder-link": [("ckpt-5/w", b"x"), special("last", SYM, "ckpt-5"),
                    special("last-w", SYM, "last/w")],
    "hard-inside": [("data/f", b"x"), special("copy", HARD, "data/f")],
    "dot-path": [("f", b"x"), special("sub/l", SYM, "./../f")],
}


@pytest.mark.parametrize("case", sorted(INTERNAL_TAR_LINKS))
def test_links_staying_inside_are_not_flagged(tmp_path, case):
    report = scan(write(tmp_path, make_tar(INTERNAL_TAR_LINKS[case])))
    assert not [f for f in report.findings if f.rule.startswith("AUD-ARC")]


ESCAPING_NAMES = ["/etc/cron.d/job", "C:\\Users\\x\\evil.bat", "C:evil", "\\\\server\\share\\x",
                  "../x", "./../x", "a/./../../x", "a\\..\\..\\x", "ok/../../x"]


def _as_bundles(name: str, data: bytes) -> dict[str, bytes]:
    """One member in every archive spelling a model or bundle travels in."""
    tar = make_tar([(name, data)])
    zipped = build_zip([ZMember(name, data)])
    gz = gzip.compress(tar, mtime=0)
    return {"a.tar": tar, "a.tar.gz": gz, "a.tgz": gz,
            "a.tar.bz2": bz2.compress(tar), "a.tar.xz": lzma.compress(tar),
            "model.nemo": tar, "a.zip": zipped, "handler.mar": zipped}


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_escaping_member_names_are_high_in_every_bundle(tmp_path, name):
    for filename, data in _as_bundles(name, b"hello\n").items():
        report = scan(write(tmp_path, data, filename))
        found = [f for f in report.findings if f.rule in ("AUD-ARC-010", "AUD-ARC-011")]
        assert found and all(f.severity.label == "high" for f in found), (filename, name)


def _zip_link(name: str, target: str) -> ZMember:
    return ZMember(name, target.encode(), mode=stat.S_IFLNK | 0o777)


@pytest.mark.parametrize(("members", "escapes"), [
    ([_zip_link("evil", "/home/user/.ssh/id_rsa")], True),
    ([_zip_link("evil", "../../etc/passwd")], True),
    ([_zip_link("evil", "next"), _zip_link("next", "..")], True),
    ([_zip_link("evil", "x" * 5000)], True),  # not a path: not vouched for
    ([ZMember("w/model.bin", b"x"), _zip_link("latest", "w/model.bin")], False),
    ([ZMember("w/model.bin", b"x"), _zip_link("w/alias", "./model.bin")], False),
])
@pytest.mark.parametrize("filename", ["a.zip", "handler.mar"])
def test_zip_symlink_entries_are_judged_by_their_target(tmp_path, members, escapes, filename):
    report = scan(write(tmp_path, build_zip(members), filename))
    assert bool(at(report, "AUD-ARC-012")) is escapes


def test_zip_symlink_data_is_still_scanned_as_a_member(tmp_path):
    """zipfile and torch ignore the mode bits and read the bytes as a file."""
    from tests.zip_builders import canary_pickle
    data = build_zip([ZMember("x.pkl", canary_pickle(tmp_path / "C"),
                              mode=stat.S_IFLNK | 0o777)])
    report = scan(write(tmp_path, data))
    assert any(f.severity.label == "critical" for f in report.findings)


def _folder_with_links(root) -> None:
    (root / "checkpoint-2").mkdir(parents=True)
    (root / "checkpoint-2" / "config.json").write_text('{"a": 1}\n')
    (root / "checkpoint-2" / "notes.txt").write_text("run notes\n")
    os.symlink("checkpoint-2", root / "latest")
    os.symlink("checkpoint-2/config.json", root / "config.json")
    os.link(root / "checkpoint-2" / "notes.txt", root / "notes-copy.txt")


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tarfile_of_a_folder_with_internal_links_is_clean(tmp_path, mode):
    _folder_with_links(tmp_path / "run")
    out = tmp_path / "out"
    out.mkdir()
    path = out / ("bundle.tar" + {"w": "", "w:gz": ".gz", "w:bz2": ".bz2", "w:xz": ".xz"}[mode])
    with tarfile.open(path, mode) as tar:
        tar.add(tmp_path / "run", arcname=".")
    with tarfile.open(path) as tar:
        assert {m.type for m in tar.getmembers()} >= {SYM, HARD}  # the control: links are there
    report = scan(path)
    assert not [f for f in report.findings if f.severity.label in ("medium", "high", "critical")]


@pytest.mark.parametrize("fmt", ["zip", "gztar", "tar"])
def test_shutil_make_archive_is_clean(tmp_path, fmt):
    _folder_with_links(tmp_path / "run")
    out = tmp_path / "out"
    out.mkdir()
    path = shutil.make_archive(str(out / "bundle"), fmt, tmp_path / "run")
    report = scan(path)
    assert not [f for f in report.findings if f.severity.label in ("medium", "high", "critical")]


def test_info_zip_symlinks_inside_are_clean(tmp_path):
    zip_tool = shutil.which("zip")
    if zip_tool is None:
        pytest.skip("Info-ZIP zip not installed")
    import subprocess
    _folder_with_links(tmp_path / "run")
    subprocess.run([zip_tool, "-q", "-r", "-y", str(tmp_path / "b.zip"), "."],
                   cwd=tmp_path / "run", check=True)
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert any(stat.S_ISLNK(i.external_attr >> 16) for i in zf.infolist())  # control
    report = scan(tmp_path / "b.zip")
    assert not [f for f in report.findings if f.severity.label in ("medium", "high", "critical")]


def test_control_tarfile_follows_an_escaping_chain(tmp_path):
    """Without the 'data' filter, extraction writes through the chain, outside the folder."""
    outside = tmp_path / "outside"
    outside.mkdir()
    data = make_tar([special("step", SYM, str(outside)), special("evil", SYM, "step"),
                     ("evil/planted.txt", b"x")])
    dest = tmp_path / "dest"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="fully_trusted")
    assert (outside / "planted.txt").exists()


def _unicode_path(name: str, header_name: str) -> bytes:
    import zlib
    body = b"\x01" + zlib.crc32(header_name.encode()).to_bytes(4, "little") + name.encode()
    return (0x7075).to_bytes(2, "little") + len(body).to_bytes(2, "little") + body


@pytest.mark.parametrize("upath", ["../../etc/cron.d/job", "/etc/passwd"])
def test_info_zip_unicode_path_field_is_checked(tmp_path, upath):
    """unzip extracts under the Unicode Path field's name, not the header's."""
    data = build_zip([ZMember("safe.txt", b"x\n", extra=_unicode_path(upath, "safe.txt"))])
    found = {f.rule for f in scan(write(tmp_path, data)).findings}
    assert found & {"AUD-ARC-010", "AUD-ARC-011"} and "AUD-ARC-001" in found


def test_tar_header_name_behind_a_pax_path_is_checked(tmp_path):
    """A reader that ignores pax records (or GNU long names) uses the ustar name field."""
    info = tarfile.TarInfo("../../x")
    info.size = 1
    info.pax_headers = {"path": "safe.txt"}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"x"))
    assert at(scan(write(tmp_path, out.getvalue())), "AUD-ARC-010")


def test_info_zip_non_ascii_names_are_clean(tmp_path):
    zip_tool = shutil.which("zip")
    if zip_tool is None:
        pytest.skip("Info-ZIP zip not installed")
    import subprocess
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "modèle-données.txt").write_text("x\n")
    subprocess.run([zip_tool, "-q", "-r", str(tmp_path / "b.zip"), "."], cwd=tmp_path / "run",
                   check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    report = scan(tmp_path / "b.zip")
    assert not [f for f in report.findings if f.severity.label in ("medium", "high", "critical")]
