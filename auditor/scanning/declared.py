"""The base models a model's own files declare, each with its relation and its evidence.

A quantization, a fine-tune or a merge inherits its base model's origin, and
every artifact format says so in its own words: the card's `base_model`, a
PEFT `adapter_config.json`, GGUF `general.base_model.N.*` and
`general.source.*`, `config.json` `_name_or_path`, a mergekit recipe. This
module reads those facts (never the files) into `LineageEdge`s graded
`declared`: anyone editing a file can forge them, so they are what the model
claims, for the Hub lookup and the policies to weigh.

The facts come from hostile files: every value is type-checked where it is
read, names are cut to `MAX_NAME` characters (the org part, which decides the
publisher, survives) and every list is read only up to a bound, so a card
listing 10,000 bases costs no more than one listing 64.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor.integrity.evidence import repo_id_from_url
from auditor.model import FileReport, Finding, FormatId, Grade, LineageEdge, Rule, Severity

MAX_EDGES = 64
MAX_NAME = 200  # characters of a declared name kept
MAX_ITEMS = 256  # items read from one declaration's list (duplicates merge into one edge)
MAX_EVIDENCE = 64  # declarations listed on one edge (a repository of many GGUF quants)
MAX_TAGS = 1000  # card tags looked at for `distillation`

MAX_NESTED = 256  # cards and configs read in sub-folders of one model

TRUNCATED = Rule(
    "AUD-PROV-012", Severity.HIGH, "Lineage declarations beyond auditor's limits were not read",
    "The files declare more base models than auditor reads (a card listing hundreds, or more "
    "distinct bases than any real model has); a restricted-origin base past the limit would "
    "go unjudged, so the lineage is incomplete.",
    "Read the declarations by hand; a real model declares a handful of bases.",
)
RULES = (TRUNCATED,)

CARD_RELATIONS = frozenset({"adapter", "merge", "quantized", "finetune", "distillation"})
# Inferred relations, weakest first: the stronger wins when two declarations of one base
# disagree. An explicit card relation outranks every inference.
_INFERRED = ("unknown", "finetune", "quantized", "merge", "adapter")
_EXPLICIT = len(_INFERRED)

# A Hub repository id: `org/name`, each part a letter or digit then letters, digits, `_.-`.
_REPO = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", re.ASCII)
# Folders training code saves into: `_name_or_path` naming one is a local path, not a repository.
_TRAINER_OUTPUT = re.compile(r"(checkpoint|ckpt|step|epoch|global_step)[-_]?\d+|final|best|last",
                             re.IGNORECASE)


@dataclass(frozen=True)
class _Claim:
    """One declaration of one base: what it names, the relation it implies, where it is."""

    name: str
    relation: str
    evidence: str
    publisher: str | None
    explicit: bool = False  # the card states the relation

    @property
    def strength(self) -> int:
        return _EXPLICIT if self.explicit else _INFERRED.index(self.relation)


@dataclass
class _Edge:
    name: str
    relation: str
    strength: int
    publisher: str | None
    evidence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Context:
    """What the whole model says, which decides the relation a single declaration implies."""

    adapter: bool  # a top-level adapter_config.json: the model is a PEFT adapter
    gguf_weights: bool  # the model's own weights are GGUF: its bases are quantized from
    quantized_config: bool  # config.json has a quantization_config
    mergekit: bool  # a top-level mergekit recipe is present
    card_bases: int  # how many bases the card lists
    card_relation: str | None  # the card's explicit relation (or distillation from its tags)


@dataclass(frozen=True)
class Declared:
    """The bases the files declare, and findings when some declarations were not read."""

    edges: list[LineageEdge]
    findings: list[Finding]


def declared_lineage(files: Sequence[FileReport], model_name: str) -> Declared:
    """Every base model the files declare: one edge per base, in declaration order.

    Declarations naming the same repository (case-insensitively) are one edge
    listing each evidence; its relation comes from the strongest statement
    (explicit card relation > adapter > merge > quantized > finetune >
    unknown). Cards and configs in sub-folders count too (a diffusers text
    encoder, a model copied into a folder of another): their bases are part of
    what loads. At most `MAX_EDGES` edges; a limit reached is a finding.
    """
    top = _top_level(files)
    card = top.get(("readme.md", FormatId.MODELCARD), {})
    config = top.get(("config.json", FormatId.JSON), {})
    bases = _strings(card.get("base_model"))
    ctx = _Context(
        adapter=("adapter_config.json", FormatId.JSON) in top,
        gguf_weights=any(f.format == FormatId.GGUF for f in files),
        quantized_config=bool(config.get("quantization_config")),
        mergekit=any(("mergekit_config" + ext, FormatId.YAML) in top for ext in (".yml", ".yaml")),
        card_bases=len(bases),
        card_relation=_card_relation(card),
    )
    claims: list[_Claim] = []
    claims += _card_claims(bases, ctx)
    claims += _adapter_claims(top.get(("adapter_config.json", FormatId.JSON), {}))
    for ext in (".yml", ".yaml"):
        claims += _mergekit_claims(top.get(("mergekit_config" + ext, FormatId.YAML), {}),
                                   "mergekit_config" + ext)
    claims += _config_claims(config, model_name, ctx)
    ggufs = sorted((f for f in files if f.format == FormatId.GGUF), key=lambda f: str(f.path))
    for report in ggufs:
        claims += _gguf_claims(str(report.path)[:MAX_NAME], _facts(report))
    claims += _nested_claims(files, model_name)
    edges = _merge(claims)
    cut = []
    listed = card.get("base_model")
    if isinstance(listed, list | tuple) and len(listed) > MAX_ITEMS:
        cut.append(f"{len(listed)} card base_model entries")
    if len({c.name.lower() for c in claims}) > MAX_EDGES:
        cut.append(f"more than {MAX_EDGES} distinct bases")
    findings = [TRUNCATED.finding("", f"{what}: only the first are read") for what in cut]
    return Declared(edges, findings)


def _nested_claims(files: Sequence[FileReport], model_name: str) -> Iterator[_Claim]:
    """Cards, adapter configs and configs below the top level (the first `MAX_NESTED`): a
    component's or an embedded model's own bases; the relation only where its card states it."""
    nested = sorted((f for f in files if "/" in str(f.path)), key=lambda f: str(f.path))
    seen = 0
    for report in nested:
        path = str(report.path)[:MAX_NAME]
        base = path.rsplit("/", 1)[1].lower()
        facts = _facts(report)
        if (base, report.format) not in _NESTED or seen >= MAX_NESTED:
            continue
        seen += 1
        if base == "readme.md":
            relation = _card_relation(facts)
            for name in _strings(facts.get("base_model")):
                name = _repo_id(name) or name
                yield _Claim(name, relation or "unknown", f"{path} base_model", _org(name),
                             explicit=relation is not None)
        elif base == "adapter_config.json":
            for claim in _adapter_claims(facts):
                yield dataclasses.replace(claim, evidence=f"{path} base_model_name_or_path")
        else:
            no_context = _Context(False, False, False, False, 0, None)
            for claim in _config_claims(facts, model_name, no_context):
                yield dataclasses.replace(claim, evidence=f"{path} _name_or_path")


_NESTED = frozenset({("readme.md", FormatId.MODELCARD), ("config.json", FormatId.JSON),
                     ("adapter_config.json", FormatId.JSON)})


def _top_level(files: Sequence[FileReport]) -> dict[tuple[str, FormatId], dict[str, Any]]:
    """(lower-cased name, format) of each top-level file -> its facts (first one wins)."""
    out: dict[tuple[str, FormatId], dict[str, Any]] = {}
    for report in files:
        path = report.path if isinstance(report.path, str) else ""
        if "/" not in path and "\\" not in path:
            out.setdefault((path.lower(), report.format), _facts(report))
    return out


def _facts(report: FileReport) -> dict[str, Any]:
    return report.facts if isinstance(report.facts, dict) else {}


def _strings(value: Any) -> list[str]:
    """A string or list field as its first `MAX_ITEMS` non-empty strings, cut to `MAX_NAME`."""
    items = [value] if isinstance(value, str) else value[:MAX_ITEMS] if isinstance(
        value, list | tuple) else []
    return [v.strip()[:MAX_NAME] for v in items if isinstance(v, str) and v.strip()]


def _card_relation(card: dict[str, Any]) -> str | None:
    """The card's `base_model_relation` when it is one we know, else distillation from its tags."""
    relation = card.get("base_model_relation")
    if isinstance(relation, str) and relation.strip().lower() in CARD_RELATIONS:
        return relation.strip().lower()
    tags = card.get("tags")
    tags = [tags] if isinstance(tags, str) else tags[:MAX_TAGS] if isinstance(
        tags, list | tuple) else []
    if any(isinstance(t, str) and t.strip().lower() == "distillation" for t in tags):
        return "distillation"
    return None


