"""OMS signatures of models in an OCI registry (CNCF Distribution, started by the fixture).

A model is signed as a folder (`auditor sign`, the publisher's step) and pushed; its
`model.sig` travels either inside the layers (as KitOps and NVIDIA ship it) or attached
to the manifest as an OCI referrer holding the Sigstore bundle (the media type cosign
uses for bundles as referrers). `auditor scan/gate oci://…` with the publisher's key then
verifies it against the digests computed while the layers streamed: the same verdicts
and findings as for a signed folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.sources.oci import SIGSTORE_BUNDLE
from tests.admission_fixtures import cli, keys, model_folder
from tests.oci_registry import push_modelkit


@pytest.fixture(scope="module")
def signed(oci_registry, tmp_path_factory):
    """(registry, keys, the model's files without its signature, the signature bytes)."""
    root = tmp_path_factory.mktemp("oci-signing")
    k = keys(root / "keys")
    model = model_folder(root / "tiny", k.private)
    files = {p.name: p.read_bytes() for p in sorted(model.iterdir()) if p.name != "model.sig"}
    return oci_registry("plain"), k, files, (model / "model.sig").read_bytes()


def _push(signed, repository: str, files: dict[str, bytes], *,
          referrer: bytes | None = None, tag: str = "v1") -> str:
    registry = signed[0]
    client = registry.client()
    with client:
        pushed = push_modelkit(client, repository, tag, files)
        if referrer is not None:
            client.attach(repository, pushed, SIGSTORE_BUNDLE, referrer, SIGSTORE_BUNDLE)
    return registry.ref(repository, pushed.digest)


def _report(command: str, ref: str, key: Path, tmp_path: Path) -> tuple[int, dict]:
    out = tmp_path / f"{command}.json"
    code = cli(command, ref, *(("--policy", "production") if command == "gate" else ()),
               "--key", key, "--plain-http", "--format", "json", "-o", out, "--quiet")
    return code, json.loads(out.read_text())


def _violations(report: dict) -> set[str]:
    return {v["rule"] for m in report["models"] for v in m["violations"]}


def _findings(report: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for finding in report["models"][0]["findings"]:
        out.setdefault(finding["rule"], set()).add(finding["file"])
    return out


def test_a_bundle_attached_as_a_referrer_verifies_and_production_passes(signed, tmp_path):
    _, k, files, sig = signed
    ref = _push(signed, "models/referred", files, referrer=sig)
    code, report = _report("gate", ref, k.public, tmp_path)
    assert _violations(report) == set(), report["models"][0]["violations"]
    assert code == 0
    _, scan = _report("scan", ref, k.public, tmp_path)
    signature = scan["models"][0]["facts"]["signature"]
    assert signature["status"] == "verified"
    assert signature["signature"].startswith("referrer sha256:")
    assert sorted(signature["covered"]) == sorted(files)


def test_model_sig_inside_the_layers_verifies_and_production_passes(signed, tmp_path):
    _, k, files, sig = signed
    ref = _push(signed, "models/inside", {**files, "model.sig": sig})
    code, report = _report("gate", ref, k.public, tmp_path)
    assert _violations(report) == set(), report["models"][0]["violations"]
    assert code == 0
    _, scan = _report("scan", ref, k.public, tmp_path)
    assert scan["models"][0]["facts"]["signature"]["signature"] == "model.sig"


def test_an_unsigned_oci_model_fails_prod_002(signed, tmp_path):
    _, k, files, _ = signed
    code, report = _report("gate", _push(signed, "models/unsigned", files), k.public, tmp_path)
    assert "PROD-002" in _violations(report)
    assert code != 0


def test_a_changed_file_under_the_old_signature_is_named(signed, tmp_path):
    _, k, files, sig = signed
    weights = bytearray(files["model.safetensors"])
    weights[-1] ^= 0x01
    ref = _push(signed, "models/tampered", {**files, "model.safetensors": bytes(weights)},
                referrer=sig)
    _, scan = _report("scan", ref, k.public, tmp_path)
    assert scan["models"][0]["facts"]["signature"]["status"] == "invalid"
    assert _findings(scan)["AUD-SIG-001"] == {"model.safetensors"}
    code, report = _report("gate", ref, k.public, tmp_path)
    assert "PROD-002" in _violations(report)
    assert code != 0


def test_an_added_file_is_not_covered_and_named(signed, tmp_path):
    _, k, files, sig = signed
    ref = _push(signed, "models/extra", {**files, "loader.py": b"import os\n"}, referrer=sig)
    _, scan = _report("scan", ref, k.public, tmp_path)
    assert _findings(scan)["AUD-SIG-002"] == {"loader.py"}


def test_a_signature_by_an_untrusted_key_does_not_make_the_model_signed(signed, tmp_path):
    _, k, files, sig = signed
    ref = _push(signed, "models/untrusted", files, referrer=sig)
    _, scan = _report("scan", ref, k.other_public, tmp_path)
    assert scan["models"][0]["facts"]["signature"]["status"] == "untrusted"
    assert "AUD-SIG-003" in _findings(scan)
    code, report = _report("gate", ref, k.other_public, tmp_path)
    assert "PROD-002" in _violations(report)
    assert code != 0


def test_an_explicit_signature_file_comes_before_the_referrers(signed, tmp_path):
    _, k, files, sig = signed
    ref = _push(signed, "models/explicit", files, referrer=b"{not a bundle")
    given = tmp_path / "model.sig"
    given.write_bytes(sig)
    out = tmp_path / "scan.json"
    cli("scan", ref, "--signature", given, "--key", k.public, "--plain-http",
        "--format", "json", "-o", out, "--quiet")
    signature = json.loads(out.read_text())["models"][0]["facts"]["signature"]
    assert (signature["status"], signature["signature"]) == ("verified", str(given))


def test_a_tag_is_said_to_resolve_to_a_digest(signed, tmp_path):
    _, k, files, _ = signed
    digest_ref = _push(signed, "models/tagged", files, tag="v7")
    _, scan = _report("scan", digest_ref.split("@")[0] + ":v7", k.public, tmp_path)
    unpinned = [f for f in scan["models"][0]["findings"] if f["rule"] == "AUD-PROV-005"]
    assert len(unpinned) == 1
    assert f"'v7' resolved to digest {digest_ref.split('@')[1]}" in unpinned[0]["detail"]
