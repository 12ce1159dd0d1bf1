"""The local reference store: fingerprints of the base models an organisation mirrors.

Weight fingerprints need the real base weights, which only the organisation
has (its mirror), so the store is built locally: `auditor fingerprint add
MODEL --store DIR` scans a base model and writes one small JSON file per model
(a few tens of KB: digests, a MinHash, the shape and the sampled rows'
sketches, embedding and first layer — never weights; entries written before
the layer was sampled load as they are, without it). Scans given
`--fingerprints DIR` then measure every model against it. A store file that
cannot be read is an error naming the file, never a silently smaller store: a
missing reference is a missed lineage.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from auditor.atomicio import write_atomic
from auditor.errors import ConfigError
from auditor.fingerprint.architecture import ArchPrint
from auditor.fingerprint.measure import Fingerprint, Reference
from auditor.fingerprint.tokenizer import TokenizerPrint
from auditor.fingerprint.weights import WeightPrint
from auditor.model import Grade

T = TypeVar("T")

FORMAT = 1
SUFFIX = ".fingerprint.json"
MAX_FILE = 4 * 1024 * 1024
MAX_FILES = 100_000


def file_for(folder: Path, name: str) -> Path:
    return folder / (name.replace("/", "--") + SUFFIX)


def add(folder: Path, name: str, publisher: str, revision: str | None, fp: Fingerprint,
        publisher_grade: Grade = Grade.DECLARED) -> Path:
    """Write (or replace) `name`'s entry; refused when the model has no fingerprint at all.

    `publisher_grade` is how the publisher was known when the entry was added: a match
    with the entry measures the bytes, never the publisher, so it keeps that grade."""
    if fp.empty:
        raise ConfigError(f"{name}: no tokenizer, shape or embedding found to fingerprint")
    if not publisher or publisher == "unknown":
        raise ConfigError(f"{name}: no publisher known for this model, so a match could never "
                          "name its origin (pass --name ORG/NAME)")
    doc = {"format": FORMAT, "name": name, "publisher": publisher, "revision": revision,
           "publisher_grade": publisher_grade.value, **_parts(fp)}
    path = file_for(folder, name)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


def load(folder: Path) -> list[Reference]:
    """Every entry of the store, by name."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: fingerprint store not found (create it with "
                          "`auditor fingerprint add MODEL --store DIR`)")
    paths = sorted(folder.glob("*" + SUFFIX))
    if len(paths) > MAX_FILES:
        raise ConfigError(f"{folder}: more than {MAX_FILES} fingerprints")
    return [_read(p) for p in paths]


def _read(path: Path) -> Reference:
    try:
        if path.stat().st_size > MAX_FILE:
            raise ConfigError(f"{path}: larger than {MAX_FILE} bytes: not a fingerprint")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable fingerprint ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(
            doc.get("name"), str) or not isinstance(doc.get("publisher"), str):
        raise ConfigError(f"{path}: not an auditor fingerprint (format {FORMAT}, name, "
                          "publisher expected)")
    specials = doc.get("specials", {})
    if not isinstance(specials, dict):
        raise ConfigError(f"{path}: specials: expected a mapping")
    fp = Fingerprint(
        tokenizer=_part(doc, "tokenizer", TokenizerPrint.from_facts, path),
        architecture=_arch(doc.get("architecture"), path),
        weights=_part(doc, "weights", WeightPrint.from_sample, path),
        specials=specials,
        layer=_part(doc, "layer", WeightPrint.from_sample, path),
    )
    if fp.empty:
        raise ConfigError(f"{path}: the fingerprint holds nothing readable")
    try:
        grade = Grade(doc.get("publisher_grade", Grade.DECLARED.value))
    except ValueError:
        raise ConfigError(f"{path}: publisher_grade: not a grade") from None
    return Reference(doc["name"], doc["publisher"], fp, grade)


def _part(doc: dict[str, Any], key: str, parse: Callable[[Any], T | None], path: Path) -> T | None:
    """One print of an entry: absent is None, present but malformed is an error (a part
    silently dropped would be a reference that quietly matches less)."""
    if key not in doc or doc[key] is None:
        return None
    try:
        found = parse(doc[key]) if isinstance(doc[key], dict) else None
    except (TypeError, ValueError, AttributeError):
        found = None
    if found is None:
        raise ConfigError(f"{path}: {key}: malformed")
    return found


def _arch(value: Any, path: Path) -> ArchPrint | None:
    if value is None:
        return None
    names = {f.name for f in dataclasses.fields(ArchPrint)}
    if not isinstance(value, dict) or not set(value) <= names:
        raise ConfigError(f"{path}: architecture: unknown fields")
    traits = value.get("traits", [])
    if not isinstance(traits, list) or not all(isinstance(t, str) for t in traits):
        raise ConfigError(f"{path}: architecture.traits: expected a list of strings")
    for key, item in value.items():
        want = str if key in ("kind", "pattern") else (int, float) if key == "rope_theta" else (
            list if key == "traits" else int)
        if item is not None and (not isinstance(item, want) or isinstance(item, bool)):
            raise ConfigError(f"{path}: architecture.{key}: unexpected {type(item).__name__}")
    return ArchPrint(**{**value, "traits": frozenset(traits)})


def _parts(fp: Fingerprint) -> dict[str, Any]:
    from auditor.formats._lib import sampling

    out: dict[str, Any] = {"specials": dict(fp.specials)}
    if fp.tokenizer is not None:
        t = fp.tokenizer
        out["tokenizer"] = {"size": t.size, "digest": t.digest, "minhash": list(t.minhash),
                            "kind": t.kind, "specials": {"bos": t.bos, "eos": t.eos}}
    if fp.architecture is not None:
        arch = dataclasses.asdict(fp.architecture)
        arch["traits"] = sorted(fp.architecture.traits)
        out["architecture"] = {k: v for k, v in arch.items() if v not in (None, [])}
    for key, w in (("weights", fp.weights), ("layer", fp.layer)):
        if w is not None:
            out[key] = {"tensor": w.tensor, "vocab": w.vocab, "hidden": w.hidden,
                        "dtype": w.dtype, "ids": list(w.ids),
                        "sketch": sampling.encode_sketch(w.sketch)}
    return out
