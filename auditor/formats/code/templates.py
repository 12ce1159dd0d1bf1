"""Jinja chat templates: parsed with Jinja2's parser, never compiled or rendered, then reviewed.

Loaders render a model's chat template on every request (transformers in a
sandbox; llama-cpp-python, some servers and older tools without one), so a
template is code shipped with the weights. Server-side template injection
always needs Python internals: a dunder attribute (`__class__`, `__globals__`)
reached from some object, or an object that exposes them (`lipsum`, `cycler`,
`self`, `config`). This module walks the syntax tree, folds the string
expressions it can evaluate statically (`"__cl" ~ "ass__"`, `|join`,
`|replace`, `|format`, `.format`, slicing, `\\x5f` escapes, which the lexer
already decodes) and reports:

- attribute or item names that start with `_` (critical: AUD-TPL-001);
- attribute names that are built at render time and cannot be folded
  (high: AUD-TPL-004). High rather than critical because nothing proves the
  name is a dunder; high rather than medium because no chat template needs
  a computed attribute name, and that is exactly how the dunder checks are
  dodged;
- str.format / format_map in any spelling (`s.format`, `s|attr('format')`,
  `s['format']`, a name set to one of them) whose constant format string has
  attribute fields (`'{0.__init__.__globals__}'`): the fields are parsed with
  `string.Formatter().parse` (parsing only) and their names checked like
  attributes; any attribute field is high (AUD-TPL-009);
- SSTI gadgets, template loading, resource abuse (ranges, repetition, huge
  format widths) and parse failures.

Plain data access (`message['content']`, `messages[i - 1]`, `tool[key]` with
a loop variable) stays clean: keys that come from the caller's data are not
the template author's choice.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from typing import Any

from auditor.formats.contract import ScanContext
from auditor.model import Rule, Severity

INTERNALS = Rule(
    "AUD-TPL-001", Severity.CRITICAL, "Chat template reaches Python internals",
    "Attribute or item names starting with '_' (__class__, __globals__, __subclasses__, "
    "__builtins__ ...) are how template injection climbs from a string to os.system; no chat "
    "template needs them. Renderers without a sandbox run the payload on every request.",
    "Do not load this template; replace it with the publisher's original chat template.",
)
GADGET = Rule(
    "AUD-TPL-002", Severity.HIGH, "Chat template uses a known injection gadget",
    "lipsum, cycler, joiner, self, config, request and url_for expose Python globals in Jinja "
    "or Flask; template-injection payloads start from them and chat templates never use them.",
    "Remove the reference, or replace the template with the publisher's original.",
)
LOADS = Rule(
    "AUD-TPL-003", Severity.HIGH, "Chat template imports, includes or extends another template",
    "import, include, extends and from make the renderer load other templates through its "
    "loader, reading files the audit never saw.",
    "Inline what the template needs; a chat template must be self-contained.",
)
DYNAMIC_NAME = Rule(
    "AUD-TPL-004", Severity.HIGH, "Chat template builds an attribute name at render time",
    "An attribute or item name assembled from pieces (attr() with a computed name, '~' or "
    "|join-built keys, str.format field access) cannot be checked statically and is the usual "
    "way to hide '__class__' from a scanner.",
    "Use literal attribute names; replace the template with the publisher's original.",
)
UNPARSEABLE = Rule(
    "AUD-TPL-005", Severity.HIGH, "Chat template does not parse",
    "A template the scanner cannot parse cannot be shown safe; a different Jinja version or "
    "extension set in the loader might still accept it.",
    "Fix the template syntax, or replace it with the publisher's original.",
)
EXHAUSTION = Rule(
    "AUD-TPL-006", Severity.MEDIUM, "Chat template can exhaust resources",
    "range() beyond the Jinja sandbox's 100,000 items or huge string repetition makes every "
    "request burn CPU and memory.",
    "Remove the oversized loop or repetition.",
)
MALFORMED_VALUE = Rule(
    "AUD-TPL-007", Severity.HIGH, "chat_template value is not a template",
    "tokenizer_config.json's chat_template must be a string or a list of {name, template}; "
    "anything else is read differently by different loaders.",
    "Store the template as a string (or a list of named templates).",
)
TOO_LARGE = Rule(
    "AUD-TPL-008", Severity.HIGH, "Chat template too large or deep to analyse",
    "Real chat templates are a few kilobytes; a huge or deeply nested one exhausts parsers and "
    "was not fully inspected.",
    "Inspect the template by hand; replace it with the publisher's original.",
)
FORMAT_FIELDS = Rule(
    "AUD-TPL-009", Severity.HIGH, "Chat template reads attributes through str.format fields",
    "str.format and format_map fields such as '{0.attr}' or '{0.__init__.__globals__}' read "
    "attributes of their arguments inside Python, outside the template's own '.' syntax: that "
    "is how format strings escaped the Jinja sandbox (CVE-2016-10745, CVE-2019-10906), and "
    "without a sandbox they reach whatever the object exposes. Chat templates format text with "
    "'~', never with attribute fields.",
    "Build the text with '~' and plain attribute access; replace the template with the "
    "publisher's original.",
)
RULES = (INTERNALS, GADGET, LOADS, DYNAMIC_NAME, UNPARSEABLE, EXHAUSTION, MALFORMED_VALUE,
         TOO_LARGE, FORMAT_FIELDS)

# Jinja's parser takes about a second per 256 Ki characters; real chat templates are under
# 40 Ki characters and files carry one to three of them.
MAX_TEMPLATE_CHARS = 256 * 1024
MAX_TEMPLATES = 16  # named templates reviewed per file
MAX_FOLDED_CHARS = 4096  # longer folded strings are left unresolved
MAX_RANGE = 100_000  # jinja2.sandbox.MAX_RANGE
FORMAT_METHODS = frozenset({"format", "format_map"})

GADGETS: dict[str, str] = {
    "lipsum": "Jinja global whose __globals__ reach the os module",
    "cycler": "Jinja global whose __init__.__globals__ reach the os module",
    "joiner": "Jinja global whose __init__.__globals__ reach the os module",
    "self": "template reference exposing the render context",
    "config": "Flask configuration object",
    "request": "Flask request object",
    "url_for": "Flask function whose __globals__ reach the application",
    "get_flashed_messages": "Flask function whose __globals__ reach the application",
}
# Filters that read an attribute named by an argument: filter -> (positional index, keyword).
ATTRIBUTE_ARGS: dict[str, tuple[int | None, str | None]] = {
    "attr": (0, None),
    "selectattr": (0, None),
    "rejectattr": (0, None),
    "groupby": (0, "attribute"),
    "map": (None, "attribute"),
    "sort": (None, "attribute"),
    "unique": (None, "attribute"),
    "min": (None, "attribute"),
    "max": (None, "attribute"),
    "sum": (None, "attribute"),
}
# Filters and str methods that build strings (folded when their inputs are constant).
STRING_FILTERS = frozenset({
    "join", "replace", "format", "lower", "upper", "string", "reverse", "title", "capitalize",
    "trim", "first", "last", "list", "center", "urlencode", "indent", "wordwrap", "truncate",
})
STRING_METHODS = frozenset({
    "join", "replace", "format", "format_map", "lower", "upper", "strip", "lstrip", "rstrip",
    "title", "capitalize", "swapcase", "casefold",
})
# Attributes without a leading underscore that still reach frames, code and function globals.
INTERNAL_NAMES = frozenset({
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame", "gi_code", "cr_frame",
    "ag_frame", "tb_frame", "tb_next", "func_globals", "func_code", "co_code", "co_consts",
    "im_func", "im_self", "mro",
})
DANGEROUS = re.compile(
    r"__(class|mro|subclasses|globals|builtins|init|import|base|bases|dict|getattribute|"
    r"getattr|code|func|self|module|loader|spec|reduce|reduce_ex|call|closure|defaults|"
    r"kwdefaults|new|wrapped|traceback|frame|f_globals)__"
)
UNKNOWN: Any = object()  # a value that cannot be computed statically


@dataclass(frozen=True)
class Issue:
    rule: Rule
    line: int
    detail: str


def review_into(ctx: ScanContext, source: str, where: str, offset: int | None = None) -> None:
    """Review one template and record its issues as findings on `ctx`."""
    for issue in review(source):
        ctx.add(issue.rule, f"{where} line {issue.line}: {issue.detail}", offset=offset)
        if issue.rule is TOO_LARGE:
            ctx.limit_hit()


def review_config_value(ctx: ScanContext, value: Any, where: str) -> list[str]:
    """Review `chat_template` from tokenizer_config.json; return the template names found."""
    if value is None:  # written by some tokenizer versions when there is no template
        return []
    if isinstance(value, str):
        review_into(ctx, value, where)
        return ["default"]
    if not isinstance(value, list):
        ctx.add(MALFORMED_VALUE, f"{where} is {type(value).__name__}")
        return []
    names = []
    if len(value) > MAX_TEMPLATES:
        ctx.add(TOO_LARGE, f"{where} lists {len(value)} templates; the first {MAX_TEMPLATES} "
                "were reviewed")
        ctx.limit_hit()
    for i, item in enumerate(value[:MAX_TEMPLATES]):
        if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                and isinstance(item.get("template"), str)):
            ctx.add(MALFORMED_VALUE, f"{where}[{i}] is not a {{name, template}} object")
            continue
        names.append(item["name"])
        review_into(ctx, item["template"], f"{where}[{item['name']!r}]")
    return names


def review(source: str) -> list[Issue]:
    """Parse (never render) and review a template; issues sorted by line, deduplicated."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return [Issue(TOO_LARGE, 1, f"{len(source)} characters (limit {MAX_TEMPLATE_CHARS})")]
    import jinja2

    try:
        tree = _environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [Issue(UNPARSEABLE, exc.lineno or 1, exc.message or "syntax error")]
    except RecursionError:
        return [Issue(TOO_LARGE, 1, "nested too deeply to parse")]
    try:
        issues = _Review(tree).run()
    except RecursionError:
        return [Issue(TOO_LARGE, 1, "nested too deeply to analyse")]
    unique = {(i.rule.id, i.detail): i for i in reversed(issues)}
    return sorted(unique.values(), key=lambda i: (i.line, i.rule.id, i.detail))


