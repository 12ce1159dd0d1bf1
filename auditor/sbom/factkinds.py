"""The facts policies see, as typed frozen records: the single list of documented facts.

Each field carries its one-line meaning; `FACT_FIELDS` is derived from the
fields, so the policy linter checks every fact name a rule uses against the
records themselves, and docs/policy.md describes each one (a test checks).

Tri-state facts (`weights`, `upstream_match`, `signed`, `remote_code`,
`resolved`) are the strings `true`, `false` or `unknown`, as in the SBOM
itself. Whatever the SBOM does not say is the explicit string `unknown`: a
rule comparing against a real value then fails instead of passing on a
missing key. Facts that come from the policy's data files (jurisdiction,
tier ...) are `unknown` until the policy engine fills them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from auditor.sbom import properties as P
from auditor.sbom.properties import SIGNATURE_STATUSES, UNKNOWN

SEVERITIES = (*P.SEVERITY_LABELS, UNKNOWN)
COVERAGES = (*P.COVERAGES, UNKNOWN)


def _fact(meaning: str, **kwargs: Any) -> Any:
    return field(metadata={"meaning": meaning}, **kwargs)


def _from_data(meaning: str) -> Any:
    return _fact(meaning, default=UNKNOWN)


@dataclass(frozen=True)
class ModelInfo:
    """`model`: the model as a whole."""

    name: str = _fact("model name (Hub id `org/name` when known)")
    publisher: str = _fact("who published it: auditor's origin property, else publisher, "
                           "supplier, purl namespace or the `org/` part of the name; else unknown")
    purl: str = _fact("package URL, or unknown")
    revision: str = _fact("commit or requested revision, or unknown")
    pinned: bool = _fact("bool: the revision is a full 40-hex commit")
    license: str = _fact("SPDX id or expression, lower-cased (SPDX ids compare "
                         "case-insensitively)")
    formats: tuple[str, ...] = _fact("list of the content formats of its files")
    remote_code: str = _fact("tri-state: the model ships code that a loader runs "
                             "(trust_remote_code)")
    code_sha256: tuple[str, ...] = _fact("list of SHA-256 digests of the files that are "
                                         "remote code")
    source: str = _fact("where the bytes came from (local, hf, ...), or unknown")
    verdict: str = _fact("the scan verdict recorded in the SBOM (clean or worst severity), "
                         "or unknown")
    coverage: Mapping[str, int] = _fact("map coverage -> number of files (scanned, partial, "
                                        "unsupported, error, unknown)")
    files: int = _fact("number of file components")
    findings: Mapping[str, int] = _fact("map severity -> number of findings (critical ... "
                                        "info, unknown)")
    worst: str = _fact("highest finding severity, or none")
    upstream_match: str = _fact("tri-state: every file matches the publisher's upstream digests")
    sbom_tool: str = _fact("name of the tool that wrote the SBOM, or unknown")
    declared_origins: tuple[str, ...] = _fact(
        "organisations the files name as their origin (card model_creator, GGUF "
        "general.organization); each is also a lineage entry")
    publisher_grade: str = _fact("how strongly the publisher is proven: declared, recorded, "
                                 "hub-verified, measured, signed, or unknown")
    publisher_evidence: str = _fact("the record the publisher was read from, or unknown")
    name_grade: str = _fact("how strongly the model's name is proven (grades as above)")
    name_evidence: str = _fact("the record the name was read from (git remote origin, the "
                               "cache layout, mirror tree, --name, the folder name, the Hub)")
    revision_grade: str = _fact("how strongly the commit is proven (grades as above)")
    revision_evidence: str = _fact("the record the commit was read from, or unknown")
    upstream_grade: str = _fact("how strongly every file's bytes are proven the publisher's: "
                                "signed, hub-verified, recorded, or unknown (not proven)")
    excluded: int = _fact("number of files an exclude pattern left out of the scan (not read, "
                          "not judged), or -1 when the SBOM does not say (compare with != 0)")
    excluded_files: tuple[str, ...] = _fact("the excluded files as `path (pattern)`, the first "
                                            "1000 (`excluded` counts them all)")
    jurisdiction: str = _from_data("ISO 3166 country of the publisher (from data.publishers), "
                                   "or unknown")
    tier: str = _from_data("risk tier of that jurisdiction (from data.jurisdictions), or unknown")
    lineage_tier: str = _from_data("worst tier over the whole lineage (restricted > elevated > "
                                   "standard)")


@dataclass(frozen=True)
class FileFacts:
    """`file`: one file component of the model."""

    path: str = _fact("path relative to the model root")
    name: str = _fact("file name (last path segment)")
    extension: str = _fact("lower-case extension with its dot (`.bin`), or empty")
    format: str = _fact("content format (by magic bytes, not by name), or unknown")
    sha256: str = _fact("SHA-256 of the content, or unknown")
    size: int = _fact("size in bytes, or -1 when unknown")
    verdict: str = _fact("scan verdict of the file (clean or worst severity), or unknown")
    coverage: str = _fact("scanned, partial, unsupported, error or unknown")
    weights: str = _fact("tri-state: the file holds weights")
    upstream_sha256: str = _fact("digest the publisher's repository lists for this path, "
                                 "or unknown")
    upstream_match: str = _fact("tri-state: the content matches the upstream digest")
    upstream_grade: str = _fact("how strongly the bytes are proven the publisher's: signed, "
                                "hub-verified, recorded, or unknown (not proven)")
    upstream_record_grade: str = _fact("grade of the record that lists upstream_sha256 "
                                       "(recorded, hub-verified), or unknown")
    signed: str = _fact("tri-state: the file is covered by a verified signature")
    remote_code: str = _fact("tri-state: the file is code a loader would run")
    findings: int = _fact("number of findings on this file")
    worst: str = _fact("highest finding severity on this file, or none")


@dataclass(frozen=True)
class FindingFacts:
    """`finding`: one vulnerability as it bears on the model or one of its files."""

    rule: str = _fact("rule id (AUD-... for auditor, else the vulnerability id)")
    severity: str = _fact("critical, high, medium, low, info or unknown")
    file: str = _fact("path of the affected file, or empty when it affects the model")
    title: str = _fact("short description")
    detail: str = _fact("what exactly was found")
    fix: str = _fact("recommendation, or empty")
    member: str = _fact("archive member path, or empty")
    offset: int = _fact("byte offset, or -1")
    source: str = _fact("the tool that reported it, or unknown")


@dataclass(frozen=True)
class SignatureFacts:
    """`signature`: the model's signature check as the SBOM records it."""

    status: str = _fact(", ".join(SIGNATURE_STATUSES[:-1]) + " or " + SIGNATURE_STATUSES[-1])
    method: str = _fact("signing method (e.g. key, certificate, sigstore), or unknown")
    signer: str = _fact("identity of the signer, or unknown")
    grade: str = _fact("signed when the signature is verified against the trust "
                       "configuration, else unknown")


