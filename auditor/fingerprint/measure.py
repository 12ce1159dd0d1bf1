"""Measured lineage: a model's fingerprints held against the family table and a reference store.

Names and cards lie; a vocabulary, a shape and the rows of an embedding
matrix rarely do. This turns the facts the format modules read into one
`Fingerprint` per model, and measures it two ways:

- against the shipped family table (`families.yaml`): tokenizer specials,
  distinctive config keys and shapes name the family a model belongs to, and
  so its publishers. A measurement counts only when it is clear: a high
  score, and no family of another publisher close behind it.
- against the local reference store (`store.py`, base models the organisation
  mirrors): the sampled embedding rows, and the sampled rows of the first
  layer's query projection, of a fine-tune, a quantization or a re-carded copy
  stay close to its base's, whatever the dtype; an unrelated model's do not.
  Either matrix is enough: a model whose embedding was permuted, re-initialised
  or swapped with its tokenizer still carries its base's layers. Weights
  decide; the tokenizer and the shape are evidence.

A measured base becomes a lineage edge graded `measured`, with its score. A
declared base, or a model that presents itself as a known lab's original,
whose measurement names another family's publisher is a contradiction
finding: someone relabelled the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.fingerprint import architecture, tokenizer
from auditor.fingerprint.architecture import ArchPrint
from auditor.fingerprint.tokenizer import TokenizerPrint
from auditor.model import FileReport, Finding, Grade, LineageEdge, Rule, Severity

if TYPE_CHECKING:
    from auditor.fingerprint.weights import WeightPrint

# Same base: mean cosine of the sampled embedding rows, or of the first layer's query
# projection rows (fine-tunes and quantizations stay above 0.9, unrelated models near 0;
# bench/README.md has the measured distribution).
SAME_BASE = 0.5
# A family is named when it scores this high and no family of other publishers is within
# FAMILY_MARGIN of it: an ambiguous shape measures nothing.
FAMILY = 0.8
FAMILY_MARGIN = 0.1
# Where a tokenizer is read from, most authoritative first.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tiktoken.model")

CONTRADICTION = Rule(
    "AUD-LIN-001", Severity.HIGH, "Measured lineage contradicts the declared one",
    "The model's tokenizer, shape or weights belong to another family than the base its "
    "files declare, or than the lab whose name it carries: the card or the name was "
    "rewritten, which is how a restricted-origin model is passed off as another.",
    "Find out where the weights come from (compare them with the claimed base in your "
    "mirror); treat the model as derived from the measured family until then.",
)
RULES = (CONTRADICTION,)


@dataclass(frozen=True)
class Fingerprint:
    """What the bytes say of a model: any part may be missing."""

    tokenizer: TokenizerPrint | None
    architecture: ArchPrint | None
    weights: WeightPrint | None  # the token embedding's sampled rows
    specials: Mapping[str, Any]  # bos / eos strings and ids, for the family table
    layer: WeightPrint | None = None  # the first layer's query projection's sampled rows
    # Every file's sample (fact name -> prints, by path): a decoy file holding another
    # embedding must not hide the one the loader uses, so each is compared.
    samples: Mapping[str, tuple[WeightPrint, ...]] = dataclasses.field(default_factory=dict)
    skipped: tuple[str, ...] = ()  # tensors not sampled and why ("token_embd.weight is IQ2_XS")

    @property
    def empty(self) -> bool:
        return (self.tokenizer is None and self.architecture is None and self.weights is None
                and self.layer is None)


@dataclass(frozen=True)
class Measured:
    """One base the bytes point at: a family of the table or a model of the reference store."""

    name: str
    publishers: tuple[str, ...]
    basis: str  # "the family table" or "the reference store"
    score: float
    evidence: tuple[str, ...]
    # Publishers whose models this one legitimately derives from: a distilled family's
    # student base (R1-Distill-Qwen is a Qwen model), so declaring that base is no lie.
    related: tuple[str, ...] = ()
    # How strongly the publisher is known: the family table's attribution is measured with the
    # match; a reference keeps the grade its publisher had when it was added to the store.
    publisher_grade: Grade = Grade.MEASURED


def fingerprint(files: Sequence[FileReport]) -> Fingerprint:
    """The model's fingerprint from its files' facts (no file is read here)."""
    tok = next((p for f in sorted(files, key=_tokenizer_first)
                if (p := TokenizerPrint.from_facts(f.facts)) is not None), None)
    found: dict[str, tuple[WeightPrint, ...]] = {fact: () for fact in SAMPLES}
    if any(fact in f.facts for f in files for fact in SAMPLES):  # numpy only when sampled
        from auditor.fingerprint.weights import WeightPrint

        def untied_first(report: FileReport, fact: str) -> tuple[bool, str]:
            sample = report.facts.get(fact)  # a tied output head stands in for an embedding
            return (isinstance(sample, Mapping) and bool(sample.get("tied")), report.path)

        for fact in SAMPLES:  # a sharded checkpoint may hold the two in different shards
            found[fact] = tuple(p for f in sorted(files, key=lambda r: untied_first(r, fact))
                                if (p := WeightPrint.from_facts(f.facts, fact)) is not None
                                )[:MAX_SAMPLES]
    first = {fact: prints[0] if prints else None for fact, prints in found.items()}
    skipped = tuple(f"{f.path}: {f.facts[fact + '_skipped']}" for f in files for fact in SAMPLES
                    if isinstance(f.facts.get(fact + "_skipped"), str))[:MAX_SAMPLES]
    return Fingerprint(tok, architecture.ArchPrint.from_files(files),
                       first["embedding_sample"], _specials(files), first["layer_sample"],
                       found, skipped)


SAMPLES = ("embedding_sample", "layer_sample")
MAX_SAMPLES = 64  # files whose samples are compared (a checkpoint has one embedding)


# After the tokenizer's own files, where special-token ids are read from, most current first:
# generation_config.json is what the model generates with; config.json is often stale.
ID_FILES = ("generation_config.json", "config.json")


def _tokenizer_first(report: FileReport) -> tuple[int, str]:
    name = report.path.rsplit("/", 1)[-1].lower()
    order = (*TOKENIZER_FILES, *ID_FILES)
    return (order.index(name) if name in order else len(order), report.path)


def _specials(files: Sequence[FileReport]) -> dict[str, Any]:
    """bos/eos strings and ids, first found wins: the tokenizer's own ids before config.json's,
    which may be stale (R1-Distill-Qwen's config keeps Qwen's BOS id 151643; its tokenizer
    puts `<｜begin▁of▁sentence｜>` at 151646)."""
    found: dict[str, Any] = {}
    for report in sorted(files, key=_tokenizer_first):
        facts = report.facts if isinstance(report.facts, Mapping) else {}
        vocab = facts.get("vocab") if isinstance(facts.get("vocab"), Mapping) else {}
        for source in (vocab.get("specials"), facts.get("specials"),
                       facts if report.path.lower() in ID_FILES else None):
            if not isinstance(source, Mapping):
                continue
            for key, alias in (("bos", "bos"), ("eos", "eos"), ("bos_id", "bos_token_id"),
                               ("eos_id", "eos_token_id"), ("bos_id", "bos_id"),
                               ("eos_id", "eos_id"), ("pad_id", "pad_token_id")):
                value = source.get(alias)
                if key not in found and isinstance(value, str | int | list) and not isinstance(
                        value, bool):
                    found[key] = value
    return found


@dataclass(frozen=True)
class Reference:
    """A base model of the local reference store, with its fingerprint."""

    name: str
    publisher: str
    fingerprint: Fingerprint
    publisher_grade: Grade = Grade.DECLARED  # how the publisher was known when it was added


def measure(fp: Fingerprint, references: Sequence[Reference], model: str) -> list[Measured]:
    """The bases the bytes point at, strongest first (the model itself left out)."""
    found = [m for ref in references if ref.name.lower() != model.lower()
             if (m := _against(fp, ref)) is not None]
    family = _family(fp)
    if family is not None:
        found.append(family)
    return sorted(found, key=lambda m: (-m.score, m.name))


def _against(fp: Fingerprint, ref: Reference) -> Measured | None:
    """Same base as `ref` when the sampled embedding rows or the sampled layer rows say so
    (the higher score counts; both are evidence); the tokenizer and shape are evidence."""
    pairs = [(label, mine, theirs) for label, fact, theirs in (
        ("embedding rows", "embedding_sample", ref.fingerprint.weights),
        ("layer-0 q_proj rows", "layer_sample", ref.fingerprint.layer),
    ) if theirs is not None for mine in _candidates(fp, fact)]
    if not pairs:
        return None
    from auditor.fingerprint import weights

    best: dict[str, tuple[float, int]] = {}  # per kind, the best of the model's samples
    for label, mine, theirs in pairs:
        score = weights.similarity(mine, theirs)
        if score is not None and score > best.get(label, (-2.0, 0))[0]:
            best[label] = (score, len(mine.ids))
    scores = [(label, score, n) for label, (score, n) in best.items()]
    score = max((s for _, s, _ in scores), default=None)
    if score is None or score < SAME_BASE:
        return None
    evidence = [f"{label} {s:.2f} ({n} sampled)" for label, s, n in scores]
    if fp.tokenizer is not None and ref.fingerprint.tokenizer is not None:
        said = tokenizer.similarity(fp.tokenizer, ref.fingerprint.tokenizer)
        evidence.append(f"tokenizer {said:.2f}")
    if fp.architecture is not None and ref.fingerprint.architecture is not None:
        shape = architecture.similarity(fp.architecture, ref.fingerprint.architecture)
        evidence.append(f"architecture {shape:.2f}")
    return Measured(ref.name, (ref.publisher,), "the reference store", round(score, 3),
                    tuple(evidence), publisher_grade=ref.publisher_grade)


def _candidates(fp: Fingerprint, fact: str) -> tuple[WeightPrint, ...]:
    """Every sample of this kind the model's files hold (a store entry has just its own)."""
    if fp.samples.get(fact):
        return fp.samples[fact]
    own = fp.weights if fact == "embedding_sample" else fp.layer
    return (own,) if own is not None else ()