def _card_claims(bases: list[str], ctx: _Context) -> Iterator[_Claim]:
    """Card `base_model`: the Hub's relation rules, in the Hub's order.

    As on the Hub, an adapter_config.json makes the card's bases adapter bases
    even when its own base is a local path (an adapter trained on a local copy).
    """
    if ctx.card_relation:
        relation = ctx.card_relation
    elif ctx.adapter:
        relation = "adapter"
    elif ctx.card_bases > 1 and ctx.mergekit:
        relation = "merge"
    elif ctx.gguf_weights or ctx.quantized_config:
        relation = "quantized"
    else:
        relation = "finetune"
    for base in bases:
        name = _repo_id(base) or base
        yield _Claim(name, relation, "README.md base_model", _org(name),
                     explicit=ctx.card_relation is not None)


def _adapter_claims(adapter: dict[str, Any]) -> Iterator[_Claim]:
    """PEFT `base_model_name_or_path`, when it names a repository rather than a local path."""
    value = adapter.get("base_model_name_or_path")
    name = _repo_id(value) if isinstance(value, str) else None
    if name:
        yield _Claim(name, "adapter", "adapter_config.json base_model_name_or_path", _org(name))


def _mergekit_claims(recipe: dict[str, Any], file: str) -> Iterator[_Claim]:
    """Model ids a mergekit recipe merges; `org/a+org/lora` names both, `@rev` is dropped."""
    for value in _strings(recipe.get("merge_models")):
        for part in value.split("+"):
            name = _repo_id(part.split("@", 1)[0])
            if name:
                yield _Claim(name, "merge", file, _org(name))


