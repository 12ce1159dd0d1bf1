"""What TorchScript source under `code/` references, read as code: tokens and syntax, not text.

torch.jit.save writes the program as Python-syntax source. A string constant
(an exception message naming `builtins.eval`, a docstring mentioning
`os.system`) and a comment are data the program never runs, so only names
that the code really uses count: imports, calls of eval/exec/compile/open,
attribute chains rooted at a Python system module, dynamic imports and file
mapping. Source the Python parser rejects is read token by token with strings
and comments dropped, so a crafted file cannot hide a reference behind a
syntax error.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

SYSTEM_MODULES = frozenset({"os", "posix", "nt", "subprocess", "sys", "socket", "shutil",
                            "builtins", "__builtins__", "ctypes", "pickle", "marshal", "runpy",
                            "importlib", "pty", "signal"})
DYNAMIC_IMPORT = frozenset({"__import__", "importlib", "__builtins__"})
EVAL = frozenset({"eval", "exec", "compile"})
FILE_MAP = "from_file"


@dataclass(frozen=True)
class Use:
    """One construct TorchScript written by torch.jit.save never contains, and its line."""

    what: str
    text: str
    line: int


def suspicious(source: str) -> list[Use]:
    """Every suspicious reference in `source`, by syntax tree, else by tokens."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return _by_tokens(source)
    return sorted(_by_tree(tree), key=lambda u: (u.line, u.what))


def _by_tree(tree: ast.AST) -> Iterator[Use]:
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = ", ".join(a.name for a in node.names)
            yield Use("Python import statement", f"import {names}", line)
        elif isinstance(node, ast.Name) and node.id in DYNAMIC_IMPORT:
            yield Use("dynamic import", node.id, line)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in EVAL:
                yield Use("eval/exec/compile", f"{node.func.id}(", line)
            elif node.func.id == "open":
                yield Use("file open", "open(", line)
        elif isinstance(node, ast.Attribute):
            if node.attr == FILE_MAP:
                yield Use("reads or maps a file (from_file)", node.attr, line)
            root = node.value
            if isinstance(root, ast.Name) and root.id in SYSTEM_MODULES:
                yield Use("Python system module", f"{root.id}.{node.attr}", line)


def _by_tokens(source: str) -> list[Use]:
    """Names in the token stream (strings and comments are single tokens, skipped)."""
    names: list[tuple[str, int]] = []  # (NAME or '.', '(' …, line)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.NAME, tokenize.OP):
                names.append((tok.string, tok.start[0]))
    except SyntaxError as exc:  # IndentationError included
        names.append(("<untokenizable>", exc.lineno or 0))
    except tokenize.TokenError as exc:
        names.append(("<untokenizable>", exc.args[1][0]))
    uses = []
    for i, (name, line) in enumerate(names):
        after = names[i + 1][0] if i + 1 < len(names) else ""
        before = names[i - 1][0] if i else ""
        if name == "<untokenizable>":
            uses.append(Use("source that cannot be read as code", name, line))
        elif name in ("import", "from") and before not in ("yield", "raise") and after != ".":
            uses.append(Use("Python import statement", name, line))
        elif name in DYNAMIC_IMPORT:
            uses.append(Use("dynamic import", name, line))
        elif name in EVAL and after == "(" and before != ".":
            uses.append(Use("eval/exec/compile", f"{name}(", line))
        elif name == "open" and after == "(" and before != ".":
            uses.append(Use("file open", "open(", line))
        elif name == FILE_MAP:
            uses.append(Use("reads or maps a file (from_file)", name, line))
        elif name in SYSTEM_MODULES and after == "." and before != ".":
            attr = names[i + 2][0] if i + 2 < len(names) else ""
            uses.append(Use("Python system module", f"{name}.{attr}", line))
    return uses
