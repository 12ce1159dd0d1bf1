"""CycloneDX 1.6 SBOM documents for policy tests, built by code.

They carry the properties of auditor/sbom/properties.py (the one table of them), so
policy tests do not depend on the scanner. `python -m tests.sbom_factory`
rewrites the SBOM fixtures of `policies/tests/` (a test checks they match).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FIXTURES = Path(__file__).resolve().parent.parent / "policies" / "tests" / "sboms"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def props(**values: str | None) -> list[dict[str, str]]:
    """`auditor:` properties from keyword names (`scan__coverage` -> `auditor:scan:coverage`)."""
    return [
        {"name": "auditor:" + k.replace("__", ":").replace("_", "-"), "value": v}
        for k, v in values.items() if v is not None
    ]


def file_component(
    path: str, *, fmt: str = "safetensors", weights: str = "true", coverage: str = "scanned",
    verdict: str = "clean", upstream_match: str = "unknown", signed: str = "unknown",
    remote_code: str = "false", digest: str | None = None,
) -> dict[str, Any]:
    digest = digest or sha(path)
    return {
        "type": "file",
        "bom-ref": f"file:{path}",
        "name": path,
        "hashes": [{"alg": "SHA-256", "content": digest}],
        "properties": props(
            size="1024", format=fmt, weights=weights, scan__coverage=coverage,
            scan__verdict=verdict,
            upstream__sha256=digest if upstream_match != "unknown" else None,
            upstream__sha256_match=upstream_match, signature__covered=signed,
            remote_code=remote_code,
        ),
    }


def ancestor(
    name: str, *, relation: str = "finetune", resolved: str = "true",
    parents: list[dict[str, Any]] | None = None, grade: str = "hub-verified",
) -> dict[str, Any]:
    comp: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": f"ancestor:{name}",
        "name": name,
        "version": COMMIT,
        "purl": f"pkg:huggingface/{name}@{COMMIT}",
        "publisher": name.split("/", 1)[0],
        "properties": props(lineage__relation=relation, lineage__resolved=resolved,
                            lineage__grade=grade, lineage__evidence="README.md base_model"),
    }
    if parents:
        comp["pedigree"] = {"ancestors": parents}
    return comp


def finding(rule: str, severity: str, file: str | None, title: str = "a finding") -> dict:
    return {
        "bom-ref": f"finding:{rule}:{file}",
        "id": rule,
        "source": {"name": "auditor"},
        "ratings": [{"severity": severity, "method": "other"}],
        "description": title,
        "affects": [{"ref": f"file:{file}" if file else "model"}],
    }


def model_sbom(
    name: str = "acme/good-7b", *, publisher: str | None = None, revision: str | None = COMMIT,
    license_id: str | None = "Apache-2.0", files: list[dict] | None = None,
    findings: list[dict] | None = None, signature: str = "unsigned",
    upstream_match: str = "unknown", upstream_grade: str = "unknown",
    remote_code: str = "false", ancestors: list[dict] | None = None, source: str = "hf",
    declared_origins: tuple[str, ...] = (), publisher_grade: str = "hub-verified",
) -> dict[str, Any]:
    """An auditor-made SBOM of one model; defaults describe a clean, pinned safetensors model."""
    files = files if files is not None else [
        file_component("model.safetensors"),
        file_component("config.json", fmt="json", weights="false"),
    ]
    formats = sorted({p["value"] for f in files for p in f["properties"]
                      if p["name"] == "auditor:format"})
    model: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": "model",
        "name": name,
        "version": revision or "unversioned",
        "publisher": publisher or name.split("/", 1)[0],
        "properties": props(
            source=source, revision__commit=revision,
            revision__pinned="true" if revision else "false",
            origin__publisher=publisher or name.split("/", 1)[0],
            scan__verdict="clean", formats=",".join(formats), remote_code=remote_code,
            origin__publisher_grade=publisher_grade,
            signature__status=signature, upstream__sha256_match=upstream_match,
            upstream__grade=upstream_grade,
        ),
    }
    model["properties"] += [{"name": "auditor:origin:declared", "value": org}
                            for org in declared_origins]
    if revision:
        model["purl"] = f"pkg:huggingface/{name}@{revision}"
    if license_id:
        model["licenses"] = [{"license": {"id": license_id}}]
    if ancestors:
        model["pedigree"] = {"ancestors": ancestors}
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {"tools": {"components": [{"type": "application", "name": "auditor"}]},
                     "component": model},
        "components": files,
        "vulnerabilities": findings or [],
    }


def third_party_sbom(name: str = "someone/model", publisher: str | None = None) -> dict:
    """Another tool's SBOM: standard fields only, no auditor properties."""
    model: dict[str, Any] = {"type": "machine-learning-model", "bom-ref": "m", "name": name}
    if publisher:
        model["publisher"] = publisher
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {"tools": {"components": [{"type": "application", "name": "other-tool"}]}},
        "components": [{
            **model,
            "components": [{"type": "file", "bom-ref": "f", "name": "weights.bin",
                            "hashes": [{"alg": "SHA-256", "content": sha("w")}]}],
        }],
    }