def _config_claims(config: dict[str, Any], model_name: str, ctx: _Context) -> Iterator[_Claim]:
    """`config.json` `_name_or_path` naming another repository: the checkpoint it was saved from."""
    value = config.get("_name_or_path")
    name = _repo_id(value) if isinstance(value, str) else None
    if name and _TRAINER_OUTPUT.fullmatch(name.split("/")[1]):
        name = None  # `output/checkpoint-500`: the folder a trainer saved to, not a repository
    if name and name.lower() != str(model_name).strip().lower():
        relation = "quantized" if ctx.gguf_weights else "unknown"
        yield _Claim(name, relation, "config.json _name_or_path", _org(name))


def _gguf_claims(path: str, facts: dict[str, Any]) -> Iterator[_Claim]:
    """GGUF `general.base_model.N` (repo URL on any host, else name and organization) and
    `general.source.*`, the model the file was converted from: quantized, since the model
    ships GGUF weights (`N` counts the entries that name anything)."""
    bases = facts.get("base_models")
    for i, base in enumerate(bases[:MAX_ITEMS] if isinstance(bases, list | tuple) else []):
        if not isinstance(base, dict):
            continue
        url, name, org = (_text(base.get(k)) for k in ("repo_url", "name", "organization"))
        repo = _repo_id(url) if url else None
        if repo is None and name:
            repo = _repo_id(name)
        if repo:
            publisher = _org(repo)
        elif name:
            repo, publisher = name, org
        else:
            continue
        yield _Claim(repo, "quantized", f"{path} general.base_model.{i}", publisher)
    for fact, key in (("source_repo_url", "general.source.repo_url"),
                      ("source_repository", "general.source.huggingface.repository")):
        value = _text(facts.get(fact))
        repo = _repo_id(value) if value else None
        if repo:
            yield _Claim(repo, "quantized", f"{path} {key}", _org(repo))


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip()[:MAX_NAME] or None


def _repo_id(value: str) -> str | None:
    """The Hub repository id a declaration names: `org/name`, or one from a repository URL on
    any host (`integrity.evidence.repo_id_from_url`); None for a local path (`/mnt/x`, `./x`,
    `C:\\x`) or anything else."""
    text = value.strip()[:MAX_NAME]
    if "://" in text:
        return repo_id_from_url(text)
    if not _REPO.fullmatch(text) or ".." in text:
        return None
    return text


def _org(name: str) -> str | None:
    return name.split("/", 1)[0] if _REPO.fullmatch(name) else None


def _merge(claims: list[_Claim]) -> list[LineageEdge]:
    """One edge per base (case-insensitive), evidence in order, the strongest relation."""
    edges: dict[str, _Edge] = {}
    for claim in claims:
        key = claim.name.lower()
        edge = edges.get(key)
        if edge is None:
            if len(edges) >= MAX_EDGES:
                continue
            edge = edges[key] = _Edge(claim.name, claim.relation, claim.strength, claim.publisher)
        elif claim.strength > edge.strength:
            edge.relation, edge.strength = claim.relation, claim.strength
        if edge.publisher is None:
            edge.publisher = claim.publisher
        if claim.evidence not in edge.evidence and len(edge.evidence) < MAX_EVIDENCE:
            edge.evidence.append(claim.evidence)
    return [
        LineageEdge(name=e.name, relation=e.relation, grade=Grade.DECLARED,
                    evidence=tuple(e.evidence), publisher=e.publisher,
                    publisher_grade=Grade.DECLARED if e.publisher else None,
                    child=None, depth=1, resolved=False)
        for e in edges.values()
    ]
