"""The OpenSSF Model Signing (OMS) v1.0 statement: which files, which digests, in which order.

Signing follows the reference tool's conventions by default (resource order
by path components, a single-file model's resource named "."), so its
verifier accepts our signatures; `compat="spec"` writes the specification's
conventions (code-point order, the file's basename). Verification accepts
both, and the legacy `Digests/v0.1` predicate.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from auditor.integrity.cachelinks import is_cache_blob_link

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_V1 = "https://model_signing/signature/v1.0"
PREDICATE_LEGACY = "https://model_signing/Digests/v0.1"
DEFAULT_SIGNATURE = "model.sig"  # where OMS tools put a model's signature
DEFAULT_IGNORED = frozenset({".git", ".github", ".gitignore", ".gitattributes"})
HASHES = {"sha256", "blake2b"}


class StatementError(ValueError):
    """The signed statement is not a usable OMS statement; the message says why."""


@dataclass(frozen=True)
class Resource:
    name: str  # POSIX path relative to the model root; "." for a single-file model
    digest: str  # lowercase hex
    algorithm: str = "sha256"


@dataclass(frozen=True)
class Statement:
    model_name: str
    root_digest: str
    resources: tuple[Resource, ...]
    hash_type: str = "sha256"
    method: str = "files"
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = ()
    predicate_type: str = PREDICATE_V1


def order_key(name: str, compat: str) -> Any:
    """model_signing orders by path components (`a/b` before `a-b`); the spec by code points."""
    return PurePosixPath(name).parts if compat == "model_signing" else name


def root_digest(resources: tuple[Resource, ...]) -> str:
    """SHA-256 over the raw resource digests in listed order (whatever the hash type)."""
    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r.digest))
    return h.hexdigest()


def build_statement(
    model_name: str,
    digests: dict[str, str],
    *,
    ignore_paths: tuple[str, ...],
    single_file: bool = False,
    compat: str = "model_signing",
) -> bytes:
    """The statement bytes to sign (JSON with 2-space indent, as the reference writes it)."""
    if single_file:
        (name, digest), = digests.items()
        names = [("." if compat == "model_signing" else name, digest)]
    else:
        names = sorted(digests.items(), key=lambda kv: order_key(kv[0], compat))
    resources = tuple(Resource(n, d) for n, d in names)
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root_digest(resources)}}],
        "predicateType": PREDICATE_V1,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": sorted(ignore_paths),
            },
            "resources": [
                {"name": r.name, "algorithm": r.algorithm, "digest": r.digest} for r in resources
            ],
        },
    }
    return json.dumps(doc, indent=2).encode()


def _safe_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise StatementError(f"resource name {name!r} is not a path")
    if name == ".":
        return name
    norm = posixpath.normpath(name)
    if (name.startswith("/") or "\\" in name or "\x00" in name or norm != name
            or norm == ".." or norm.startswith("../")):
        raise StatementError(f"resource name {name!r} is not a plain relative path")
    return name


def parse_statement(payload: bytes) -> Statement:
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StatementError(f"statement is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise StatementError(f"statement _type is not {STATEMENT_TYPE}")
    subjects = doc.get("subject")
    ptype = doc.get("predicateType")
    predicate = doc.get("predicate") or {}
    if ptype == PREDICATE_LEGACY:
        return _parse_legacy(subjects)
    if ptype != PREDICATE_V1:
        raise StatementError(f"unsupported predicateType {ptype!r} (expected {PREDICATE_V1})")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise StatementError("statement must have exactly one subject")
    subject = subjects[0]
    root = (subject.get("digest") or {}).get("sha256")
    ser = predicate.get("serialization") if isinstance(predicate, dict) else None
    if not isinstance(ser, dict):
        raise StatementError("predicate.serialization missing")
    method = ser.get("method")
    hash_type = ser.get("hash_type")
    if method not in ("files", "shards"):
        raise StatementError(f"unsupported serialization method {method!r}")
    if hash_type not in HASHES:
        raise StatementError(f"unsupported hash_type {hash_type!r} (supported: sha256, blake2b)")
    raw = predicate.get("resources")
    if not isinstance(raw, list):
        raise StatementError("predicate.resources missing")
    resources = []
    for r in raw:
        if not isinstance(r, dict) or not isinstance(r.get("digest"), str):
            raise StatementError(f"malformed resource {r!r}")
        name = r.get("name")
        if method == "shards":
            path, _, span = str(name).partition(":")
            _safe_name(path)
            if not _is_span(span):
                raise StatementError(f"shard resource {name!r} has no valid start:end")
        else:
            _safe_name(name)
        try:
            bytes.fromhex(r["digest"])
        except ValueError:
            raise StatementError(f"resource {name!r} digest is not hex") from None
        resources.append(Resource(name, r["digest"].lower(), str(r.get("algorithm", hash_type))))
    ignore = ser.get("ignore_paths", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise StatementError("ignore_paths must be a list of paths")
    return Statement(
        model_name=str(subject.get("name", "")), root_digest=str(root or ""),
        resources=tuple(resources), hash_type=hash_type, method=method,
        allow_symlinks=bool(ser.get("allow_symlinks", False)), ignore_paths=tuple(ignore),
    )


def _is_span(span: str) -> bool:
    start, _, end = span.partition(":")
    return start.isdigit() and end.isdigit() and int(start) <= int(end)


def _parse_legacy(subjects: Any) -> Statement:
    """v0.1: one subject per file, its sha256 as digest; no root digest."""
    if not isinstance(subjects, list) or not subjects:
        raise StatementError("legacy statement has no subjects")
    resources = []
    for s in subjects:
        if not isinstance(s, dict):
            raise StatementError("malformed legacy subject")
        digest = (s.get("digest") or {}).get("sha256")
        if not isinstance(digest, str):
            raise StatementError("legacy subject without sha256 digest")
        resources.append(Resource(_safe_name(s.get("name")), digest.lower()))
    res = tuple(resources)
    return Statement(model_name="", root_digest=root_digest(res), resources=res,
                     predicate_type=PREDICATE_LEGACY)


def model_files(root: Path, ignore: frozenset[str], *, allow_symlinks: bool) -> list[str]:
    """Relative POSIX paths of the files a signature covers (ignored paths excluded).

    A Hugging Face cache snapshot is all links into the repo's `blobs/`: those
    are the cache's layout, not symlinks the signer chose, so they count as files.
    """
    if root.is_file():
        return ["."]
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if is_ignored(rel, ignore):
            continue
        if path.is_symlink() and not allow_symlinks and not is_cache_blob_link(path):
            raise StatementError(f"{rel} is a symlink (not allowed in a signed model)")
        if path.is_file():
            out.append(rel)
    return out


def is_ignored(rel: str, ignore: frozenset[str]) -> bool:
    """Whether a relative path is one of `ignore` or under one of them."""
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in ignore)
