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
from pathlib import Path
from typing import Any

from auditor.atomicio import write_atomic
from auditor.errors import ConfigError
from auditor.fingerprint.architecture import ArchPrint
from auditor.fingerprint.measure import Fingerprint, Reference
from auditor.fingerprint.tokenizer import TokenizerPrint
from auditor.fingerprint.weights import WeightPrint

FORMAT = 1
SUFFIX = ".fingerprint.json"
MAX_FILE = 4 * 1024 * 1024
MAX_FILES = 100_000


def file_for(folder: Path, name: str) -> Path:
    return folder / (name.replace("/", "--") + SUFFIX)


def add(folder: Path, name: str, publisher: str, revision: str | None, fp: Fingerprint) -> Path:
    """Write (or replace) `name`'s entry; refused when the model has no fingerprint at all."""
    if fp.empty:
        raise ConfigError(f"{name}: no tokenizer, shape or embedding found to fingerprint")
    if not publisher or publisher == "unknown":
        raise ConfigError(f"{name}: no publisher known for this model, so a match could never "
                          "name its origin (pass --name ORG/NAME)")
    doc = {"format": FORMAT, "name": name, "publisher": publisher, "revision": revision,
           **_parts(fp)}
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
    tok = doc.get("tokenizer")
    weights, layer = doc.get("weights"), doc.get("layer")
    fp = Fingerprint(
        tokenizer=TokenizerPrint.from_facts(tok) if isinstance(tok, dict) else None,
        architecture=_arch(doc.get("architecture"), path),
        weights=WeightPrint.from_sample(weights) if isinstance(weights, dict) else None,
        specials=doc.get("specials") if isinstance(doc.get("specials"), dict) else {},
        layer=WeightPrint.from_sample(layer) if isinstance(layer, dict) else None,
    )
    if fp.empty:
        raise ConfigError(f"{path}: the fingerprint holds nothing readable")
    return Reference(doc["name"], doc["publisher"], fp)


def _arch(value: Any, path: Path) -> ArchPrint | None:
    if value is None:
        return None
    names = {f.name for f in dataclasses.fields(ArchPrint)}
    if not isinstance(value, dict) or not set(value) <= names:
        raise ConfigError(f"{path}: architecture: unknown fields")
    traits = value.get("traits", [])
    if not isinstance(traits, list) or not all(isinstance(t, str) for t in traits):
        raise ConfigError(f"{path}: architecture.traits: expected a list of strings")
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