def _family(fp: Fingerprint) -> Measured | None:
    """The family table's clear best match, or None when the shape is ambiguous or weak."""
    from auditor.fingerprint import families

    if fp.architecture is None and not fp.specials:
        return None
    ranked = families.nearest(fp.architecture, fp.specials)
    if not ranked or ranked[0][1] < FAMILY:
        return None
    best, score = ranked[0]
    rivals = [s for f, s in ranked[1:] if not set(f.publishers) & set(best.publishers)]
    if rivals and rivals[0] > score - FAMILY_MARGIN:
        return None
    said = ["tokenizer specials" if fp.specials else "", "architecture" if fp.architecture else ""]
    base = next((f for f, _ in ranked if f.key == best.distill_of), None)
    return Measured(best.label, best.publishers, "the family table", round(score, 3),
                    (f"{' and '.join(s for s in said if s)} {score:.2f}",),
                    base.publishers if base is not None else ())


def edges(measured: Sequence[Measured], model: str) -> list[LineageEdge]:
    """Measured bases as lineage edges graded `measured` (relation: what kind of match)."""
    return [
        LineageEdge(
            name=m.name, relation="same-base" if m.basis == "the reference store" else "family",
            grade=Grade.MEASURED, evidence=(f"{m.basis}: {', '.join(m.evidence)}",),
            publisher=m.publishers[0] if m.publishers else None,
            publisher_grade=m.publisher_grade if m.publishers else None,
            child=model, score=m.score)
        for m in measured
    ]


