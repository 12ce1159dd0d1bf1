"""Remote code: shipped `*.py` files and the `auto_map` entries that make loaders import them.

`trust_remote_code=True` imports the Python files a model ships, so each one
is reviewed as source: parsed with `ast.parse` (never imported, compiled to
bytecode or executed) and every reference is resolved through the file's
imports to a dotted name (`from os import system as s; s(...)` is
`os.system`), then looked up in the tables below. The tables are data: a new
dangerous callable is one line.

Sniffing is by name and content together: Python source is plain text with no
signature, so content alone cannot tell it from a README, while a `.py` name
alone could hide binary content. A `.py` name with text content is Python;
anything else falls to the other formats (and the extension check).

The presence of code is a medium finding (a policy decides whether to allow
it, by digest); dangerous calls are high or critical.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import fnmatch
import posixpath
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats._lib.text import is_text
from auditor.formats.code.pyfold import Folder
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FileReport, FormatId, FormatResult, Rule, Severity

CODE_PRESENT = Rule(
    "AUD-CODE-001", Severity.MEDIUM, "Python code shipped with the model (remote code)",
    "Loading with trust_remote_code=True imports this file with the user's privileges; it is "
    "reviewed statically here, but only a person (or a policy pinning its sha256) can approve it.",
    "Prefer a model supported natively by your library; otherwise review the code and allow "
    "it by digest in policy.",
)
PROCESS = Rule(
    "AUD-CODE-002", Severity.CRITICAL, "Remote code starts processes",
    "os.system, subprocess, pty and os.exec*/spawn* run arbitrary commands on the host when the "
    "model is loaded.",
    "Do not load this model; report it to the publisher and the hosting platform.",
)
EXEC = Rule(
    "AUD-CODE-003", Severity.HIGH, "Remote code executes dynamically built code",
    "exec, eval, compile and their relatives run code that is not visible in the file, so the "
    "review of this file does not cover what runs.",
    "Review where the executed string comes from; refuse the model unless it is constant and "
    "harmless.",
)
ENCODED_EXEC = Rule(
    "AUD-CODE-004", Severity.CRITICAL, "Remote code decodes a blob and executes or unpickles it",
    "Base64, hex or compressed data fed to exec/eval/marshal/pickle is the signature of an "
    "obfuscated payload: the code that runs was hidden from review on purpose.",
    "Do not load this model; report it to the publisher and the hosting platform.",
)
DYNAMIC_IMPORT = Rule(
    "AUD-CODE-005", Severity.HIGH, "Remote code imports modules by computed name",
    "__import__, importlib.import_module and loaders from file paths pull in code the review "
    "cannot see, chosen at run time.",
    "Review which modules can be imported; refuse the model unless the names are constant.",
)
NETWORK = Rule(
    "AUD-CODE-006", Severity.HIGH, "Remote code opens network connections",
    "Sockets and HTTP clients in model code can exfiltrate data or fetch a second stage when "
    "the model loads.",
    "Review the destinations; refuse the model unless the traffic is expected and pinned.",
)
NATIVE = Rule(
    "AUD-CODE-007", Severity.HIGH, "Remote code loads native code (ctypes, cffi)",
    "Foreign-function interfaces call into shared libraries and raw memory, outside anything a "
    "Python-level review can judge.",
    "Refuse the model unless the native dependency is known and reviewed.",
)
DESERIALIZE = Rule(
    "AUD-CODE-008", Severity.HIGH, "Remote code unpickles or unmarshals data",
    "pickle, marshal, dill and shelve loads execute code embedded in the data they read.",
    "Load data with safe formats (safetensors, JSON) instead.",
)
WRITE_OUTSIDE = Rule(
    "AUD-CODE-009", Severity.HIGH, "Remote code writes or deletes files outside the model folder",
    "Writing to absolute, home or '..' paths plants files (shell profiles, SSH keys, site "
    "packages) that run later.",
    "Refuse the model; model code has no reason to touch the host's files.",
)
URLS = Rule(
    "AUD-CODE-010", Severity.LOW, "Remote code contains URLs",
    "URLs in code are where downloads and exfiltration go; they are listed so a reviewer can "
    "check them.",
    "Check that every URL is expected.",
)
SYNTAX = Rule(
    "AUD-CODE-011", Severity.HIGH, "Python file does not parse",
    "A file the scanner cannot parse cannot be reviewed; the interpreter that imports it may "
    "accept it (newer syntax) and run it.",
    "Check the file by hand; if it uses syntax newer than the scanner's Python, scan with a "
    "newer Python.",
)
AUTO_MAP = Rule(
    "AUD-CODE-012", Severity.MEDIUM, "Config declares remote code (auto_map, custom_pipelines)",
    "auto_map and custom_pipelines name the classes trust_remote_code=True imports from the "
    "model's own Python files.",
    "Prefer natively supported architectures; otherwise review the named modules.",
)
AUTO_MAP_OTHER_REPO = Rule(
    "AUD-CODE-013", Severity.HIGH, "auto_map imports code from another repository",
    "A 'org/repo--module.Class' reference makes the loader fetch and run code from a different "
    "repository, which this scan did not see and whose owner can change it at any time.",
    "Vendor the code into this model and pin it, or refuse the model.",
)
AUTO_MAP_INVALID = Rule(
    "AUD-CODE-014", Severity.HIGH, "auto_map reference is malformed or leaves the model folder",
    "A reference that is not 'module.Class' is either rejected by the loader or, with an "
    "absolute module path, makes it import a file from anywhere on the host.",
    "Use plain 'module.Class' references to files in the model folder.",
)
AUTO_MAP_MISSING = Rule(
    "AUD-CODE-015", Severity.HIGH, "auto_map names a module that is not in the model folder",
    "The module the loader imports was not scanned: it will be fetched or read from elsewhere "
    "at load time.",
    "Ship the module with the model, or remove the auto_map entry.",
)
HIDDEN_NAME = Rule(
    "AUD-CODE-016", Severity.CRITICAL,
    "Remote code reaches a dangerous function through a name it decodes or builds",
    "The name of exec, os.system, a socket, a file writer or such a module is assembled at run "
    "time (rot13, base64, hex, reversed or joined pieces, chr() codes, formatting) and used "
    "through getattr, attrgetter, methodcaller, a namespace lookup or an import; the review "
    "computed the name statically. Hiding a call this way only serves to pass review.",
    "Do not load this model; report it to the publisher and the hosting platform.",
)
UNRESOLVED_NAME = Rule(
    "AUD-CODE-017", Severity.HIGH, "Remote code calls a function by a name computed at run time",
    "A lookup on builtins, a module holding process, exec, file or network functions, or a "
    "namespace (globals(), vars(), sys.modules) uses a name the review cannot compute, or a "
    "built name spells a dangerous method on an object it cannot resolve: what runs is chosen "
    "at run time.",
    "Review where the name comes from; refuse the model unless it is a constant harmless name.",
)
OTHER_REPO_CODE = Rule(
    "AUD-CODE-018", Severity.HIGH, "Remote code loads and runs another repository's code",
    "torch.hub.load (list, help) imports the hubconf.py of the repository it names, and "
    "from_pretrained, pipeline and the Auto classes with trust_remote_code=True import that "
    "repository's Python files: code the review of this model never saw runs at load time, and "
    "its publisher can change it at any time.",
    "Review the named repository's code at a pinned revision, or refuse the model; ship the "
    "code with the model instead of fetching it.",
)
RULES = (CODE_PRESENT, PROCESS, EXEC, ENCODED_EXEC, DYNAMIC_IMPORT, NETWORK, NATIVE, DESERIALIZE,
         WRITE_OUTSIDE, URLS, SYNTAX, AUTO_MAP, AUTO_MAP_OTHER_REPO, AUTO_MAP_INVALID,
         AUTO_MAP_MISSING, HIDDEN_NAME, UNRESOLVED_NAME, OTHER_REPO_CODE)

MAX_SOURCE = 8 * 1024 * 1024  # bigger than any hand-written module; generated code is suspect

# Resolved dotted name (fnmatch pattern) -> the rule it raises. First match wins.
DANGEROUS: tuple[tuple[str, Rule], ...] = (
    ("os.system", PROCESS), ("os.popen", PROCESS), ("os.exec*", PROCESS),
    ("os.spawn*", PROCESS), ("os.posix_spawn*", PROCESS), ("os.fork*", PROCESS),
    ("subprocess.*", PROCESS), ("_posixsubprocess.*", PROCESS), ("pty.*", PROCESS),
    ("commands.*", PROCESS), ("platform.popen", PROCESS),
    ("asyncio.create_subprocess_*", PROCESS), ("multiprocessing.util.spawnv_passfds", PROCESS),
    ("exec", EXEC), ("eval", EXEC), ("compile", EXEC), ("execfile", EXEC),
    ("runpy.*", EXEC), ("code.*", EXEC), ("cProfile.run*", EXEC), ("profile.run*", EXEC),
    ("timeit.*", EXEC), ("types.CodeType", EXEC), ("types.FunctionType", EXEC),
    ("breakpoint", EXEC),
    ("__import__", DYNAMIC_IMPORT), ("importlib.import_module", DYNAMIC_IMPORT),
    ("importlib.__import__", DYNAMIC_IMPORT), ("importlib.reload", DYNAMIC_IMPORT),
    ("importlib.util.spec_from_file_location", DYNAMIC_IMPORT),
    ("importlib.machinery.*Loader", DYNAMIC_IMPORT), ("imp.*", DYNAMIC_IMPORT),
    ("pkgutil.resolve_name", DYNAMIC_IMPORT), ("pydoc.locate", DYNAMIC_IMPORT),
    ("socket.*", NETWORK), ("urllib.request.*", NETWORK), ("urllib.urlopen", NETWORK),
    ("urllib2.*", NETWORK), ("requests.*", NETWORK), ("httpx.*", NETWORK),
    ("http.client.*", NETWORK), ("aiohttp.*", NETWORK), ("urllib3.*", NETWORK),
    ("ftplib.*", NETWORK), ("smtplib.*", NETWORK), ("telnetlib.*", NETWORK),
    ("xmlrpc.client.*", NETWORK), ("paramiko.*", NETWORK), ("websocket*", NETWORK),
    ("ctypes.*", NATIVE), ("_ctypes.*", NATIVE), ("cffi.*", NATIVE),
    ("pickle.load*", DESERIALIZE), ("pickle.Unpickler", DESERIALIZE), ("_pickle.*", DESERIALIZE),
    ("cPickle.*", DESERIALIZE), ("marshal.load*", DESERIALIZE), ("dill.load*", DESERIALIZE),
    ("cloudpickle.load*", DESERIALIZE), ("shelve.open", DESERIALIZE),
    ("joblib.load", DESERIALIZE), ("yaml.unsafe_load*", DESERIALIZE),
    ("torch.hub.load", OTHER_REPO_CODE), ("torch.hub.list", OTHER_REPO_CODE),
    ("torch.hub.help", OTHER_REPO_CODE),
    ("transformers.dynamic_module_utils.get_class_from_dynamic_module", OTHER_REPO_CODE),
    ("torch.hub.load_state_dict_from_url", NETWORK), ("torch.hub.download_url_to_file", NETWORK),
)
# Names under a dangerous module that do nothing by themselves (exceptions, constants).
HARMLESS: tuple[str, ...] = (
    "subprocess.*Error", "subprocess.TimeoutExpired", "subprocess.PIPE", "subprocess.DEVNULL",
    "subprocess.STDOUT", "socket.timeout", "socket.error", "socket.gaierror",
    "requests.exceptions.*", "requests.*Error", "httpx.*Error", "http.client.HTTPException",
    "urllib3.exceptions.*", "code.*Error",
)
# Calls that turn an encoded literal back into bytes or code.
DECODERS: tuple[str, ...] = (
    "base64.*decode*", "binascii.a2b_*", "binascii.unhexlify", "bytes.fromhex",
    "codecs.decode", "zlib.decompress", "gzip.decompress", "bz2.decompress",
    "lzma.decompress",
)
# What a decoded blob must not be handed to.
SINK_RULES = frozenset({EXEC.id, DESERIALIZE.id})
# Calls that write, move or delete the path given as their first argument.
PATH_WRITERS: tuple[str, ...] = (
    "os.remove", "os.unlink", "os.rename", "os.replace", "os.makedirs", "os.mkdir",
    "os.chmod", "os.symlink", "os.link", "shutil.*", "distutils.file_util.write_file",
)
PATH_METHODS = frozenset({"write_text", "write_bytes", "unlink", "touch", "mkdir", "chmod",
                          "symlink_to", "rename", "replace"})
_BUILTIN_NAMES = frozenset(dir(builtins)) | {"__builtins__", "__builtin__"}
_IMPORTERS = frozenset({"__import__", "builtins.__import__", "importlib.import_module",
                        "importlib.__import__"})
# Mappings whose items are names: x["exec"] on one of them is the name exec (`m.__dict__["x"]`
# and `vars(m)["x"]` are m.x). The module's own namespaces map its names through its imports.
_NAMESPACES = frozenset({"__builtins__", "sys.modules", "globals", "vars", "locals"})
_OWN_NAMESPACES = frozenset({"globals", "vars", "locals"})
_OPEN = frozenset({"open", "io.open", "codecs.open"})
# Calls that read an attribute by name: getter(obj, name) is obj.name.
_GETTERS = frozenset({"getattr", "inspect.getattr_static", "object.__getattribute__",
                      "type.__getattribute__"})
# Bound methods that read an attribute by name: obj.__getattribute__(name) is obj.name.
_GETTER_METHODS = frozenset({"__getattribute__", "__getattr__"})
# Folds: reduce(step, names, start) and accumulate(names, step, initial=start) walk a path.
_REDUCE = frozenset({"functools.reduce", "_functools.reduce"})
_ACCUMULATE = "itertools.accumulate"
# Calls that are safe only with a keyword set right: (call, keyword, value that unsafes it).
UNSAFE_KEYWORDS: tuple[tuple[str, str, object], ...] = (
    ("torch.load", "weights_only", False), ("numpy.load", "allow_pickle", True),
)
# Attributes and code-object fields that reach interpreter internals or rebuild functions.
REFLECTIVE_ATTRS = frozenset({"__globals__", "__subclasses__", "__builtins__", "f_globals",
                              "f_builtins", "gi_frame", "tb_frame", "co_code", "co_consts"})
# Calls that turn a path into another path of the same place (first argument), or a home.
PATH_WRAPPERS = ("os.path.join", "os.path.expanduser", "os.path.abspath", "os.path.realpath",
                 "os.path.normpath", "pathlib.Path", "pathlib.PosixPath", "pathlib.PurePath")
PATH_METHOD_WRAPPERS = frozenset({"joinpath", "expanduser", "resolve", "absolute"})
HOME_CALLS = ("pathlib.Path.home", "pathlib.PosixPath.home")
# Modules holding exec, system, sockets, file writers and the like.
_DANGEROUS_MODULES = frozenset({"builtins", "__builtin__"} | {
    pattern.rsplit(".", 1)[0] for pattern in (*(p for p, _ in DANGEROUS), *PATH_WRITERS)
    if "." in pattern})
# Objects whose attributes or items looked up by a computed name may be exec, system and the like.
_REFLECTIVE_BASES = _NAMESPACES - {"vars", "locals"} | _DANGEROUS_MODULES
# operator.methodcaller("system") and friends: the last name of each dangerous entry.
_DANGEROUS_LEAVES = {pattern.rsplit(".", 1)[-1]: rule for pattern, rule in DANGEROUS
                     if "*" not in pattern.rsplit(".", 1)[-1]}
_URL = re.compile(r"\b(?:https?|ftp)://[^\s'\"<>)]+")
_AUTO_MAP_REF = re.compile(
    r"^(?:(?P<repo>[\w.\-]+(?:/[\w.\-]+)?)--)?(?P<module>[\w\-]+(?:/[\w\-]+)*)\.(?P<cls>\w+)$"
)


def sniff(head: bytes, name: str) -> bool:
    return name.lower().endswith(".py") and is_text(head)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    source = f.read(MAX_SOURCE + 1)
    if len(source) > MAX_SOURCE:
        raise LimitExceeded(f"Python source larger than {MAX_SOURCE} bytes")
    ctx.add(CODE_PRESENT)
    try:
        tree = ast.parse(source, filename=ctx.name)
    except SyntaxError as exc:
        raise FormatError(f"line {exc.lineno}: {exc.msg}", None, SYNTAX) from None
    except (RecursionError, MemoryError):
        raise LimitExceeded("Python source nests too deeply to parse") from None
    except ValueError as exc:  # e.g. NUL bytes
        raise FormatError(str(exc), None, SYNTAX) from None
    review = _Review(tree)
    hits: dict[tuple[str, str], list[int]] = {}
    for rule, name, line in review.findings():
        hits.setdefault((rule.id, name), []).append(line)
    by_id = {r.id: r for r in RULES}
    for (rule_id, name), lines in sorted(hits.items(), key=lambda kv: kv[1][0]):
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        ctx.add(by_id[rule_id], f"line {lines[0]}: {name}{more}")
    urls = review.urls()
    if urls:
        shown = ", ".join(urls[:5]) + (f" (+{len(urls) - 5} more)" if len(urls) > 5 else "")
        ctx.add(URLS, shown)
    ctx.result.facts.update({
        "remote_code": True,
        "calls": sorted({name for _, name in hits}),
        "imports": sorted(review.imported),
        "urls": urls,
    })
    return ctx.result


class _Review:
    """Resolves names through the file's imports and yields (rule, dotted name, line)."""

    def __init__(self, tree: ast.Module) -> None:
        self.memo: dict[str, Rule | None] = {}
        self.aliases: dict[str, str] = {}
        self.hidden: set[str] = set()  # aliases whose target was reached by a computed name
        self.star: list[str] = []
        self.imported: set[str] = set()
        self.defined: set[str] = set()
        self.nodes = list(ast.walk(tree))  # walked once; every pass below reuses it
        for node in self.nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.imported.add(a.name.split(".")[0])
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        root = a.name.split(".")[0]
                        self.aliases[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                self.imported.add(node.module.split(".")[0])
                for a in node.names:
                    if a.name == "*":
                        self.star.append(node.module)
                    else:
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.defined.add(node.name)
        self.folder = Folder(callee=self._name, constants=_bound_once(self.nodes))
        for target, value in _simple_assignments(self.nodes):  # `o = os`, `(g := getattr)`
            name, hidden = self._resolve(value)
            if name is not None and target not in self.aliases:
                self.aliases[target] = name
                if hidden:
                    self.hidden.add(target)
        self.tainted = self._tainted_names()

    def rule(self, name: str | None) -> Rule | None:
        """`dangerous_name`, remembered: the same names recur thousands of times in a file."""
        if not name:
            return None
        if name not in self.memo:
            self.memo[name] = dangerous_name(name) or _reexported(name)
        return self.memo[name]

    def resolve(self, node: ast.AST) -> str | None:
        """The dotted name an expression refers to, when the file's imports say so."""
        return self._resolve(node)[0]

    def _resolve(self, node: ast.AST) -> tuple[str | None, bool]:
        """`resolve`, and whether a name on the way was computed (decoded, joined, built)."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id], node.id in self.hidden
            for module in self.star:
                if dangerous_name(f"{module}.{node.id}"):
                    return f"{module}.{node.id}", False
            if node.id in self.defined or node.id not in _BUILTIN_NAMES:
                return None, False  # a local variable: nothing known about it
            return node.id, False
        if isinstance(node, ast.Attribute):
            base, hidden = self._resolve(node.value)
            return (None if base is None else f"{base}.{node.attr}"), hidden
        if isinstance(node, ast.Call):
            return self._resolve_call(node)
        if isinstance(node, ast.Subscript):
            return self._item(node.value, node.slice)
        return None, False

    def _item(self, mapping: ast.AST, key_node: ast.AST) -> tuple[str | None, bool]:
        """`namespace[key]` (or `.get(key)`): globals()["os"], vars(m)["x"], sys.modules[...]."""
        base, hidden = self._resolve(mapping)
        key, built = (None, False) if base is None else self.text(key_node)
        if key is None or base is None:
            return None, False
        name, from_hidden = self._lookup(base, key)
        return name, name is not None and (hidden or built or from_hidden)

    def _lookup(self, base: str, key: str) -> tuple[str | None, bool]:
        """The name `base[key]` is, when base is a namespace; and whether it is a hidden alias."""
        if base in _OWN_NAMESPACES:  # globals()["os"] is whatever the file named os
            return self.aliases.get(key, key), key in self.hidden
        if base in _NAMESPACES:
            return key, False
        if base.endswith(".__dict__"):
            return f"{base.removesuffix('.__dict__')}.{key}", False
        return None, False

    def _resolve_call(self, node: ast.Call) -> tuple[str | None, bool]:
        """`__import__(n)` is the module n, `getattr(m, n)` and `attrgetter(n)(m)` are m.n."""
        func = _unprefixed(self.resolve(node.func))
        if func in _IMPORTERS and node.args:
            module, built = self.text(node.args[0])
            return module, built
        getter = self._getter(node)
        if getter is not None:
            return self._member(*getter)
        if func in _REDUCE:
            walk = self._walk(node)
            return (walk[-1], True) if walk else (None, False)
        if func == "operator.getitem" and len(node.args) > 1:
            return self._item(node.args[0], node.args[1])
        if func == "vars" and len(node.args) == 1:
            base, hidden = self._resolve(node.args[0])
            return (None if base is None else f"{base}.__dict__"), hidden
        if isinstance(node.func, ast.Call) and len(node.func.args) == 1 and len(node.args) == 1 \
                and self.resolve(node.func.func) == "operator.attrgetter":
            base, hidden = self._resolve(node.args[0])
            return self._member(base, hidden, node.func.args[0])
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "__getitem__") \
                and node.args:
            return self._item(node.func.value, node.args[0])
        return (func if func in _NAMESPACES else None), False  # globals() -> "globals"

    def _member(self, base: str | None, hidden: bool,
                attr_node: ast.AST) -> tuple[str | None, bool]:
        attr, built = self.text(attr_node)
        if attr is None or base is None:
            return None, False
        return f"{base}.{attr}", hidden or built

    def _getter(self, call: ast.Call) -> tuple[str | None, bool, ast.AST] | None:
        """(object, hidden, name node) of getattr(o, n), object.__getattribute__(o, n),
        o.__getattribute__(n) and o.__getattr__(n): each reads o.n."""
        func, hidden = self._resolve(call.func)
        func = _unprefixed(func)
        if func in _GETTERS and len(call.args) > 1:
            return (*self._resolve(call.args[0]), call.args[1])
        if len(call.args) != 1:
            return None
        if isinstance(call.func, ast.Attribute) and call.func.attr in _GETTER_METHODS:
            return (*self._resolve(call.func.value), call.args[0])
        if func and "." in func and func.rsplit(".", 1)[1] in _GETTER_METHODS:  # g = o.__getattr__
            return func.rsplit(".", 1)[0], hidden, call.args[0]
        return None

    def _walk_parts(self, call: ast.Call) -> tuple[str | None, ast.AST, ast.AST | None] | None:
        """(step kind, names, start) of a reduce/accumulate whose step looks up attributes
        ("attr") or items ("item"); None for any other call."""
        func = self._name(call.func)
        if func in _REDUCE and len(call.args) >= 2:
            step, names = call.args[0], call.args[1]
            start = call.args[2] if len(call.args) > 2 else None
        elif func == _ACCUMULATE and len(call.args) >= 2:
            names, step = call.args[0], call.args[1]
            start = next((k.value for k in call.keywords if k.arg == "initial"), None)
        else:
            return None
        kind = self._step_kind(step)
        return None if kind is None else (kind, names, start)

    def _step_kind(self, step: ast.AST) -> str | None:
        """getattr, attrgetter and friends step through attributes; getitem through items. A
        lambda steps the way the lookups in its body do."""
        body = step.body if isinstance(step, ast.Lambda) else step
        for sub in ast.walk(body):
            name = self._name(sub)
            if name in _GETTERS or name == "operator.attrgetter" or (
                    isinstance(sub, ast.Call) and self._getter(sub) is not None):
                return "attr"
            if name == "operator.getitem" or isinstance(sub, ast.Subscript):
                return "item"
        return None

    def _walk(self, call: ast.Call) -> list[str] | None:
        """Every name a getattr/getitem reduce or accumulate passes through (the last is what
        it yields), when the start and the names are known; otherwise None."""
        parts = self._walk_parts(call)
        if parts is None or parts[2] is None:
            return None
        kind, names_node, start = parts
        names = self.folder.fold(names_node)
        base = self.resolve(start)
        if base is None or not isinstance(names, list | tuple) \
                or not all(isinstance(n, str) for n in names):
            return None
        path: list[str] = []
        for name in names:
            base = f"{base}.{name}" if kind == "attr" else self._lookup(base, name)[0]
            if base is None:
                return None
            path.append(base)
        return path or None

    def text(self, node: ast.AST) -> tuple[str | None, bool]:
        """The string an expression computes (constant folding), and whether it was built."""
        return self.folder.text(node)

    def _name(self, node: ast.AST) -> str | None:
        return _unprefixed(self.resolve(node))

    def _hidden_name(self, node: ast.AST) -> tuple[str | None, bool]:
        name, hidden = self._resolve(node)
        return _unprefixed(name), hidden

    def _tainted_names(self) -> set[str]:
        """Variables assigned (directly or via each other) from a decoder call."""
        tainted: set[str] = set()
        assigns = [n for n in self.nodes if isinstance(n, ast.Assign | ast.AnnAssign)]
        for node in sorted(assigns, key=lambda n: (n.lineno, n.col_offset)):
            if node.value is not None and self._carries_blob(node.value, tainted):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                tainted |= {t.id for t in targets if isinstance(t, ast.Name)}
        return tainted

    def _carries_blob(self, expr: ast.AST, tainted: set[str]) -> bool:
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Name) and sub.id in tainted:
                return True
            if isinstance(sub, ast.Call):
                name = self._name(sub.func)
                if name and any(fnmatch.fnmatchcase(name, p) for p in DECODERS):
                    return True
        return False

    def findings(self) -> Iterator[tuple[Rule, str, int]]:
        inner = {id(n.value) for n in self.nodes if isinstance(n, ast.Attribute)}
        for node in self.nodes:
            if isinstance(node, ast.Call):
                yield from self._call(node)
            yield from self._reflective(node)
            if id(node) in inner:
                continue  # `a.b` of `a.b.c`: judged as part of the whole chain
            loaded = isinstance(node, ast.Name | ast.Attribute | ast.Subscript) and isinstance(
                node.ctx, ast.Load)
            if not (loaded or isinstance(node, ast.Call)):  # a call: getattr(m, "name")
                continue
            name, hidden = self._hidden_name(node)
            rule = self.rule(name)
            if rule is not None:
                yield rule, name or "", node.lineno
            if hidden and self._dangerous_target(name):
                yield HIDDEN_NAME, _spelled(name, node), node.lineno

    def _dangerous_target(self, name: str | None) -> bool:
        """A dangerous callable, a module holding some, or a file writer."""
        return bool(name) and (self.rule(name) is not None or name in _DANGEROUS_MODULES or any(
            fnmatch.fnmatchcase(name or "", p) for p in PATH_WRITERS))

    def _reflective(self, node: ast.AST) -> Iterator[tuple[Rule, str, int]]:
        """`__builtins__[name]` with a computed name; `f.__globals__`, `code.replace(co_code=)`."""
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and not isinstance(node.slice, ast.Constant) and not _own_module(node.slice):
            base = self.resolve(node.value)
            if _reflective_base(base) and self.text(node.slice)[0] is None:
                yield UNRESOLVED_NAME, f"{base}[<computed name>]", node.lineno
        elif isinstance(node, ast.Attribute) and node.attr in REFLECTIVE_ATTRS:
            yield EXEC, f"<object>.{node.attr}", node.lineno
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in REFLECTIVE_ATTRS:
                    yield EXEC, f"<code>.replace({kw.arg}=...)", node.lineno

    def _call(self, call: ast.Call) -> Iterator[tuple[Rule, str, int]]:
        found, hidden = self._hidden_name(call.func)
        name = found or ""
        if hidden and name in _OPEN and self._writes(call, name):
            yield HIDDEN_NAME, _spelled(f"{name} (for writing)", call.func), call.lineno
        rule = self.rule(name)
        sink = rule is not None and rule.id in SINK_RULES
        if sink and any(self._carries_blob(a, self.tainted) for a in call.args):
            yield ENCODED_EXEC, f"{name}(<decoded blob>)", call.lineno
        yield from self._indirect(call, name)
        path = self._path(call.args[0]) if call.args else None
        if path is not None and path_outside(path) and self._writes(call, name):
            yield WRITE_OUTSIDE, f"{name or 'write'}({path!r})", call.lineno
        if isinstance(call.func, ast.Attribute) and call.func.attr in PATH_METHODS:
            target = self._path(call.func.value)
            if target is not None and path_outside(target):
                yield WRITE_OUTSIDE, f"Path({target!r}).{call.func.attr}()", call.lineno

    def _indirect(self, call: ast.Call, name: str) -> Iterator[tuple[Rule, str, int]]:
        """Dangerous calls spelled indirectly: computed getattr, methodcaller, unsafe keywords."""
        getter = self._getter(call)
        if getter is not None:
            base, _, attr_node = getter
            attr, built = self.text(attr_node)
            if attr is None and _reflective_base(base):
                yield UNRESOLVED_NAME, f"getattr({base}, <computed name>)", call.lineno
            elif base is None and built and attr in _DANGEROUS_LEAVES:
                yield UNRESOLVED_NAME, _spelled(f"getattr(<object>, {attr!r})", call), call.lineno
        yield from self._walked(call)
        yield from self._other_repo(call, name)
        if name in ("operator.methodcaller", "operator.attrgetter") and call.args:
            leaf, built = self.text(call.args[0])
            last = None if leaf is None else leaf.rsplit(".", 1)[-1]
            if last in _DANGEROUS_LEAVES:
                yield _DANGEROUS_LEAVES[last], f"{name}({leaf!r})", call.lineno
                if built:
                    yield HIDDEN_NAME, _spelled(f"{name}({leaf!r})", call), call.lineno
            elif leaf is None and not isinstance(call.args[0], ast.Name | ast.Attribute):
                yield UNRESOLVED_NAME, f"{name}(<computed name>)", call.lineno
        if isinstance(call.func, ast.Call) and call.args \
                and self._name(call.func.func) == "operator.methodcaller" and call.func.args:
            yield from self._method_called(call)
        if isinstance(call.func, ast.Attribute) and call.func.attr in ("get", "__getitem__") \
                and call.args and not _own_module(call.args[0]):
            base = self.resolve(call.func.value)
            if _reflective_base(base) and self.text(call.args[0])[0] is None:
                yield UNRESOLVED_NAME, f"{base}.{call.func.attr}(<computed name>)", call.lineno
        for func, keyword, value in UNSAFE_KEYWORDS:
            if name == func and any(kw.arg == keyword and isinstance(kw.value, ast.Constant)
                                    and kw.value.value is value for kw in call.keywords):
                yield DESERIALIZE, f"{name}({keyword}={value})", call.lineno

    def _walked(self, call: ast.Call) -> Iterator[tuple[Rule, str, int]]:
        """An accumulate that passes through a dangerous name; a call of a getattr/getitem
        reduce or accumulate whose path the review cannot compute."""
        if self._name(call.func) == _ACCUMULATE:
            for target in self._walk(call) or ():
                rule = self.rule(_unprefixed(target))
                if rule is not None:
                    yield rule, _unprefixed(target) or "", call.lineno
                    yield HIDDEN_NAME, _spelled(_unprefixed(target) or "", call), call.lineno
                    break
        walk = self._called_walk(call.func)
        if walk is not None and self._walk(walk) is None:
            yield UNRESOLVED_NAME, _spelled("<computed attribute path>", walk), call.lineno

    def _called_walk(self, func: ast.AST) -> ast.Call | None:
        """The reduce/accumulate a call's target is: itself, a name bound once to it, or an
        item of it (`list(accumulate(...))[-1]`)."""
        if isinstance(func, ast.Name):
            func = self.folder.constants.get(func.id, func)
        if isinstance(func, ast.Subscript):
            func = func.value
            if isinstance(func, ast.Call) and self._name(func.func) in ("list", "tuple") \
                    and func.args:
                func = func.args[0]
        if isinstance(func, ast.Call) and self._walk_parts(func) is not None:
            return func
        return None

    def _other_repo(self, call: ast.Call, name: str) -> Iterator[tuple[Rule, str, int]]:
        """torch.hub.load('owner/repo', ...) and any call with trust_remote_code=True: the
        repository it names, or that the name is computed."""
        trusted = any(self._truthy(kw.value) for kw in call.keywords
                      if kw.arg == "trust_remote_code") or any(
            self._truthy(value) for kw in call.keywords if kw.arg is None
            for value in self._keyword_values(kw.value, "trust_remote_code"))
        if name == "dict" or (not trusted and self.rule(name) is not OTHER_REPO_CODE):
            return  # dict(trust_remote_code=True) is judged where it is passed
        index = 1 if name.endswith("pipeline") else 0  # pipeline(task, model)
        node = next((kw.value for kw in call.keywords if kw.arg in (
            "repo_or_dir", "pretrained_model_name_or_path", "model")), None) or (
            call.args[index] if len(call.args) > index else None)
        repo = None if node is None else self.text(node)[0]
        shown = name or ast.unparse(call.func)
        where = f"code of repository {repo!r}" if repo else "code of a computed repository"
        flag = ", trust_remote_code=True" if trusted else ""
        yield OTHER_REPO_CODE, f"{shown}(...{flag}) runs the {where}", call.lineno

    def _keyword_values(self, node: ast.AST, key: str) -> list[ast.AST]:
        """The values `**{...}` (or `**name` bound once to a dict) passes for keyword key."""
        if isinstance(node, ast.Name):
            node = self.folder.constants.get(node.id, node)
        if isinstance(node, ast.Call) and self._name(node.func) == "dict":
            return [kw.value for kw in node.keywords if kw.arg == key]
        if isinstance(node, ast.Dict):
            return [v for k, v in zip(node.keys, node.values, strict=True)
                    if k is not None and self.text(k)[0] == key]
        return []

    def _truthy(self, node: ast.AST) -> bool:
        """Could this keyword value be true? A constant says; a variable passed through (the
        caller's own flag) is not this file's choice; any other expression fails closed."""
        if isinstance(node, ast.Name):
            bound = self.folder.constants.get(node.id)
            if bound is None:
                return False
            node = bound
        if isinstance(node, ast.Constant):
            return bool(node.value)
        return not isinstance(node, ast.Attribute | ast.Name)

    def _method_called(self, call: ast.Call) -> Iterator[tuple[Rule, str, int]]:
        """`operator.methodcaller(n, ...)(obj)` calls obj.n."""
        assert isinstance(call.func, ast.Call)
        leaf, built = self.text(call.func.args[0])
        base, hidden = self._hidden_name(call.args[0])
        if base is None:
            return
        if leaf is None:
            if _reflective_base(base):
                yield UNRESOLVED_NAME, f"methodcaller(<computed name>)({base})", call.lineno
            return
        target = f"{base}.{leaf}"
        rule = self.rule(target)
        if rule is not None:
            yield rule, target, call.lineno
            if built or hidden:
                yield HIDDEN_NAME, _spelled(target, call), call.lineno

    def _path(self, node: ast.AST) -> str | None:
        """The literal path an expression names, through joins, `Path(...)` and home lookups."""
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._path(node.left)
        if isinstance(node, ast.JoinedStr) and node.values:
            return self._path(node.values[0])
        if not isinstance(node, ast.Call):
            return None
        name = self._name(node.func) or ""
        if name in HOME_CALLS:
            return "~"
        if name in PATH_WRAPPERS and node.args:
            return self._path(node.args[0])
        if isinstance(node.func, ast.Attribute) and node.func.attr in PATH_METHOD_WRAPPERS:
            return self._path(node.func.value)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "home":
            return "~"
        return None

    def _writes(self, call: ast.Call, name: str) -> bool:
        if name in ("open", "io.open", "codecs.open"):
            mode = _const_str_arg(call, 1)
            for kw in call.keywords:
                if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
                    mode = str(kw.value.value)
            return mode is not None and any(c in mode for c in "wax+")
        return any(fnmatch.fnmatchcase(name, p) for p in PATH_WRITERS)

    def urls(self) -> list[str]:
        docstrings = {
            id(node.body[0].value) for node in self.nodes
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body and isinstance(node.body[0], ast.Expr)
        }
        found: set[str] = set()
        for node in self.nodes:
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings):
                found.update(_URL.findall(node.value))
        return sorted(found)


def dangerous_name(name: str | None) -> Rule | None:
    """The rule a resolved dotted name raises when it is in DANGEROUS (Keras uses it too).

    An attribute of a dangerous callable (`os.system.__call__`) is as dangerous
    as the callable, so shorter prefixes are tried too, unless a HARMLESS
    entry (an exception class, a constant) matches first.
    """
    parts = (name or "").split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if not prefix or any(fnmatch.fnmatchcase(prefix, p) for p in HARMLESS):
            return None
        for pattern, rule in DANGEROUS:
            if fnmatch.fnmatchcase(prefix, pattern):
                return rule
    return None


def _unprefixed(name: str | None) -> str | None:
    """`builtins.exec` and `__builtins__.exec` are exec."""
    if name is None:
        return None
    for prefix in ("builtins.", "__builtins__.", "__builtin__."):
        name = name.removeprefix(prefix)
    return name


def _reflective_base(base: str | None) -> bool:
    """Could a computed name looked up on `base` be exec, system or the like?"""
    return base is not None and (base in _REFLECTIVE_BASES or (
        base.endswith(".__dict__") and base.removesuffix(".__dict__") in _REFLECTIVE_BASES))


def _spelled(name: str, node: ast.AST) -> str:
    """`exec <- getattr(builtins, codecs.decode('riny', 'rot13'))`: the name and its spelling."""
    spelling = ast.unparse(node)
    if len(spelling) > 80:
        spelling = spelling[:77] + "..."
    return f"{name} <- {spelling}"


def _bound_once(nodes: list[ast.AST]) -> dict[str, ast.AST]:
    """Names the file binds exactly once, by `name = value`: constants the folder may read."""
    counts: Counter[str] = Counter()
    values: dict[str, ast.AST] = {}
    for node in nodes:
        kind = type(node)  # exact types: this loop sees every node of the file
        if kind is ast.Name:
            if type(node.ctx) is not ast.Load:
                counts[node.id] += 1
        elif kind is ast.arg:
            counts[node.arg] += 1
        elif kind is ast.alias:
            counts[(node.asname or node.name).split(".")[0]] += 1
        elif kind in _DEFINITIONS and node.name:
            counts[node.name] += 1
        elif kind is ast.Global or kind is ast.Nonlocal:
            counts.update(dict.fromkeys(node.names, 2))  # bound elsewhere too
        elif kind is ast.Assign and len(node.targets) == 1 and type(node.targets[0]) is ast.Name:
            values[node.targets[0].id] = node.value
        elif kind is ast.AnnAssign and node.value is not None and type(node.target) is ast.Name:
            values[node.target.id] = node.value
    return {name: value for name, value in values.items() if counts[name] == 1}


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)


def _simple_assignments(nodes: list[ast.AST]) -> Iterator[tuple[str, ast.AST]]:
    """(name, value) of `name = a.b` and `(name := a.b)`: aliases made without an import
    (`m = importlib.import_module(n)` and `f = getattr(m, n)` too)."""
    for node in nodes:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.NamedExpr):
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(
                value, ast.Name | ast.Attribute | ast.Call | ast.Subscript):
            yield target.id, value


def _own_module(node: ast.AST) -> bool:
    """`sys.modules[__name__]`, `sys.modules.get(cls.__module__)`: the module that defines this
    file's code or a class it uses, not a name computed to reach exec or os."""
    return (isinstance(node, ast.Name) and node.id == "__name__") or (
        isinstance(node, ast.Attribute) and node.attr == "__module__")


def _reexported(name: str) -> Rule | None:
    """`os.path.os.system`: a dangerous name reached by walking through another module."""
    parts = name.split(".")
    for start in range(1, len(parts) - 1):
        rule = dangerous_name(".".join(parts[start:]))
        if rule is not None:
            return rule
    return None


def _const_str_arg(call: ast.AST, index: int) -> str | None:
    if not isinstance(call, ast.Call) or len(call.args) <= index:
        return None
    arg = call.args[index]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def path_outside(path: str) -> bool:
    """Absolute, home-relative or '..'-escaping: a path that leaves the folder it is used in."""
    p = path.replace("\\", "/")
    if p.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", p):
        return True
    return posixpath.normpath(p).split("/")[0] == ".."


# ---- auto_map / custom_pipelines: what trust_remote_code would import -------------------------


def auto_map_refs(auto_map: Any) -> Iterator[tuple[str, str]]:
    """(auto class, reference) pairs of an auto_map value (strings or lists of strings)."""
    if not isinstance(auto_map, dict):
        return
    for key, value in auto_map.items():
        for ref in value if isinstance(value, list) else [value]:
            if ref is not None:
                yield str(key), ref if isinstance(ref, str) else repr(ref)


def config_refs(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every `module.Class` a config makes transformers import: auto_map and custom pipelines."""
    yield from auto_map_refs(doc.get("auto_map"))
    pipelines = doc.get("custom_pipelines")
    if isinstance(pipelines, dict):
        for task, spec in pipelines.items():
            impl = spec.get("impl") if isinstance(spec, dict) else None
            if impl is not None:
                yield f"custom_pipelines.{task}", impl if isinstance(impl, str) else repr(impl)


def check_config(doc: dict[str, Any], ctx: ScanContext) -> None:
    """Findings for a JSON config's code references (called by the JSON module)."""
    refs = list(config_refs(doc))
    ctx.add(AUTO_MAP, ", ".join(f"{k}: {r}" for k, r in refs) or "empty")
    for key, ref in refs:
        match = _AUTO_MAP_REF.match(ref)
        if match is None:
            ctx.add(AUTO_MAP_INVALID, f"{key}: {ref!r}")
        elif match["repo"]:
            ctx.add(AUTO_MAP_OTHER_REPO, f"{key}: {ref} (repository {match['repo']})")
    if isinstance(doc.get("custom_pipelines"), dict):
        ctx.result.facts["custom_pipelines"] = doc["custom_pipelines"]


def check_auto_map_modules(files: dict[str, FileReport]) -> None:
    """Model-level pass: each module a config references must be a file of this model."""
    for path, report in list(files.items()):
        folder = posixpath.dirname(path)
        missing = []
        for key, ref in config_refs(report.facts):
            match = _AUTO_MAP_REF.match(ref)
            if match is None or match["repo"]:
                continue
            module = posixpath.join(folder, match["module"] + ".py")
            if module not in files:
                missing.append(AUTO_MAP_MISSING.finding(path, f"{key}: {ref} -> {module}"))
        if missing:
            files[path] = dataclasses.replace(report, findings=report.findings + tuple(missing))


SPEC = FormatSpec(
    id=FormatId.PYTHON, sniff=sniff, scan=scan, container=False, rules=RULES,
    facts=("remote_code", "calls", "imports", "urls"),
)