def fixtures() -> dict[str, dict[str, Any]]:
    """The SBOMs that `policies/tests/*.yaml` refer to, by file name."""
    verified = {"signature": "verified", "upstream_match": "true", "upstream_grade": "signed"}
    return {
        "clean.json": model_sbom("meta-llama/Llama-3.1-8B", **verified),
        "pickle-weights.json": model_sbom(
            "acme/pickled", files=[
                file_component("pytorch_model.bin", fmt="pytorch-zip", verdict="critical"),
                file_component("config.json", fmt="json", weights="false"),
            ],
            findings=[finding("AUD-PKL-001", "critical", "pytorch_model.bin",
                              "Pickle imports a callable that runs code")],
        ),
        "partial-coverage.json": model_sbom(
            "acme/partial", files=[file_component("model.safetensors", coverage="partial")],
        ),
        "unsupported-weights.json": model_sbom(
            "acme/odd", files=[file_component("weights.bin", fmt="unknown", weights="unknown",
                                              coverage="unsupported")],
        ),
        "mismatch.json": model_sbom(
            "acme/liar", files=[file_component("model.safetensors", fmt="pickle",
                                               weights="true")],
            findings=[finding("AUD-FILE-001", "high", "model.safetensors",
                              "File extension does not match its content")],
        ),
        "unpinned.json": model_sbom("acme/unpinned", revision=None, **verified),
        "unsigned.json": model_sbom("acme/unsigned"),
        "recorded-only.json": model_sbom("acme/from-a-cache", upstream_match="true",
                                         upstream_grade="recorded", publisher_grade="recorded"),
        "hub-verified.json": model_sbom("acme/from-the-hub", upstream_match="true",
                                        upstream_grade="hub-verified"),
        "gpl.json": model_sbom("acme/gpl", license_id="GPL-3.0-only", **verified),
        "remote-code.json": model_sbom(
            "acme/custom-arch", remote_code="true", **verified, files=[
                file_component("model.safetensors"),
                file_component("modeling_custom.py", fmt="python", weights="false",
                               remote_code="true", digest=sha("reviewed code")),
            ],
        ),
        "remote-code-unreviewed.json": model_sbom(
            "acme/custom-arch-2", remote_code="true", **verified, files=[
                file_component("model.safetensors"),
                file_component("modeling_custom.py", fmt="python", weights="false",
                               remote_code="true", digest=sha("new code")),
            ],
        ),
        "restricted-publisher.json": model_sbom("deepseek-ai/DeepSeek-R1", **verified),
        "restricted-base.json": model_sbom(
            "acme/llama-ft", **verified,
            ancestors=[ancestor("acme/intermediate", parents=[
                ancestor("Qwen/Qwen2.5-7B", relation="finetune")])],
        ),
        "distilled.json": model_sbom("acme/distilled-7b", **verified),
        "elevated-unknown.json": model_sbom("nobody-knows/model-x", **verified),
        "third-party.json": third_party_sbom(),
        "no-files.json": model_sbom("acme/empty", files=[], **verified),
    }


def write_fixtures(folder: Path = FIXTURES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in fixtures().items():
        (folder / name).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_fixtures()