@functools.cache
def _environment() -> Any:
    """The parse-time environment transformers uses: loop controls and `{% generation %}`.

    Built once: a tokenizer config may carry many templates, and parsing never mutates it."""
    import jinja2
    from jinja2.ext import Extension

    class Generation(Extension):
        """Parse-only twin of transformers' `{% generation %}` block (marks assistant text)."""

        tags = {"generation"}  # noqa: RUF012 - jinja's Extension API is a class attribute

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body, lineno=lineno)

    return jinja2.Environment(extensions=["jinja2.ext.loopcontrols", Generation])


class _Review:
    """One walk over a parsed template; `env` maps `set`/`for`/`with` names to their values."""

    def __init__(self, tree: Any) -> None:
        from jinja2 import nodes

        self.n = nodes
        self.tree = tree
        self.issues: list[Issue] = []
        self.env: dict[str, list[Any]] = {}
        self.resolving: set[str] = set()
        self._collect_names()

    def run(self) -> list[Issue]:
        n = self.n
        for node in self.tree.find_all(n.Node):
            if isinstance(node, (n.Import, n.FromImport, n.Include, n.Extends)):
                self._add(LOADS, node, f"{type(node).__name__.lower()} statement")
            elif isinstance(node, n.Getattr):
                self._check_name(node.attr, node, "attribute")
            elif isinstance(node, n.Getitem):
                self._check_key(node.arg, node, "item")
            elif isinstance(node, n.Filter) and node.name in ATTRIBUTE_ARGS:
                self._check_attribute_filter(node)
            elif isinstance(node, n.Call):
                self._check_call(node)
            elif isinstance(node, n.Name) and node.ctx == "load" and node.name in GADGETS \
                    and node.name not in self.env:
                self._add(GADGET, node, f"{node.name} ({GADGETS[node.name]})")
            elif isinstance(node, n.Mul):
                self._check_repetition(node)
            elif isinstance(node, n.Mod) or (isinstance(node, n.Filter) and node.name == "format"):
                self._check_percent(node)
            elif isinstance(node, n.Keyword) and DANGEROUS.search(node.key):
                self._add(INTERNALS, node, f"keyword argument {node.key!r}")
            if isinstance(node, n.Expr) and not isinstance(node, n.Name):
                self._check_strings(node)
        return self.issues

    # -- the checks ---------------------------------------------------------------------------

    def _add(self, rule: Rule, node: Any, detail: str) -> None:
        self.issues.append(Issue(rule, getattr(node, "lineno", 1) or 1, detail))

    def _check_name(self, name: str, node: Any, what: str) -> None:
        if name.startswith("_") or name in INTERNAL_NAMES:
            self._add(INTERNALS, node, f"{what} {name!r}")

    def _check_key(self, arg: Any, node: Any, what: str) -> None:
        if isinstance(arg, self.n.Slice):
            return
        value = self.fold(arg)
        if isinstance(value, str):
            self._check_name(value, node, what)
        elif value is UNKNOWN and self.built(arg):
            self._add(DYNAMIC_NAME, node, f"{what} name computed at render time")

    def _check_attribute_filter(self, node: Any) -> None:
        position, keyword = ATTRIBUTE_ARGS[node.name]
        args = list(node.args)
        if node.name == "map" and args and self.fold(args[0]) == "attr":
            position = 1
        targets = [a for i, a in enumerate(args) if i == position]
        targets += [k.value for k in node.kwargs if k.key == keyword]
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self._add(DYNAMIC_NAME, node, f"|{node.name} with unpacked arguments")
        for target in targets:
            value = self.fold(target)
            if isinstance(value, str):
                for part in value.split("."):
                    self._check_name(part, node, f"|{node.name} attribute")
            else:
                self._add(DYNAMIC_NAME, node, f"|{node.name} attribute name computed at render "
                          "time")

    def _check_call(self, node: Any) -> None:
        n = self.n
        callee = node.node
        found = self._format_method(callee)
        if found is not None:
            self._check_format(node, *found)
        if isinstance(callee, n.Name) and callee.name == "range":
            for arg in node.args:
                value = self.fold(arg)
                if isinstance(value, int) and abs(value) > MAX_RANGE:
                    self._add(EXHAUSTION, node, f"range() over {value} items")

    def _format_method(self, callee: Any) -> tuple[str, Any] | None:
        """(method, string node) when `callee` is str.format or format_map of a string, in any
        spelling: `s.format`, `s|attr('format')`, `s['format']`, or a name set to one of them."""
        n = self.n
        if isinstance(callee, n.Name) and callee.name not in self.resolving:
            values = self.env.get(callee.name, [])
            if len(values) != 1 or not isinstance(values[0], n.Node):
                return None
            self.resolving.add(callee.name)
            try:
                return self._format_method(values[0])
            finally:
                self.resolving.discard(callee.name)
        if isinstance(callee, n.Getattr):
            method, subject = callee.attr, callee.node
        elif isinstance(callee, n.Filter) and callee.name == "attr" and callee.args:
            method, subject = self.fold(callee.args[0]), callee.node
        elif isinstance(callee, n.Getitem):
            method, subject = self.fold(callee.arg), callee.node
        else:
            return None
        return (method, subject) if method in FORMAT_METHODS and subject is not None else None

    def _check_format(self, node: Any, method: str, subject: Any) -> None:
        """The fields of a format string decide what str.format reads from its arguments."""
        fmt = self.fold(subject)
        if not isinstance(fmt, str):
            self._add(DYNAMIC_NAME, node, f"str.{method} on a string computed at render time "
                      "(format fields can read attributes)")
            return
        for field, spec in _format_fields(fmt):
            parts = re.split(r"[.\[\]]", field)
            for part in parts[1:]:
                self._check_name(part, node, f"str.{method} field")
            if "." in field:
                self._add(FORMAT_FIELDS, node, f"str.{method} field {{{field}}}")
            width = _spec_width(spec)
            if width > MAX_RANGE:
                self._add(EXHAUSTION, node, f"str.{method} field width {width}")

    def _check_percent(self, node: Any) -> None:
        """`'%999999999s' % x` and `|format` with such a width allocate on every request."""
        fmt = self.fold(node.left if isinstance(node, self.n.Mod) else node.node)
        if isinstance(fmt, str):
            widths = [int(d) for spec in re.findall(r"%[-+ #0]*([\d.]+)", fmt)
                      for d in re.findall(r"\d+", spec[:64])]
            if max(widths, default=0) > MAX_RANGE:
                self._add(EXHAUSTION, node, f"%-format width {max(widths)}")

    def _check_repetition(self, node: Any) -> None:
        left, right = self.fold(node.left), self.fold(node.right)
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list)) and isinstance(times, int) and times > MAX_RANGE:
                self._add(EXHAUSTION, node, f"sequence repeated {times} times")

    def _check_strings(self, node: Any) -> None:
        """Any constant or foldable string that spells a dangerous dunder (however it was built)."""
        n = self.n
        if not isinstance(node, (n.Const, n.List, n.Tuple)) and not self.built(node):
            return
        value = self.fold(node)
        for text in _strings(value):
            match = DANGEROUS.search(text)
            if match:
                self._add(INTERNALS, node, f"string spells {match.group(0)!r}")

    # -- static evaluation --------------------------------------------------------------------

    def _collect_names(self) -> None:
        n = self.n
        for node in self.tree.find_all((n.Assign, n.AssignBlock, n.For, n.With, n.Macro)):
            if isinstance(node, n.Assign):
                for name in _target_names(node.target, n):
                    self.env.setdefault(name, []).append(node.node)
            elif isinstance(node, n.AssignBlock):
                for name in _target_names(node.target, n):
                    self.env.setdefault(name, []).append(node)
            elif isinstance(node, n.For):
                for name in _target_names(node.target, n):
                    self.env.setdefault(name, []).append(("for", node.iter))
            elif isinstance(node, n.With):
                for target, value in zip(node.targets, node.values, strict=False):
                    for name in _target_names(target, n):
                        self.env.setdefault(name, []).append(value)
            else:
                for arg in node.args:
                    self.env.setdefault(arg.name, []).append(None)

    def built(self, node: Any) -> bool:
        """Does this expression assemble a string (rather than read data or a literal)?"""
        n = self.n
        if isinstance(node, n.Concat):
            return True
        if isinstance(node, (n.Add, n.Mul, n.Mod)):
            return any(self.built(x) or (isinstance(x, n.Const) and isinstance(x.value, str))
                       for x in (node.left, node.right))
        if isinstance(node, n.Filter):
            return node.name in STRING_FILTERS and self._authored(node.node, node)
        if isinstance(node, n.Call):
            return (isinstance(node.node, n.Getattr) and node.node.attr in STRING_METHODS
                    and self._authored(node.node.node, node))
        if isinstance(node, n.Getitem):
            base = node.node
            return isinstance(node.arg, n.Slice) and (
                self.built(base) or (isinstance(base, n.Const) and isinstance(base.value, str)))
        if isinstance(node, n.CondExpr):
            return self.built(node.expr1) or (node.expr2 is not None and self.built(node.expr2))
        if isinstance(node, n.Name) and node.name not in self.resolving:
            self.resolving.add(node.name)
            try:
                return any(self._built_value(v) for v in self.env.get(node.name, ()))
            finally:
                self.resolving.discard(node.name)
        return False

    def _authored(self, subject: Any, call: Any) -> bool:
        """Is text the template author wrote part of this filter or method call?

        `role|lower` transforms the caller's data and is not a built name;
        `'XXclassXX'|replace('X', '_')` or `role|replace('user', '__class__')` is.
        """
        n = self.n
        literal = (n.Const, n.List, n.Tuple)
        if subject is not None and (isinstance(subject, literal) or self.built(subject)):
            return True
        args = [*call.args, *(k.value for k in call.kwargs)]
        return any((isinstance(a, n.Const) and isinstance(a.value, str)) or self.built(a)
                   for a in args)

    def _built_value(self, value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, tuple):  # ("for", iterable)
            return self.built(value[1])
        if isinstance(value, self.n.AssignBlock):
            return True
        return self.built(value)

    def fold(self, node: Any) -> Any:
        """The value of a constant expression, or UNKNOWN. Results stay small by construction."""
        value = self._fold(node)
        if isinstance(value, str) and len(value) > MAX_FOLDED_CHARS:
            return UNKNOWN
        if isinstance(value, list) and len(value) > MAX_FOLDED_CHARS:
            return UNKNOWN
        return value

    def _fold(self, node: Any) -> Any:
        n = self.n
        if isinstance(node, n.Const):
            return node.value
        if isinstance(node, (n.List, n.Tuple)):
            items = [self.fold(x) for x in node.items]
            return UNKNOWN if any(x is UNKNOWN for x in items) else items
        if isinstance(node, n.Concat):
            parts = [self.fold(x) for x in node.nodes]
            if any(p is UNKNOWN or isinstance(p, list) for p in parts):
                return UNKNOWN
            return "".join(_str(p) for p in parts)
        if isinstance(node, n.Add):
            a, b = self.fold(node.left), self.fold(node.right)
            if (isinstance(a, str) and isinstance(b, str)) or (
                    isinstance(a, list) and isinstance(b, list)):
                return a + b
            return UNKNOWN
        if isinstance(node, n.Mul):
            a, b = self.fold(node.left), self.fold(node.right)
            for seq, times in ((a, b), (b, a)):
                if isinstance(seq, (str, list)) and type(times) is int and \
                        len(seq) * max(times, 0) <= MAX_FOLDED_CHARS:
                    return seq * times
            return UNKNOWN
        if isinstance(node, n.Mod):
            return _percent(self.fold(node.left), self.fold(node.right))
        if isinstance(node, (n.Neg, n.Pos)):
            value = self.fold(node.node)
            if type(value) is not int:
                return UNKNOWN
            return -value if isinstance(node, n.Neg) else value
        if isinstance(node, n.Getitem):
            return self._fold_item(node)
        if isinstance(node, n.Filter) and node.node is not None:
            args = [self.fold(a) for a in node.args]
            kwargs = {k.key: self.fold(k.value) for k in node.kwargs}
            return _filter(node.name, self.fold(node.node), args, kwargs)
        if isinstance(node, n.Call) and isinstance(node.node, n.Getattr):
            args = [self.fold(a) for a in node.args]
            kwargs = {k.key: self.fold(k.value) for k in node.kwargs}
            return _method(node.node.attr, self.fold(node.node.node), args, kwargs)
        if isinstance(node, n.Name):
            return self._fold_name(node.name)
        return UNKNOWN

    def _fold_item(self, node: Any) -> Any:
        base = self.fold(node.node)
        if not isinstance(base, (str, list)):
            return UNKNOWN
        if isinstance(node.arg, self.n.Slice):
            bounds = [None if x is None else self.fold(x)
                      for x in (node.arg.start, node.arg.stop, node.arg.step)]
            if any(b is not None and type(b) is not int for b in bounds) or bounds[2] == 0:
                return UNKNOWN
            return base[slice(*bounds)]
        index = self.fold(node.arg)
        if type(index) is int and -len(base) <= index < len(base):
            return base[index]
        return UNKNOWN

    def _fold_name(self, name: str) -> Any:
        values = self.env.get(name, [])
        if len(values) != 1 or name in self.resolving:
            return UNKNOWN
        value = values[0]
        if value is None or isinstance(value, tuple):
            return UNKNOWN
        self.resolving.add(name)
        try:
            if isinstance(value, self.n.AssignBlock):
                return _block_text(value, self.n)
            return self.fold(value)
        finally:
            self.resolving.discard(name)