def known_labs() -> frozenset[str]:
    """The publishers of the family table's families (lower case): the labs whose name a
    relabelled model borrows."""
    from auditor.fingerprint import families

    return frozenset(p.lower() for f in families.table() for p in f.publishers)


def contradictions(
    measured: Sequence[Measured], declared: Sequence[LineageEdge], own: str | None,
    labs: frozenset[str],
) -> list[Finding]:
    """A finding where a measurement names other publishers than what the files claim.

    Claims weighed: each declared base whose publisher is a lab of the family table,
    and, when no base is declared, the model's own publisher if it is such a lab (it
    presents itself as that lab's original). Converters, individuals and unknown
    namespaces claim nothing a measurement could contradict. A measurement agreeing with
    any claim (a merge declares several bases) or with a distilled family's base is none.
    """
    claims = [(e.publisher, f"{e.name} ({e.grade} by {', '.join(e.evidence)})")
              for e in declared if e.publisher and e.grade != Grade.MEASURED]
    if not claims and own:
        claims = [(own, f"the model's own name ({own})")]
    weighed = [(p, said) for p, said in claims if p.lower() in labs]
    out: list[Finding] = []
    for m in measured:
        known = {p.lower() for p in (*m.publishers, *m.related)}
        if not weighed or any(p.lower() in known for p, _ in weighed):
            continue  # a merge names several bases: one of them matching is no lie
        out.append(CONTRADICTION.finding("", (
            f"declared: {'; '.join(said for _, said in weighed)}; measured: {m.name} of "
            f"{', '.join(m.publishers)} ({m.basis}, score {m.score:.2f}: "
            f"{', '.join(m.evidence)})")))
    return out


def summary(fp: Fingerprint) -> dict[str, Any]:
    """The fingerprint as report facts (JSON): what was measured, not the raw sketches."""
    out: dict[str, Any] = {}
    if fp.tokenizer is not None:
        out["tokenizer"] = {"size": fp.tokenizer.size, "digest": fp.tokenizer.digest,
                            "kind": fp.tokenizer.kind}
    if fp.specials:  # from every file that names them: tokenizer, generation and model config
        out["specials"] = dict(fp.specials)
    if fp.skipped:  # why a tensor was not sampled: a reviewer must see what was not measured
        out["skipped"] = list(fp.skipped)
    if fp.architecture is not None:
        out["architecture"] = {k: (sorted(v) if isinstance(v, frozenset) else v)
                               for k, v in dataclasses.asdict(fp.architecture).items()
                               if v not in (None, frozenset())}
    if fp.weights is not None:
        out["weights"] = {"tensor": fp.weights.tensor, "hidden": fp.weights.hidden,
                          "vocab": fp.weights.vocab, "rows": len(fp.weights.ids)}
    if fp.layer is not None:
        out["layer"] = {"tensor": fp.layer.tensor, "hidden": fp.layer.hidden,
                        "out": fp.layer.vocab, "rows": len(fp.layer.ids)}
    return out
