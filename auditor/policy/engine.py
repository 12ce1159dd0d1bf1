"""Evaluate policy rules over SBOM facts: per model, per lineage entry, per file, per finding.

Measured (docs/policy.md): the `cel` library evaluates 50 rules over 1,000
components in about a quarter of a second when each rule runs once per
component, but a list macro over the whole document is quadratic. So rules
have a scope and the engine binds one component at a time; every expression
is compiled once at load. Converting variables into CEL values is the
dominant cost, so each component gets one `cel.Context` per set of facts its
rules read, and a rule is given only the facts it reads (the data files, the
biggest, only to rules that read `data`).

Facts arrive as typed records (sbom/factkinds.py); `cel_value` alone turns
them into the maps and lists CEL binds, once per model and component.

Fail closed: a rule that cannot be evaluated (a runtime error, a non-boolean
result) is a violation carrying the error, never a pass. Waivers apply by
rule id plus model name or file digest, and only until their expiry date;
an expired waiver is reported and the violation stands.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.errors import ConfigError
from auditor.model import detail_line
from auditor.policy.celrt import runtime
from auditor.policy.lint import PLACEHOLDER, SCOPE_VARIABLES, compile_rule, lint_policy
from auditor.policy.schema import PolicyFile, RuleSpec, Waiver, raise_first
from auditor.policy.verdict import ModelVerdict, Verdict, Violation
from auditor.sbom.factkinds import LineageEntry, ModelFacts, ModelInfo
from auditor.sbom.properties import UNKNOWN

TIERS = ("restricted", "elevated", "standard")
_TIER_RANK = {"restricted": 3, "elevated": 2, UNKNOWN: 1, "standard": 0}


@dataclass(frozen=True)
class CompiledRule:
    spec: RuleSpec
    program: Any
    variables: frozenset[str]  # the facts it reads: only these are bound


@dataclass(frozen=True)
class PolicySet:
    """One or more policy files, checked and compiled, ready to judge many SBOMs."""

    files: tuple[PolicyFile, ...]
    rules: tuple[CompiledRule, ...]
    waivers: tuple[Waiver, ...]
    data: dict[str, Any]
    declared_parents: dict[str, tuple[str, ...]]  # lower-cased child name -> parents
    lineage_depth: int


def load_policies(paths: list[Path]) -> PolicySet:
    """Lint, then compile, every policy; any problem is a ConfigError (exit 2)."""
    if not paths:
        raise ConfigError("no policy given (use --policy FILE)")
    files: list[PolicyFile] = []
    for path in paths:
        policy, problems = lint_policy(path)
        raise_first(problems)
        assert policy is not None
        files.append(policy)
    rules: list[CompiledRule] = []
    seen: dict[str, RuleSpec] = {}
    data: dict[str, Any] = {}
    parents: dict[str, tuple[str, ...]] = {}
    for policy in files:
        for spec in policy.rules:
            if spec.id in seen:
                raise ConfigError(f"{spec.mark}: rule id {spec.id!r} also defined at "
                                  f"{seen[spec.id].mark}")
            seen[spec.id] = spec
            program, problems = compile_rule(spec)
            raise_first(problems)
            reads = frozenset(program.variables()) & set(SCOPE_VARIABLES[spec.scope])
            rules.append(CompiledRule(spec, program, reads))
        for name, content in policy.data.items():
            if name in data and data[name] != content:
                raise ConfigError(f"{policy.path}: data {name!r} differs from the data of that "
                                  "name in another policy")
            data[name] = content
        for child, declared in policy.declared_parents.items():
            merged = parents.get(child.lower(), ()) + tuple(declared)
            parents[child.lower()] = tuple(dict.fromkeys(merged))
    if not rules:  # waivers or data alone judge nothing: refused rather than vacuously passed
        raise ConfigError(f"{', '.join(p.path for p in files)}: no rules to evaluate")
    _check_known_data(files, data)
    return PolicySet(
        files=tuple(files), rules=tuple(rules),
        waivers=tuple(w for p in files for w in p.waivers), data=data,
        declared_parents=parents, lineage_depth=max(p.lineage_depth for p in files),
    )


def _check_known_data(files: list[PolicyFile], data: dict[str, Any]) -> None:
    """The two data files the engine itself reads must have the shape it reads."""
    where = ", ".join(p.path for p in files)
    publishers = data.get("publishers")
    if publishers is not None:
        entries = publishers.get("publishers") if isinstance(publishers, dict) else None
        if not isinstance(entries, dict) or not all(
            isinstance(e, dict) and (isinstance(e.get("country"), str) or (
                e.get("role") == "converter" and "country" not in e))
            for e in entries.values()
        ):
            raise ConfigError(f"{where}: data publishers: expected publishers: {{name: "
                              "{organisation, country, source, reviewed}} (a `role: converter` "
                              "entry may omit country)")
    tiers = data.get("jurisdictions")
    if tiers is not None:
        ok = isinstance(tiers, dict) and isinstance(tiers.get("tiers"), dict)
        values = [tiers.get("default"), tiers.get("unknown"), *tiers["tiers"].values()] if (
            ok) else []
        if not ok or not all(v in TIERS for v in values):
            raise ConfigError(f"{where}: data jurisdictions: expected tiers: {{CC: tier}}, "
                              f"default: tier, unknown: tier (tiers: {', '.join(TIERS)})")


def evaluate(
    policies: PolicySet, models: list[ModelFacts], *, sbom: str, today: datetime.date
) -> Verdict:
    """Judge every model of one SBOM; waivers are applied as of `today`."""
    violations: list[Violation] = []
    verdicts: list[ModelVerdict] = []
    for facts in models:
        lineage = build_lineage(facts, policies)
        model = dataclasses.replace(
            facts.model, jurisdiction=lineage[0].jurisdiction, tier=lineage[0].tier,
            lineage_tier=max((e.tier for e in lineage), key=_TIER_RANK.__getitem__),
        )
        found = list(_evaluate_model(policies, facts, model, lineage))
        violations += found
        tripped: dict[str, list[str]] = {}
        for v in found:
            if v.ancestor:
                tripped.setdefault(v.ancestor, []).append(v.rule)
        verdicts.append(ModelVerdict(
            name=model.name, revision=model.revision, pinned=model.pinned,
            publisher=model.publisher, jurisdiction=model.jurisdiction, tier=model.tier,
            lineage_tier=model.lineage_tier, facts=facts,
            lineage=tuple({**cel_value(e), "tripped": tripped.get(e.name, [])}
                          for e in lineage),
        ))
    judged, expired, unused = apply_waivers(violations, policies.waivers, today)
    return Verdict(
        sbom=sbom, policies=tuple(p.path for p in policies.files),
        rules=tuple(r.spec for r in policies.rules), models=tuple(verdicts),
        violations=tuple(judged), expired_waivers=tuple(expired), unused_waivers=tuple(unused),
        today=today,
    )


def build_lineage(facts: ModelFacts, policies: PolicySet) -> list[LineageEntry]:
    """The model and its ancestors up to `lineage_depth`, declared parents added, origin applied."""
    depth = policies.lineage_depth
    entries = [e for e in facts.lineage if e.depth <= depth]
    names = {e.name.lower() for e in entries}
    queue = list(entries)
    while queue:
        child = queue.pop(0)
        for parent in policies.declared_parents.get(child.name.lower(), ()):
            if parent.lower() in names or child.depth + 1 > depth:
                continue
            entry = LineageEntry(
                name=parent,
                publisher=parent.split("/", 1)[0] if "/" in parent else UNKNOWN,
                version=UNKNOWN, relation="declared", depth=child.depth + 1,
                resolved=UNKNOWN, declared=True, grade="declared",
                evidence=(f"{policies.files[0].path} declared_parents",),
                publisher_grade="declared", score=-1.0,
            )
            names.add(parent.lower())
            entries.append(entry)
            queue.append(entry)
    if depth >= 1:  # a re-upload or quantisation still names the organisation it came from
        known = {_key(e.publisher) for e in entries}
        for org in facts.model.declared_origins:
            if _key(org) not in known:
                known.add(_key(org))
                entries.append(LineageEntry(
                    name=org, publisher=org, version=UNKNOWN, relation="origin",
                    depth=1, resolved=UNKNOWN, declared=False, grade="declared",
                    evidence=("the files name it as their origin",), publisher_grade="declared",
                    score=-1.0,
                ))
    return _inherit(entries, policies.data)


def _inherit(entries: list[LineageEntry], data: dict[str, Any]) -> list[LineageEntry]:
    """Origin applied to each entry; a converter or quantizer (`role: converter` in the
    publishers data) takes the worst tier of the models below it in the lineage, since
    re-publishing a model never changes where it comes from (none below: its origin is
    unknown, and so is its jurisdiction).

    Entries are depth-first, so the models below entry i are those after it, up to the next
    entry at its depth or shallower.
    """
    origins = [origin(e.publisher, data) for e in entries]
    out = []
    for i, entry in enumerate(entries):
        found = origins[i]
        known = _publisher_entry(entry.publisher, data)
        if known is not None and known.get("role") == "converter":
            below = []
            for j in range(i + 1, len(entries)):
                if entries[j].depth <= entry.depth:
                    break
                below.append(origins[j]["tier"])
            tiers = data.get("jurisdictions")
            fallback = tiers["unknown"] if tiers is not None else UNKNOWN
            found = {**found, "jurisdiction": "inherited" if below else UNKNOWN,
                     "tier": max(below, key=_TIER_RANK.__getitem__) if below else fallback}
        out.append(dataclasses.replace(entry, **found))
    return out


def _key(name: str) -> str:
    """Publisher names compared by letters and digits only: `Deepseek AI` is `deepseek-ai`."""
    return "".join(c for c in name.lower() if c.isalnum())


def origin(publisher: str, data: dict[str, Any]) -> dict[str, str]:
    """Organisation, jurisdiction and tier of a publisher, from the policy's data files."""
    entry = _publisher_entry(publisher, data)
    jurisdiction = entry.get("country", UNKNOWN) if entry else UNKNOWN
    organisation = entry.get("organisation", UNKNOWN) if entry else UNKNOWN
    tiers = data.get("jurisdictions")
    if tiers is None:
        tier = UNKNOWN
    elif jurisdiction == UNKNOWN:
        tier = tiers["unknown"]
    else:
        tier = tiers["tiers"].get(jurisdiction, tiers["default"])
    return {"organisation": organisation, "jurisdiction": jurisdiction, "tier": tier}


