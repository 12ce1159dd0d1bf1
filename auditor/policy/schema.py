"""Policy YAML → dataclasses, with every problem located as `file:line:col`.

A policy is security configuration: a misspelt key silently ignored would
leave a gate open, so unknown keys, duplicate keys, missing fields and wrong
types are all errors. The YAML is composed into nodes (safe loading, no
custom tags) so that each error can name the line and column it comes from.
Problems are collected, not raised one by one, so `auditor policy lint` can
list them all; loading for a gate raises on the first (ConfigError, exit 2).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditor.errors import ConfigError
from auditor.model import Severity

SCOPES = ("model", "lineage", "file", "finding")
DEFAULT_LINEAGE_DEPTH = 3
MAX_NODES = 1_000_000  # policy and data files are small; aliases must not expand past this

_POLICY_KEYS = {"policy", "description", "data", "declared_parents", "lineage_depth", "rules",
                "waivers"}
_RULE_KEYS = {"id", "description", "scope", "severity", "deny", "require", "message", "fix"}
_WAIVER_KEYS = {"rule", "model", "sha256", "reason", "approver", "expires"}
_RULE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DATA_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Mark:
    """A position in a file, 1-based like editors and compilers print it."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    mark: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


@dataclass(frozen=True)
class Expression:
    """A CEL source string and where it sits in the YAML, to locate errors inside it."""

    text: str
    mark: Mark
    block_indent: int | None = None  # column of the text in a `|`/`>` block scalar
    quoted: bool = False

    def locate(self, line: int, col: int) -> Mark:
        """File position of `line:col` (1-based) inside the expression."""
        if self.block_indent is not None:
            return Mark(self.mark.file, self.mark.line + line, self.block_indent + col)
        if line == 1:
            return Mark(self.mark.file, self.mark.line, self.mark.col + col - 1 + self.quoted)
        return Mark(self.mark.file, self.mark.line + line - 1, col)


@dataclass(frozen=True)
class RuleSpec:
    id: str
    scope: str
    severity: Severity
    kind: str  # "deny" (violation when true) or "require" (violation when false)
    expression: Expression
    message: str
    message_mark: Mark
    fix: str
    description: str
    policy: str  # name of the policy file's `policy:` field
    mark: Mark


@dataclass(frozen=True)
class Waiver:
    rule: str
    model: str | None
    sha256: str | None
    reason: str
    approver: str
    expires: datetime.date
    mark: Mark

    @property
    def target(self) -> str:
        return self.model if self.model is not None else f"sha256:{self.sha256}"


@dataclass(frozen=True)
class PolicyFile:
    path: str
    name: str
    description: str
    rules: tuple[RuleSpec, ...]
    waivers: tuple[Waiver, ...]
    data: dict[str, Any]  # name -> loaded data file content
    declared_parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lineage_depth: int = DEFAULT_LINEAGE_DEPTH


def parse_policy(path: Path) -> tuple[PolicyFile | None, list[Problem]]:
    """Read and validate one policy file (and the data files it names)."""
    problems: list[Problem] = []
    root = compose_yaml(path, problems)
    if root is None:
        return None, problems
    where = str(path)
    if not isinstance(root, yaml.MappingNode):
        problems.append(Problem(mark_of(where, root), "a policy is a YAML mapping"))
        return None, problems
    top = mapping(where, root, _POLICY_KEYS, {"policy"}, problems, "policy")
    name = _string(where, top.get("policy"), problems, "policy") or path.stem
    description = _string(where, top.get("description"), problems, "description") or ""
    data = _data_files(path, top.get("data"), problems)
    parents = _declared_parents(where, top.get("declared_parents"), problems)
    depth = DEFAULT_LINEAGE_DEPTH
    if "lineage_depth" in top:
        value = scalar(top["lineage_depth"])
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            depth = value
        else:
            problems.append(Problem(mark_of(where, top["lineage_depth"]),
                                    "lineage_depth must be a whole number >= 0"))
    rules = _rules(where, name, top.get("rules"), problems)
    waivers = _waivers(where, top.get("waivers"), problems)
    policy = PolicyFile(where, name, description, tuple(rules), tuple(waivers), data, parents,
                        depth)
    return policy, problems


