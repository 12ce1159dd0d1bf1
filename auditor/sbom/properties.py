"""The one table of `auditor:*` CycloneDX properties: name, place, type, allowed values, meaning.

The writer (cyclonedx.py) emits auditor properties only through `emit`, the
reader (facts.py) and `auditor sbom diff` look them up through the constants
below, `auditor sbom validate` checks a document's auditor properties with
`check`, and docs/sbom.md's property tables are tested against `PROPERTIES`.
So a property cannot be renamed, or given a new value, in one place only.

Values are strings, as CycloneDX properties are. Tri-states are `true`,
`false` or `unknown` (`unknown`: not known, never "no").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from auditor.errors import AuditorError
from auditor.model import Grade, Severity

PREFIX = "auditor:"
UNKNOWN = "unknown"

# Where a property may appear: the model component, its modelCard, a file
# component, a pedigree ancestor, a vulnerability (finding).
MODEL, CARD, FILE, ANCESTOR, FINDING = "model", "model-card", "file", "ancestor", "finding"

# Value types.
STRING, TRI_STATE, INTEGER, ENUM, CSV = "string", "tri-state", "integer", "enum", "csv"
TRI_STATES = ("true", "false", UNKNOWN)
SEVERITY_LABELS = tuple(s.label for s in sorted(Severity, reverse=True))  # critical first
# A revision that names a commit: 40 hex digits.
COMMIT = re.compile(r"\A[0-9a-fA-F]{40}\Z")
VERDICTS = ("clean", *SEVERITY_LABELS)
COVERAGES = ("scanned", "partial", "unsupported", "error")
SOURCES = ("local", "hf-cache", "hub", "oci")
# What integrity/signing.py's verifier reports (`unknown`: present but not checked, or no
# signature facts at all) plus `unsigned` (integrity/model_signature.py: no signature file).
SIGNATURE_STATUSES = ("verified", "invalid", "untrusted", "unsigned", UNKNOWN)
# How strongly a provenance fact is proven, weakest first (auditor.model.Grade).
GRADES = tuple(g.value for g in Grade)


@dataclass(frozen=True)
class Property:
    """One `auditor:*` property as written and read."""

    name: str
    places: tuple[str, ...]
    kind: str  # STRING, TRI_STATE, INTEGER, ENUM (see `values`) or CSV (comma-separated)
    meaning: str
    values: tuple[str, ...] = ()  # the allowed values of an ENUM (TRI_STATE: TRI_STATES)
    repeated: bool = False  # may appear more than once on one component

    @property
    def allowed(self) -> tuple[str, ...]:
        return TRI_STATES if self.kind == TRI_STATE else self.values

    def problem(self, value: object) -> str | None:
        """Why `value` is not a valid value of this property, or None."""
        if not isinstance(value, str):
            return f"{self.name}: value must be a string"
        if self.allowed and value not in self.allowed:
            return (f"{self.name}: {value!r} is not one of {', '.join(self.allowed)}")
        if self.kind == INTEGER and not value.isdigit():
            return f"{self.name}: {value!r} is not a non-negative integer"
        return None


def _p(name: str, places: tuple[str, ...], kind: str, meaning: str,
       values: tuple[str, ...] = (), repeated: bool = False) -> Property:
    return Property(PREFIX + name, places, kind, meaning, values, repeated)


SOURCE = _p("source", (MODEL,), ENUM, "where the bytes were read from", SOURCES)
REVISION_REQUESTED = _p("revision:requested", (MODEL,), STRING,
                        "the revision asked for (Hub requested revision, an OCI tag or digest, "
                        "else the model's)")
REVISION_COMMIT = _p("revision:commit", (MODEL,), STRING, "the commit (40 hex), when known")
REVISION_PINNED = _p("revision:pinned", (MODEL,), TRI_STATE,
                     "the requested revision is a full commit id or an OCI manifest digest (a "
                     "branch or tag is not)")
ORIGIN_PUBLISHER = _p("origin:publisher", (MODEL,), STRING,
                      "the publisher: Hub author, else the org part of an org/name model name")
ORIGIN_PUBLISHER_GRADE = _p("origin:publisher-grade", (MODEL, ANCESTOR), ENUM,
                            "how strongly the publisher is proven: hub-verified (the Hub's "
                            "author), recorded (a git remote, cache or mirror layout), declared "
                            "(a name someone gave)", GRADES)
ORIGIN_PUBLISHER_EVIDENCE = _p("origin:publisher-evidence", (MODEL,), STRING,
                               "the record the publisher was read from")
IDENTITY_NAME_GRADE = _p("identity:name-grade", (MODEL,), ENUM,
                         "how strongly the model's name is proven", GRADES)
IDENTITY_NAME_EVIDENCE = _p("identity:name-evidence", (MODEL,), STRING,
                            "the record the name was read from (git remote origin, the cache "
                            "layout, mirror tree, --name, the folder name, the Hub)")
REVISION_GRADE = _p("revision:grade", (MODEL,), ENUM,
                    "how strongly the commit is proven", GRADES)
REVISION_EVIDENCE = _p("revision:evidence", (MODEL,), STRING,
                       "the record the commit was read from (git HEAD, the download record, "
                       "the cache layout, --revision, the Hub)")
ORIGIN_DECLARED = _p("origin:declared", (MODEL,), STRING,
                     "an organisation the artifacts name as their origin (card model_creator, "
                     "GGUF general.organization)", repeated=True)
SCAN_VERDICT = _p("scan:verdict", (MODEL, FILE), ENUM,
                  "clean, or the highest severity found", VERDICTS)
SCAN_COVERAGE = _p("scan:coverage", (FILE,), ENUM,
                   "how far the scan looked inside the file: scanned, partial (a limit hit), "
                   "unsupported (hashed, not parsed), error (unreadable or malformed)", COVERAGES)
SCAN_COVERAGE_COUNT = {
    coverage: _p(f"scan:coverage:{coverage}", (MODEL,), INTEGER,
                 f"number of files with coverage {coverage}")
    for coverage in COVERAGES
}
SCAN_COVERAGE_EXCLUDED = _p("scan:coverage:excluded", (MODEL,), INTEGER,
                            "number of files an exclude pattern (--exclude, config exclude) "
                            "left out: not read, not judged, not file components")
SCAN_EXCLUDED = _p("scan:excluded", (MODEL,), STRING,
                   "a file an exclude pattern left out, as `path (pattern)`; the first 1000 "
                   "(scan:coverage:excluded counts them all)", repeated=True)
SCAN_LIMITS_HIT = _p("scan:limits-hit", (MODEL,), TRI_STATE,
                     "a parser limit was reached anywhere (a partial file or AUD-SCAN-002)")
SCAN_RULES_VERSION = _p("scan:rules-version", (MODEL,), STRING, "version of auditor's rule set")
FORMATS = _p("formats", (MODEL,), CSV,
             "the weight formats present, comma-separated; empty when none")
REMOTE_CODE = _p("remote-code", (MODEL, FILE), TRI_STATE,
                 "loading could import shipped code (model); the file is such code (file)")
REMOTE_CODE_FILE = _p("remote-code:file", (MODEL,), STRING, "a shipped code file",
                      repeated=True)
SIGNATURE_STATUS = _p("signature:status", (MODEL,), ENUM,
                      "result of the signature check (unknown: not checked)", SIGNATURE_STATUSES)
SIGNATURE_METHOD = _p("signature:method", (MODEL,), STRING,
                      "signing method (key, certificate, sigstore), when a signature was checked")
SIGNATURE_SIGNER = _p("signature:signer", (MODEL,), STRING,
                      "who signed, when a signature was checked")
SIGNATURE_COVERED = _p("signature:covered", (FILE,), TRI_STATE,
                       "the checked signature covers this file (unknown: none checked)")
UPSTREAM_MATCH = _p("upstream:sha256-match", (MODEL, FILE), TRI_STATE,
                    "the digest equals the one upstream (the Hub) lists; for the model: false "
                    "if any file differs, true if every file matched")
UPSTREAM_SHA256 = _p("upstream:sha256", (FILE,), STRING,
                     "the SHA-256 a record lists for this path: a claim, compared with the "
                     "content only where sha256-match says so (never put in `hashes`)")
UPSTREAM_RECORD_GRADE = _p("upstream:record-grade", (FILE,), ENUM,
                           "grade of the record that lists this file's digest (its sha256, or "
                           "the git blob id of a non-LFS file): recorded (a cache or download "
                           "record), hub-verified (the Hub this run)", GRADES)
UPSTREAM_GRADE = _p("upstream:grade", (MODEL, FILE), ENUM,
                    "how strongly the bytes are proven the publisher's: signed (a verified "
                    "signature covers them), else the grade of the record their computed digest "
                    "matched; for the model, the weakest over its files; unknown: not proven",
                    (*GRADES, UNKNOWN))
SIZE = _p("size", (FILE,), INTEGER, "size in bytes")
FORMAT = _p("format", (FILE,), STRING,
            "content format found by sniffing the bytes, never the extension")
WEIGHTS = _p("weights", (FILE,), TRI_STATE, "the file is in a weight format")
CARD_LIBRARY_NAME = _p("card:library-name", (CARD,), STRING, "the card's library_name")
CARD_BASE_MODEL_RELATION = _p("card:base-model-relation", (CARD,), STRING,
                              "the card's base_model_relation")
LINEAGE_RELATION = _p("lineage:relation", (ANCESTOR,), STRING,
                      "how the model derives from this ancestor (finetune, quantized, merge, "
                      "adapter, distillation, as stated; same-base or family when measured; "
                      "or unknown)")
LINEAGE_RESOLVED = _p("lineage:resolved", (ANCESTOR,), TRI_STATE,
                      "the ancestor was looked up on the Hub (false: only declared)")
LINEAGE_DEPTH = _p("lineage:depth", (ANCESTOR,), INTEGER, "1 = direct base, 2 = its base ...")
LINEAGE_GRADE = _p("lineage:grade", (ANCESTOR,), ENUM,
                   "how strongly the derivation is proven: declared (the files say so), "
                   "hub-verified (the Hub's card data at the pinned commit), measured (the "
                   "fingerprints of the bytes), signed",
                   GRADES)
LINEAGE_SCORE = _p("lineage:score", (ANCESTOR,), STRING,
                   "a measured ancestor's similarity, a decimal in [0, 1] (reference store: mean "
                   "cosine of sampled embedding rows; family table: the match score)")
LINEAGE_EVIDENCE = _p("lineage:evidence", (ANCESTOR,), STRING,
                      "a declaration of this base (README.md base_model, adapter_config.json, "
                      "a GGUF general.base_model.N, mergekit_config.yml, the Hub's card data)",
                      repeated=True)
LOCATION_FILE = _p("location:file", (FINDING,), STRING, "the file the finding is about")
LOCATION_MEMBER = _p("location:member", (FINDING,), STRING,
                     "the archive member path, when inside a container")
LOCATION_OFFSET = _p("location:offset", (FINDING,), INTEGER,
                     "byte offset in the file or member, when known")

PROPERTIES: tuple[Property, ...] = (
    SOURCE, REVISION_REQUESTED, REVISION_COMMIT, REVISION_PINNED, REVISION_GRADE,
    REVISION_EVIDENCE, IDENTITY_NAME_GRADE, IDENTITY_NAME_EVIDENCE, ORIGIN_PUBLISHER,
    ORIGIN_PUBLISHER_GRADE, ORIGIN_PUBLISHER_EVIDENCE, ORIGIN_DECLARED, SCAN_VERDICT,
    *SCAN_COVERAGE_COUNT.values(), SCAN_COVERAGE_EXCLUDED, SCAN_EXCLUDED, SCAN_LIMITS_HIT,
    SCAN_RULES_VERSION, FORMATS, REMOTE_CODE,
    REMOTE_CODE_FILE, SIGNATURE_STATUS, SIGNATURE_METHOD, SIGNATURE_SIGNER, UPSTREAM_MATCH,
    UPSTREAM_GRADE, SIZE, FORMAT, WEIGHTS, SCAN_COVERAGE, UPSTREAM_SHA256, UPSTREAM_RECORD_GRADE,
    SIGNATURE_COVERED, CARD_LIBRARY_NAME, CARD_BASE_MODEL_RELATION, LINEAGE_RELATION,
    LINEAGE_RESOLVED, LINEAGE_DEPTH, LINEAGE_GRADE, LINEAGE_SCORE, LINEAGE_EVIDENCE, LOCATION_FILE,
    LOCATION_MEMBER, LOCATION_OFFSET,
)
BY_NAME: dict[str, Property] = {p.name: p for p in PROPERTIES}


class PropertyError(AuditorError):
    """auditor wrote a property the table does not allow: a bug, never the user's input."""


def emit(prop: Property, value: str) -> dict[str, str]:
    """A `{name, value}` property for the writer, checked against the table."""
    problem = prop.problem(value)
    if problem is not None:
        raise PropertyError(f"generated SBOM property {problem}")
    return {"name": prop.name, "value": value}


def tri(value: object) -> str:
    """None → unknown, truthy → true, falsy → false."""
    return UNKNOWN if value is None else "true" if value else "false"


def check(properties: list[object], place: str) -> Iterator[tuple[int, str]]:
    """(index, problem) for each auditor property of a component at `place` the table refuses.

    Other tools' properties (any name not starting with `auditor:`) are not ours to judge.
    """
    seen: set[str] = set()
    for i, item in enumerate(properties):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.startswith(PREFIX):
            continue
        prop = BY_NAME.get(name)
        if prop is None:
            yield i, f"unknown auditor property {name!r}"
            continue
        if place not in prop.places:
            yield i, f"{name} does not belong on a {place} (only {', '.join(prop.places)})"
        problem = prop.problem(item.get("value"))  # type: ignore[union-attr]
        if problem is not None:
            yield i, problem
        if name in seen and not prop.repeated:
            yield i, f"{name} repeated (it may appear once)"
        seen.add(name)