def _publisher_entry(publisher: str, data: dict[str, Any]) -> dict[str, Any] | None:
    known = (data.get("publishers") or {}).get("publishers") or {}
    return {_key(k): v for k, v in known.items()}.get(_key(publisher))


def cel_value(value: Any) -> Any:
    """Typed facts → the plain maps and lists CEL binds (and messages are filled from).

    The one place facts change shape: records become maps keyed by field
    name, tuples become lists.
    """
    if isinstance(value, str | int | float):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: cel_value(v) for k, v in vars(value).items()}  # fields, in order
    if isinstance(value, Mapping):
        return {k: cel_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cel_value(v) for v in value]
    return value


def _components(
    scope: str, facts: ModelFacts, lineage: list[LineageEntry]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(extra variables, where) for each component a rule of `scope` is evaluated on."""
    if scope == "model":
        yield {}, {}
    elif scope == "lineage":
        for entry in lineage:
            yield {"ancestor": cel_value(entry)}, {"ancestor": entry.name}
    elif scope == "file":
        for f in facts.files:
            yield {"file": cel_value(f)}, {"file": f.path, "sha256": f.sha256}
    else:
        digests = {f.path: f.sha256 for f in facts.files}
        for finding in facts.findings:
            path = finding.file
            where: dict[str, Any] = {"file": path, "sha256": digests.get(path, "")}
            if path and not finding.member:  # a position inside a member is not one in the file
                where["line"] = detail_line(finding.detail)
                where["offset"] = finding.offset if finding.offset >= 0 else None
            yield {"finding": cel_value(finding)}, where


def _evaluate_model(
    policies: PolicySet, facts: ModelFacts, model: ModelInfo, lineage: list[LineageEntry]
) -> Iterator[Violation]:
    cel = runtime()
    base = {"model": cel_value(model), "signature": cel_value(facts.signature),
            "lineage": cel_value(lineage), "data": policies.data}
    by_scope: dict[str, list[CompiledRule]] = {}
    for rule in policies.rules:
        by_scope.setdefault(rule.spec.scope, []).append(rule)
    for scope, rules in by_scope.items():
        for extra, where in _components(scope, facts, lineage):
            variables = {**base, **extra}
            contexts: dict[frozenset[str], Any] = {}
            for rule in rules:
                if rule.variables not in contexts:
                    bound = {k: variables[k] for k in rule.variables}
                    contexts[rule.variables] = cel.Context(variables=bound)
                error = ""
                try:
                    result = rule.program.execute(contexts[rule.variables])
                    if not isinstance(result, bool):
                        error = f"the expression gave {type(result).__name__}, not a bool"
                except Exception as exc:  # the library raises several types; all fail closed
                    error = f"{type(exc).__name__}: {exc}"
                if error or result == (rule.spec.kind == "deny"):
                    yield _violation(rule.spec, model.name, variables, where, error)


def _violation(
    spec: RuleSpec, model: str, variables: dict[str, Any], where: dict[str, Any], error: str
) -> Violation:
    message = render_message(spec.message, variables)
    if error:
        message = f"{message} [rule could not be evaluated: {error}]"
    return Violation(
        rule=spec.id, policy=spec.policy, severity=spec.severity, message=message,
        fix=render_message(spec.fix, variables), scope=spec.scope, model=model,
        file=where.get("file", ""), sha256=where.get("sha256", ""),
        ancestor=where.get("ancestor", ""), line=where.get("line"), offset=where.get("offset"),
        error=error,
    )


def render_message(template: str, variables: dict[str, Any]) -> str:
    """Replace `{model.name}`-style placeholders with fact values (lists joined by commas)."""
    def value(m: Any) -> str:
        current: Any = variables
        for part in m.group(1).split("."):
            if not isinstance(current, dict) or part not in current:
                return UNKNOWN
            current = current[part]
        if isinstance(current, list):
            return ", ".join(str(v) for v in current) or "none"
        if isinstance(current, bool):
            return "true" if current else "false"
        return str(current)

    return PLACEHOLDER.sub(value, template)


def apply_waivers(
    violations: list[Violation], waivers: tuple[Waiver, ...], today: datetime.date
) -> tuple[list[Violation], list[Waiver], list[Waiver]]:
    """(violations with waivers applied, expired waivers, unused unexpired waivers)."""
    used: set[int] = set()
    out = []
    for v in violations:
        matching = [i for i, w in enumerate(waivers) if _covers(w, v)]
        valid = [i for i in matching if waivers[i].expires >= today]
        if valid:
            used.add(valid[0])
            v = dataclasses.replace(v, waiver=waivers[valid[0]])
        elif matching:
            v = dataclasses.replace(v, expired_waiver=waivers[matching[0]])
        out.append(v)
    expired = [w for w in waivers if w.expires < today]
    unused = [w for i, w in enumerate(waivers) if w.expires >= today and i not in used]
    return out, expired, unused


def _covers(waiver: Waiver, violation: Violation) -> bool:
    if waiver.rule != violation.rule:
        return False
    if waiver.model is not None:
        return waiver.model.lower() == violation.model.lower()
    return bool(violation.sha256) and waiver.sha256 == violation.sha256
