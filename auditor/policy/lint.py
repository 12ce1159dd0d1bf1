"""`auditor policy lint`: everything that can be wrong with a policy before it judges anything.

Schema (policy/schema.py), then every CEL expression compiled, then every fact
name a rule or message uses checked against the documented facts
(the fact records of sbom/factkinds.py) and the variables its scope binds. A misspelt fact
would otherwise fail at evaluation time on every model — or, inside `has()`,
quietly read as absent. Every problem is `file:line:col: message`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from auditor.policy.celrt import runtime
from auditor.policy.schema import PolicyFile, Problem, RuleSpec, parse_policy
from auditor.sbom.factkinds import FACT_FIELDS

# Variables each scope binds (docs/policy.md, "Scopes").
_COMMON = ("model", "signature", "lineage", "data")
SCOPE_VARIABLES: dict[str, tuple[str, ...]] = {
    "model": _COMMON,
    "lineage": (*_COMMON, "ancestor"),
    "file": (*_COMMON, "file"),
    "finding": (*_COMMON, "finding"),
}
_MACROS = ("all", "exists", "exists_one", "map", "filter")
_STRING = re.compile(
    r"""[rRbB]{0,2}('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
    re.DOTALL,
)
_COMMENT = re.compile(r"//[^\n]*")
_CHAIN = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)")
_MACRO_VAR = re.compile(
    r"([A-Za-z_][\w.]*)\s*\.\s*(?:" + "|".join(_MACROS) + r")\s*\(\s*([A-Za-z_]\w*)\s*,"
)
PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}")


def lint_policy(path: Path) -> tuple[PolicyFile | None, list[Problem]]:
    """The parsed policy (None when unusable) and every problem found in it."""
    policy, problems = parse_policy(path)
    if policy is None:
        return None, problems
    for rule in policy.rules:
        problems += check_rule(rule, policy.data)
    return policy, problems


def compile_rule(rule: RuleSpec) -> tuple[Any, list[Problem]]:
    """The compiled CEL program, or None with the parse error located in the file."""
    cel = runtime()
    try:
        return cel.compile(rule.expression.text), []
    except (ValueError, RuntimeError) as exc:
        return None, [_cel_problem(rule, str(exc))]


def check_rule(rule: RuleSpec, data: dict[str, Any]) -> list[Problem]:
    program, problems = compile_rule(rule)
    if program is None:
        return problems
    allowed = SCOPE_VARIABLES[rule.scope]
    source = _blank(rule.expression.text)
    macro_vars = {m.group(2): m.group(1) for m in _MACRO_VAR.finditer(source)}
    for name in program.variables():
        if name not in allowed and name not in macro_vars:
            problems.append(_at(rule, source, name, _unknown_variable(name, rule.scope)))
    for m in _CHAIN.finditer(source):
        root, fld = m.group(1), m.group(2)
        problem = _field_problem(root, fld, rule.scope, macro_vars, data)
        if problem:
            problems.append(Problem(_offset_mark(rule, source, m.start(2)), problem))
    for m in PLACEHOLDER.finditer(rule.message):
        parts = m.group(1).split(".")
        problem = (
            _unknown_variable(parts[0], rule.scope) if parts[0] not in allowed
            else _field_problem(parts[0], parts[1], rule.scope, {}, data) if len(parts) > 1
            else None
        )
        if problem:
            problems.append(Problem(rule.message_mark, f"message {{{m.group(1)}}}: {problem}"))
    return problems


def _field_problem(
    root: str, fld: str, scope: str, macro_vars: dict[str, str], data: dict[str, Any]
) -> str | None:
    if root == "data":
        if fld not in data:
            known = ", ".join(sorted(data)) or "none declared"
            return f"unknown data file {fld!r} (declared under data: {known})"
        return None
    if root in macro_vars:
        if macro_vars[root] != "lineage":
            return None  # elements of other lists are strings or data: nothing to check
        root = "ancestor"
    elif root == "ancestor" and scope != "lineage":
        return None  # reported as an unknown variable already
    fields = FACT_FIELDS.get(root)
    if fields is None or fld in fields:
        return None
    return f"unknown fact {root}.{fld} (known: {', '.join(fields)})"


def _unknown_variable(name: str, scope: str) -> str:
    known = ", ".join(SCOPE_VARIABLES[scope])
    hint = " (only lineage-scope rules bind ancestor)" if name == "ancestor" else ""
    hint = " (only file-scope rules bind file)" if name == "file" else hint
    hint = " (only finding-scope rules bind finding)" if name == "finding" else hint
    return f"unknown fact {name!r} in a {scope}-scope rule (known: {known}){hint}"


def _blank(text: str) -> str:
    """The expression with string literals and comments blanked, positions unchanged."""
    def spaces(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    return _COMMENT.sub(spaces, _STRING.sub(spaces, text))


def _offset_mark(rule: RuleSpec, text: str, offset: int):
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return rule.expression.locate(line, col)


def _at(rule: RuleSpec, source: str, name: str, message: str) -> Problem:
    m = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", source)
    return Problem(_offset_mark(rule, source, m.start() if m else 0), message)


def _cel_problem(rule: RuleSpec, error: str) -> Problem:
    """CEL parse errors carry `<input>:line:col`: move them onto the policy file."""
    m = re.search(r"<input>:(\d+):(\d+): ([^\n]*)", error)
    if m is None:
        first = error.splitlines()[0] if error else "unknown error"
        return Problem(rule.expression.mark, f"rule {rule.id}: invalid CEL: {first}")
    mark = rule.expression.locate(int(m.group(1)), int(m.group(2)))
    return Problem(mark, f"rule {rule.id}: invalid CEL: {m.group(3)}")