def _target_names(target: Any, n: Any) -> list[str]:
    if isinstance(target, n.Name):
        return [target.name]
    if isinstance(target, n.Tuple):
        return [x.name for x in target.items if isinstance(x, n.Name)]
    return []


def _block_text(node: Any, n: Any) -> Any:
    """`{% set x %}text{% endset %}` folds when its body is plain text."""
    parts = []
    for out in node.body:
        if not isinstance(out, n.Output):
            return UNKNOWN
        for item in out.nodes:
            if not isinstance(item, n.TemplateData):
                return UNKNOWN
            parts.append(item.data)
    return "".join(parts)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _filter(name: str, value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Fold the string-building filters on constant inputs; anything else is UNKNOWN."""
    if value is UNKNOWN or any(a is UNKNOWN for a in [*args, *kwargs.values()]):
        return UNKNOWN
    if name == "join" and isinstance(value, (list, str)) and "attribute" not in kwargs:
        sep = args[0] if args else kwargs.get("d", "")
        return _str(sep).join(_str(v) for v in value) if isinstance(sep, str) else UNKNOWN
    if name == "format" and isinstance(value, str):
        return _percent(value, kwargs or args)
    if name == "reverse" and isinstance(value, (str, list)):
        return value[::-1]
    if name == "list" and isinstance(value, (str, list)):
        return list(value)
    if name in ("first", "last") and isinstance(value, (str, list)) and value:
        return value[0] if name == "first" else value[-1]
    if name == "string":
        return _str(value)
    if name == "trim" and isinstance(value, str):
        return value.strip(*args[:1])
    if name in ("lower", "upper", "title", "capitalize") and isinstance(value, str):
        return getattr(value, name)()
    if name == "replace":
        return _method("replace", value, args, kwargs)
    return UNKNOWN


def _method(name: str, value: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Fold str methods on constant inputs (format only for plain `{}` / `{0}` / `{name}`)."""
    if not isinstance(value, str) or any(a is UNKNOWN for a in [*args, *kwargs.values()]):
        return UNKNOWN
    if name == "join" and len(args) == 1 and isinstance(args[0], (list, str)):
        return value.join(_str(v) for v in args[0])
    if name == "replace" and 2 <= len(args) <= 3 and all(isinstance(a, str) for a in args[:2]):
        old, new = args[0], args[1]
        count = args[2] if len(args) == 3 else -1
        if type(count) is not int or (old == "" and len(value) * len(new) > MAX_FOLDED_CHARS):
            return UNKNOWN
        if len(new) > len(old) and value.count(old) * len(new) > MAX_FOLDED_CHARS:
            return UNKNOWN
        return value.replace(old, new, count)
    if name in ("lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize",
                "swapcase", "casefold") and not kwargs and len(args) <= 1 and all(
                    isinstance(a, str) for a in args):
        return getattr(value, name)(*args)
    if name == "format":
        return _format(value, args, kwargs)
    return UNKNOWN


def _format_fields(fmt: str, depth: int = 0) -> list[tuple[str, str]]:
    """(field, spec) of every replacement field, those nested in format specs too
    (`'{0:{1.__class__}}'`). Pure parsing: nothing is formatted."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return []
    fields = []
    for _, name, spec, _ in parsed:
        if name is not None:
            fields.append((name, spec or ""))
        if spec and depth < 2:
            fields += _format_fields(spec, depth + 1)
    return fields


def _spec_width(spec: str) -> int:
    """The width or precision a format spec asks for (the larger), 0 when none."""
    return max((int(d) for d in re.findall(r"\d+", spec[:64])), default=0)


def _format(fmt: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """str.format restricted to bare fields: no conversions, specs or attribute access."""
    out = []
    auto = 0
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return UNKNOWN
    for text, field, spec, conv in parsed:
        out.append(text)
        if field is None:
            continue
        if spec or conv:
            return UNKNOWN
        if field == "":
            field, auto = str(auto), auto + 1
        if field.isdigit() and int(field) < len(args):
            out.append(_str(args[int(field)]))
        elif field in kwargs:
            out.append(_str(kwargs[field]))
        else:
            return UNKNOWN
    return "".join(out)


def _percent(fmt: Any, values: Any) -> Any:
    """`fmt % values` for %s, %c, %d and %% only (widths could allocate: left UNKNOWN)."""
    if not isinstance(fmt, str) or values is UNKNOWN:
        return UNKNOWN
    if isinstance(values, dict) or (isinstance(values, list) and any(
            v is UNKNOWN for v in values)):
        return UNKNOWN
    items = list(values) if isinstance(values, list) else [values]
    out = []
    i = 0
    pieces = re.split(r"(%.)", fmt)
    for piece in pieces:
        if len(piece) == 2 and piece[0] == "%":
            if piece == "%%":
                out.append("%")
                continue
            if i >= len(items) or piece[1] not in "scd":
                return UNKNOWN
            item = items[i]
            i += 1
            if piece[1] == "c":
                if type(item) is int and 0 <= item < 0x110000:
                    out.append(chr(item))
                elif isinstance(item, str) and len(item) == 1:
                    out.append(item)
                else:
                    return UNKNOWN
            elif piece[1] == "d":
                if type(item) is not int:
                    return UNKNOWN
                out.append(str(item))
            else:
                out.append(_str(item))
        else:
            out.append(piece)
    return "".join(out)