@dataclass(frozen=True)
class LineageEntry:
    """`ancestor` (and each element of `lineage`): the model itself or one of its ancestors."""

    name: str = _fact("model name")
    publisher: str = _fact("publisher (as for model.publisher), or unknown")
    version: str = _fact("revision of that ancestor, or unknown")
    relation: str = _fact("self (the model itself), finetune, adapter, merge, quantized, "
                          "distillation, same-base / family (measured), declared (policy "
                          "declared_parents), origin (named by the files as their origin) or "
                          "unknown")
    depth: int = _fact("0 for the model itself, 1 for its parents, 2 for theirs ...")
    resolved: str = _fact("tri-state: the ancestor was identified on the Hub (not only named)")
    declared: bool = _fact("bool: added by the policy's declared_parents, not found in the SBOM")
    grade: str = _fact("how strongly this derivation is proven: declared (the files say so), "
                       "recorded, hub-verified (the Hub's card data at a pinned commit), "
                       "measured, signed; for the model itself, its name's grade; or unknown")
    evidence: tuple[str, ...] = _fact("list of the declarations or records that name it")
    publisher_grade: str = _fact("how strongly its publisher is proven (grades as above)")
    score: float = _fact("double: a measured ancestor's similarity in [0, 1], or -1 when it "
                         "was not measured")
    organisation: str = _from_data("organisation behind the publisher (from data.publishers), "
                                   "or unknown")
    jurisdiction: str = _from_data("ISO 3166 country (from data.publishers), or unknown")
    tier: str = _from_data("risk tier (from data.jurisdictions), or unknown")


@dataclass(frozen=True)
class ModelFacts:
    """Facts about one model as the SBOM states them (before policy data is applied).

    `lineage` starts with the model itself (depth 0) and lists the ancestors
    found in `pedigree.ancestors`, depth-first.
    """

    model: ModelInfo
    signature: SignatureFacts
    lineage: tuple[LineageEntry, ...]
    files: tuple[FileFacts, ...]
    findings: tuple[FindingFacts, ...]


def _meanings(record: type) -> dict[str, str]:
    return {f.name: f.metadata["meaning"] for f in fields(record)}


# Policy variable -> fact -> one-line meaning (docs/policy.md has the detail).
FACT_FIELDS: dict[str, dict[str, str]] = {
    "model": _meanings(ModelInfo),
    "file": _meanings(FileFacts),
    "finding": _meanings(FindingFacts),
    "signature": _meanings(SignatureFacts),
    "ancestor": _meanings(LineageEntry),
}