def compose_yaml(path: Path, problems: list[Problem]) -> yaml.Node | None:
    """The YAML node tree (safe: plain YAML tags only), or None with a located problem."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        problems.append(Problem(Mark(where, 1, 1), f"cannot read: {reason}"))
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = Mark(where, mark.line + 1, mark.column + 1) if mark else Mark(where, 1, 1)
        problems.append(Problem(at, f"YAML syntax error: {exc.problem or exc.context}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(Mark(where, 1, 1), f"YAML error: {exc}"))
        return None
    if node is None:
        problems.append(Problem(Mark(where, 1, 1), "empty file"))
    elif _expanded_size(node) > MAX_NODES:
        problems.append(Problem(Mark(where, 1, 1), f"more than {MAX_NODES:,} YAML nodes once "
                                "aliases are expanded (an alias bomb?)"))
        return None
    return node


def _expanded_size(node: yaml.Node) -> int:
    """Nodes counted as often as aliases repeat them, stopping early past the limit."""
    count, stack = 0, [node]
    while stack and count <= MAX_NODES:
        current = stack.pop()
        count += 1
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack += [key, value]
    return count


def load_data(path: Path) -> tuple[Any, list[Problem]]:
    """A data file (plain YAML): its content with dates as ISO strings, CEL has no date type."""
    problems: list[Problem] = []
    node = compose_yaml(path, problems)
    if node is None:
        return None, problems
    _check_duplicates(str(path), node, problems)
    return _plain(_construct(node)), problems


def raise_first(problems: list[Problem]) -> None:
    """For commands that need a usable policy: the first problem as a ConfigError (exit 2)."""
    if problems:
        more = f" (and {len(problems) - 1} more: run `auditor policy lint`)" if len(
            problems) > 1 else ""
        raise ConfigError(f"{problems[0]}{more}")


# --- node helpers -----------------------------------------------------------------------


def mark_of(where: str, node: yaml.Node) -> Mark:
    return Mark(where, node.start_mark.line + 1, node.start_mark.column + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader for which a scalar shaped like a date that is none (2020-13-45) stays a
    string, so the linter names it instead of a ValueError escaping."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _construct(node: yaml.Node) -> Any:
    return _Loader("").construct_object(node, deep=True)


def scalar(node: yaml.Node) -> Any:
    return _construct(node) if isinstance(node, yaml.ScalarNode) else None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _check_duplicates(where: str, node: yaml.Node, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            k = scalar(key)
            if k in seen:
                problems.append(Problem(mark_of(where, key), f"duplicate key {k!r}"))
            seen.add(k)
            _check_duplicates(where, value, problems)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicates(where, item, problems)


def mapping(
    where: str, node: yaml.Node, allowed: set[str], required: set[str],
    problems: list[Problem], what: str,
) -> dict[str, yaml.Node]:
    """Key -> value node; unknown, duplicate and missing keys are problems."""
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(mark_of(where, node), f"{what} must be a mapping"))
        return {}
    out: dict[str, yaml.Node] = {}
    for key_node, value in node.value:
        key = scalar(key_node)
        if not isinstance(key, str) or key not in allowed:
            problems.append(Problem(
                mark_of(where, key_node),
                f"unknown key {key!r} in {what} (known: {', '.join(sorted(allowed))})",
            ))
        elif key in out:
            problems.append(Problem(mark_of(where, key_node), f"duplicate key {key!r} in {what}"))
        else:
            out[key] = value
    for key in sorted(required - set(out)):
        problems.append(Problem(mark_of(where, node), f"{what} is missing required key {key!r}"))
    return out


def _string(
    where: str, node: yaml.Node | None, problems: list[Problem], what: str
) -> str | None:
    if node is None:
        return None
    value = scalar(node)
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(mark_of(where, node), f"{what} must be a non-empty string"))
        return None
    return value


def _data_files(policy: Path, node: yaml.Node | None, problems: list[Problem]) -> dict[str, Any]:
    where = str(policy)
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(mark_of(where, node), "data must map names to data file paths"))
        return {}
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        name = scalar(key_node)
        rel = scalar(value_node)
        if not isinstance(name, str) or not _DATA_NAME.match(name):
            problems.append(Problem(mark_of(where, key_node),
                                    f"data name {name!r} must be lower_snake_case"))
            continue
        if not isinstance(rel, str) or not rel:
            problems.append(Problem(mark_of(where, value_node), f"data {name}: expected a path"))
            continue
        data_path = policy.parent / rel
        if not data_path.is_file():
            problems.append(Problem(mark_of(where, value_node),
                                    f"data {name}: no such file {data_path}"))
            continue
        content, data_problems = load_data(data_path)
        problems.extend(data_problems)
        out[name] = content
    return out


def _declared_parents(
    where: str, node: yaml.Node | None, problems: list[Problem]
) -> dict[str, tuple[str, ...]]:
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(mark_of(where, node),
                                "declared_parents must map a model name to a list of parents"))
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for key_node, value_node in node.value:
        child = scalar(key_node)
        parents = _construct(value_node)
        if not isinstance(child, str) or not isinstance(parents, list) or not parents or not all(
            isinstance(p, str) and p for p in parents
        ):
            problems.append(Problem(mark_of(where, key_node),
                                    "declared_parents: each model maps to a list of model names"))
            continue
        out[child] = tuple(parents)
    return out


def _rules(where: str, policy: str, node: yaml.Node | None, problems: list[Problem]) -> list[
    RuleSpec
]:
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        # An empty rule list is a typo, not a policy (a waivers-only file omits rules:).
        problems.append(Problem(mark_of(where, node), "rules must be a non-empty list"))
        return []
    rules: list[RuleSpec] = []
    seen: set[str] = set()
    for item in node.value:
        rule = _rule(where, policy, item, problems)
        if rule is None:
            continue
        if rule.id in seen:
            problems.append(Problem(rule.mark, f"duplicate rule id {rule.id!r}"))
        seen.add(rule.id)
        rules.append(rule)
    return rules


def _rule(where: str, policy: str, node: yaml.Node, problems: list[Problem]) -> RuleSpec | None:
    before = len(problems)
    keys = mapping(where, node, _RULE_KEYS, {"id", "scope", "severity", "message"}, problems,
                    "rule")
    rule_id = _string(where, keys.get("id"), problems, "id")
    if rule_id is not None and not _RULE_ID.match(rule_id):
        problems.append(Problem(mark_of(where, keys["id"]),
                                f"rule id {rule_id!r}: letters, digits, '.', '_' and '-' only"))
    scope = _string(where, keys.get("scope"), problems, "scope")
    if scope is not None and scope not in SCOPES:
        problems.append(Problem(mark_of(where, keys["scope"]),
                                f"unknown scope {scope!r} (expected one of: {', '.join(SCOPES)})"))
    severity = None
    if "severity" in keys:
        try:
            severity = Severity.parse(str(scalar(keys["severity"])))
        except ValueError as exc:
            problems.append(Problem(mark_of(where, keys["severity"]), str(exc)))
    kinds = [k for k in ("deny", "require") if k in keys]
    if len(kinds) != 1:
        problems.append(Problem(mark_of(where, node),
                                "a rule has exactly one of deny: (violation when true) or "
                                "require: (violation when false)"))
    message = _string(where, keys.get("message"), problems, "message")
    fix = _string(where, keys.get("fix"), problems, "fix") if "fix" in keys else ""
    description = (_string(where, keys.get("description"), problems, "description")
                   if "description" in keys else "")
    expression = None
    if len(kinds) == 1:
        expression = _expression(where, keys[kinds[0]], problems, kinds[0])
    if len(problems) > before or expression is None:
        return None
    assert rule_id and scope and severity is not None and message is not None
    return RuleSpec(
        id=rule_id, scope=scope, severity=severity, kind=kinds[0], expression=expression,
        message=message, message_mark=mark_of(where, keys["message"]), fix=fix or "",
        description=description or "", policy=policy, mark=mark_of(where, node),
    )


def _expression(
    where: str, node: yaml.Node, problems: list[Problem], what: str
) -> Expression | None:
    if not isinstance(node, yaml.ScalarNode) or not isinstance(scalar(node), str) or not str(
        node.value
    ).strip():
        problems.append(Problem(mark_of(where, node), f"{what} must be a CEL expression string"))
        return None
    mark = mark_of(where, node)
    if node.style in ("|", ">"):
        indent, lines = _block_lines(node)
        # The source lines, not the folded value: CEL treats a newline as a space, and
        # keeping them lets an error inside the block point at its own line.
        return Expression("\n".join(lines), mark, block_indent=indent)
    return Expression(node.value, mark, quoted=node.style in ("'", '"'))


def _block_lines(node: yaml.ScalarNode) -> tuple[int, list[str]]:
    """Indent (0-based column) and dedented source lines of a block scalar's content."""
    buffer = node.start_mark.buffer or ""
    lines = buffer[node.start_mark.index:node.end_mark.index].splitlines()[1:]
    indent = min((len(ln) - len(ln.lstrip(" ")) for ln in lines if ln.strip()),
                 default=node.start_mark.column)
    return indent, [ln[indent:] for ln in lines]


def _waivers(where: str, node: yaml.Node | None, problems: list[Problem]) -> list[Waiver]:
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        problems.append(Problem(mark_of(where, node), "waivers must be a list"))
        return []
    out = []
    for item in node.value:
        before = len(problems)
        keys = mapping(where, item, _WAIVER_KEYS, {"rule", "reason", "approver", "expires"},
                        problems, "waiver")
        rule = _string(where, keys.get("rule"), problems, "rule")
        reason = _string(where, keys.get("reason"), problems, "reason")
        approver = _string(where, keys.get("approver"), problems, "approver")
        model = _string(where, keys.get("model"), problems, "model") if "model" in keys else None
        sha = _string(where, keys.get("sha256"), problems, "sha256") if "sha256" in keys else None
        if (model is None) == (sha is None) and len(problems) == before:
            problems.append(Problem(mark_of(where, item),
                                    "a waiver names exactly one of model: or sha256:"))
        if sha is not None and not _SHA256.match(sha):
            problems.append(Problem(mark_of(where, keys["sha256"]),
                                    "sha256 must be 64 lower-case hex digits"))
        expires = scalar(keys["expires"]) if "expires" in keys else None
        if "expires" in keys and (
            not isinstance(expires, datetime.date) or isinstance(expires, datetime.datetime)
        ):
            problems.append(Problem(mark_of(where, keys["expires"]),
                                    "expires must be a date written YYYY-MM-DD (unquoted)"))
        if len(problems) == before:
            assert rule and reason and approver and isinstance(expires, datetime.date)
            out.append(Waiver(rule, model, sha, reason, approver, expires, mark_of(where, item)))
    return out
