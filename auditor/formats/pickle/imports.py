"""Pickle import tiers as data: what a `find_class` target is allowed to be.

A pickle can only run code through the callables it imports, so every
import is graded from these tables, never from branches in the parser:

- `safe`: what real checkpoints need and a loader's safe mode accepts → clean;
- `rebuilt`: classes an ML framework pickles through the standard reduce
  protocol without running any of their own code (`REBUILT`, each group
  saying what the loader does with it and why that is no code execution) →
  clean while used exactly that way, medium (as `known-ml`) otherwise;
- `known-ml`: classes of common ML libraries seen in legitimate pickles → medium;
- `dangerous`: a curated list that grades severity → critical;
- anything else is `unknown` → high: unknown means unaudited.

Entries are full dotted paths (`module.qualname`). A path ending in `.*`
covers a package and its submodules, but for `safe`/`known-ml` only a plain
class-like name directly in it (one component, CapWords — after any leading
underscore — for `known-ml`), so
a wildcard never admits an attribute walk (`sklearn.base.np.load`). A
dangerous entry covers its submodules and attributes, its private twin
(`_operator` for `operator`), and every attribute walk that passes through it
(`pathlib` + `os.system`).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

from auditor.formats.pickle.introspected import NUMPY_UFUNCS, REEXPORTS
from auditor.model import FormatId, Severity


class Tier(enum.Enum):
    SAFE = "safe"
    REBUILT = "rebuilt"
    KNOWN_ML = "known-ml"
    UNKNOWN = "unknown"
    DANGEROUS = "dangerous"

    @property
    def severity(self) -> Severity | None:
        return _TIER_SEVERITY[self]


_TIER_SEVERITY = {
    Tier.SAFE: None,
    Tier.REBUILT: None,
    Tier.KNOWN_ML: Severity.MEDIUM,
    Tier.UNKNOWN: Severity.HIGH,
    Tier.DANGEROUS: Severity.CRITICAL,
}

_TORCH_STORAGES = (
    "Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool",
    "ComplexFloat", "ComplexDouble", "QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4",
    "Untyped",
)
_TORCH_DTYPES = (
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "complex32",
    "complex64", "complex128", "cfloat", "cdouble", "uint8", "uint16", "uint32", "uint64",
    "int8", "int16", "short", "int32", "int", "int64", "long", "bool", "qint8", "quint8",
    "qint32", "quint4x2", "quint2x4", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "bits16",
    "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "_mkldnn",
    "contiguous_format", "channels_last", "channels_last_3d", "preserve_format",
    "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
    "per_channel_symmetric", "per_channel_affine_float_qparams",
)
_NUMPY_CORE = ("numpy.core", "numpy._core")

# What real checkpoints need; a weights-only loader accepts the same kind of thing.
SAFE: tuple[str, ...] = (
    *(f"torch._utils.{n}" for n in (
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
        "_rebuild_parameter_with_state", "_rebuild_sparse_tensor", "_rebuild_nested_tensor",
        "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass", "_rebuild_qtensor",
        "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
    )),
    "torch._tensor._rebuild_from_type_v2", "torch._utils._rebuild_from_type_v2",
    "torch.serialization._get_layout",  # maps a layout's name to the layout object only
    *(f"torch.{n}Storage" for n in _TORCH_STORAGES),
    # the tensor type classes legacy tar checkpoints (torch < 0.4) name in their tensor records
    *(f"torch.{n}Tensor" for n in _TORCH_STORAGES if n != "Untyped"),
    "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.Size", "torch.device",
    "torch.nn.parameter.Parameter", "torch.Tensor",
    *(f"torch.{n}" for n in _TORCH_DTYPES),
    "collections.OrderedDict", "collections.Counter", "collections.deque",
    "collections.defaultdict",
    *(f"builtins.{n}" for n in (
        "set", "frozenset", "list", "dict", "tuple", "bytearray", "bytes", "complex", "int",
        "float", "str", "bool", "slice", "range", "object",
    )),
    "_codecs.encode",  # protocol-2 pickles spell bytes as _codecs.encode(str, "latin1")
    *(f"{core}.multiarray.{n}" for core in _NUMPY_CORE for n in ("_reconstruct", "scalar")),
    *(f"{core}.numeric._frombuffer" for core in _NUMPY_CORE),
    "numpy.ndarray", "numpy.dtype", "numpy.dtypes.*",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
    "datetime.timezone",
)

# Safe only where the TorchScript loader, not Python's import system, resolves them.
TORCHSCRIPT_SAFE: tuple[str, ...] = (
    "__torch__.*",
    *(f"torch.jit._pickle.{n}" for n in (
        "build_intlist", "build_doublelist", "build_boollist", "build_tensorlist",
        "build_tensor_from_id", "restore_type_tag", "build_complexlist",
    )),
)

# Seen in legitimate pickles of ML libraries; not proven harmless, so medium.
KNOWN_ML: tuple[str, ...] = (
    "sklearn.*", "xgboost.*", "lightgbm.*", "catboost.*", "scipy.sparse.*",
    "torch.nn.modules.*", "omegaconf.*",
    "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor", "numpy.random.mtrand.RandomState",
    "numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64",
    "numpy.random._philox.Philox", "numpy.random._sfc64.SFC64", "numpy.ma.core._mareconstruct",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence", "numpy.ma.MaskedArray",
    "numpy.ma.core.MaskedArray",
    *(f"numpy.{n}" for n in (
        "float16", "float32", "float64", "longdouble", "complex64", "complex128", "int8",
        "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool_", "str_",
        "bytes_", "datetime64", "timedelta64", "void", "generic", "number",
    )),
    # enums of older transformers releases (training_args.bin files written by them)
    "transformers.trainer_utils.EvaluationStrategy", "transformers.trainer_utils.ShardedDDPOption",
    # scikit-learn's Cython helpers that rebuild its tree and metric objects
    *(f"sklearn.{m}.newObj" for m in ("neighbors._kd_tree", "neighbors._ball_tree",
                                      "metrics._dist_metrics")),
    # pandas (DataFrame.to_pickle, Series.to_pickle, and frames inside joblib/sklearn pickles):
    # its frames, indexes, arrays, dtypes, offsets and the NA/NaT markers. None is rebuilt
    # purely by the standard protocol: DataFrame, the block managers and the dtypes run their
    # own __setstate__, StringDtype/offsets run __init__ with the pickled arguments, so they
    # are library code run on load, like scikit-learn's. pandas.io (file readers/writers,
    # HDFStore, read_pickle) and pandas.core.computation (eval/query) are dangerous, and the
    # wildcard admits no function, so the reduce functions pandas pickles call are named:
    "pandas.*",
    # rebuild an Index subclass from its pickled dict (cls must itself be an admitted class)
    *(f"pandas.core.indexes.{m}._new_{c}Index" for m, c in (
        ("base", ""), ("datetimes", "Datetime"), ("timedeltas", "Timedelta"),
        ("interval", "Interval"), ("period", "Period"))),
    # wrap pickled ndarrays in a block / an ndarray-backed extension array (Categorical,
    # DatetimeArray, StringArray) and set its dtype; no other effect
    "pandas._libs.internals._unpickle_block", "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
    "pandas._libs.interval.__pyx_unpickle_IntervalMixin",
    # build a Timestamp / Timedelta / NaT from its integer value and unit
    "pandas._libs.tslibs.timestamps._unpickle_timestamp",
    "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
    "pandas._libs.tslibs.nattype._nat_unpickle",
)

class Protocol(enum.Enum):
    """How a `rebuilt` import may be used for the loader to run none of its code."""

    REFERENCE = "reference"  # imported as a value (a type, a ufunc), never called
    STATE = "state"  # NEWOBJ with no arguments (object.__new__), BUILD with a plain dict
    CONSTANTS = "constants"  # REDUCE/NEWOBJ with constant arguments only (str, int, ...)
    RECONSTRUCTOR = "reconstructor"  # copyreg._reconstructor(cls, object, None): NEWOBJ's twin


@dataclass(frozen=True)
class Rebuilt:
    """A group of `rebuilt` entries: the protocol they are held to and why it runs no code."""

    protocol: Protocol
    why: str
    paths: tuple[str, ...]


# Verified by tests/test_pickle_imports.py against the installed classes (object.__new__, no
# __setstate__, no custom __reduce__); used any other way they count as known-ml.
REBUILT: tuple[Rebuilt, ...] = (
    Rebuilt(Protocol.STATE,
            "dataclass-like object: NEWOBJ calls object.__new__ (no __init__), BUILD without a "
            "__setstate__ only fills __dict__, so none of the class's code runs", (
                "transformers.training_args.TrainingArguments",
                "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
                "transformers.trainer_pt_utils.AcceleratorConfig",
                "accelerate.state.PartialState", "accelerate.state.AcceleratorState",
                "accelerate.utils.dataclasses.DataLoaderConfiguration",
                "accelerate.utils.dataclasses.GradientAccumulationPlugin",
                "argparse.Namespace", "omegaconf.base.Metadata",
                "omegaconf.base.ContainerMetadata",
            )),
    Rebuilt(Protocol.CONSTANTS,
            "Enum member lookup: REDUCE calls the enum class with one constant value, which "
            "returns an existing member (a str/int comparison), nothing else", (
                *(f"transformers.training_args.{n}" for n in ("OptimizerNames",)),
                *(f"transformers.trainer_utils.{n}" for n in (
                    "IntervalStrategy", "SchedulerType", "HubStrategy", "SaveStrategy",
                    "FSDPOption")),
                "transformers.debug_utils.DebugOption",
                "accelerate.utils.dataclasses.DistributedType",
                "accelerate.utils.dataclasses.PrecisionType",
                "accelerate.utils.dataclasses.DynamoBackend",
            )),
    Rebuilt(Protocol.CONSTANTS,
            "pathlib path: the constructor only joins and parses its string parts; no file "
            "system access (Lightning keeps hyper-parameter paths this way)", (
                "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath",
                "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
            )),
    Rebuilt(Protocol.REFERENCE,
            "numpy ufunc stored as a value (scikit-learn's FunctionTransformer(numpy.log1p)): "
            "importing it runs no code of the pickle's choosing, and a ufunc only computes "
            "on arrays", tuple(f"numpy.{n}" for n in NUMPY_UFUNCS)),
    Rebuilt(Protocol.RECONSTRUCTOR,
            "protocols 0 and 1 spell NEWOBJ as copyreg._reconstructor(cls, object, None), which "
            "is object.__new__(cls); the class is then held to its own entry (any other base "
            "would run base.__init__)", ("copyreg._reconstructor",)),
    Rebuilt(Protocol.REFERENCE,
            "type annotation object (OmegaConf stores typing.Any as a node's type): a marker, "
            "never called", ("typing.Any",)),
)

# Curated, to grade severity: each category says what the import would let a pickle do.
DANGEROUS: dict[str, tuple[str, ...]] = {
    "runs programs or shell commands": (
        "os", "posix", "nt", "subprocess", "_posixsubprocess", "_winapi", "pty", "platform",
        "asyncio", "multiprocessing", "concurrent", "uuid._get_command_stdout", "_osx_support",
        "_aix_support", "_pyrepl", "torch.utils.collect_env", "torch.utils.bottleneck",
        "mlflow.projects", "imaplib.IMAP4_stream", "cgi", "cgitb",
    ),
    "executes or compiles Python code": (
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.breakpoint",
        "builtins.input", "runpy", "code", "codeop", "pdb", "bdb", "doctest", "timeit",
        "cProfile", "profile", "trace", "marshal", "types", "site", "atexit", "idlelib",
        "lib2to3", "_interpreters", "_xxsubinterpreters", "test", "numpy.f2py",
        "numpy.distutils", "numpy.testing", "torch.utils.cpp_extension", "torch.hub",
        "torch.package", "ctypes", "numpy.ctypeslib", "_thread", "threading", "gc",
        # pandas.eval / DataFrame.query evaluate expression strings; Scope reads callers' frames
        "pandas.core.computation", "pandas.eval",
    ),
    "imports modules or reaches arbitrary attributes": (
        "builtins.__import__", "builtins.getattr", "builtins.setattr", "builtins.delattr",
        "builtins.globals", "builtins.locals", "builtins.vars", "builtins.dir", "importlib",
        "pkgutil", "pydoc", "inspect", "zipimport", "imp", "sys", "operator", "copyreg",
        "copy_reg", "functools.partial", "functools.partialmethod", "functools.reduce",
    ),
    "installs packages": ("pip", "ensurepip", "setuptools", "distutils", "venv"),
    "loads another pickle or serialized object (nested loader)": (
        "pickle.load", "pickle.loads", "pickle._load", "pickle._loads", "pickle.Unpickler",
        "pickle._Unpickler", "_pickle.load", "_pickle.loads", "_pickle.Unpickler", "dill",
        "cloudpickle", "shelve", "jsonpickle", "joblib.load", "joblib.numpy_pickle.load",
        "torch.load", "torch.serialization.load", "torch.serialization._load",
        "torch.serialization._legacy_load", "torch.storage._load_from_bytes", "torch.jit.load",
        "numpy.load", "numpy.lib.npyio.load", "numpy.lib._npyio_impl.load",
        "numpy.lib.format.read_array", "pandas.read_pickle", "pandas.io", "yaml.load",
        "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load",
        "keras.models.load_model", "keras.saving",
    ),
    "reads or writes files": (
        "builtins.open", "io", "codecs.open", "codecs.EncodedFile", "shutil", "fileinput",
        "linecache", "difflib", "logging.config", "logging.handlers", "logging.FileHandler",
        "logging.basicConfig", "sqlite3", "dbm", "tempfile", "numpy.fromfile", "numpy.tofile",
        "numpy.loadtxt", "numpy.genfromtxt", "pandas.read_csv", "glob", "zipfile.ZipFile",
        "tarfile",
    ),
    "opens network connections": (
        "socket", "socketserver", "ssl", "http", "urllib", "urllib3", "requests", "httpx",
        "aiohttp", "smtplib", "ftplib", "poplib", "imaplib", "nntplib", "telnetlib", "xmlrpc",
        "webbrowser", "wsgiref",
    ),
    "controls the loading process": ("signal", "builtins.exit", "builtins.quit", "resource"),
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Verdict:
    """The tier of one import and, when it is not plain, why."""

    tier: Tier
    path: str
    reason: str = ""
    odd_name: bool = False  # whitespace, NULs, look-alikes, empty or local components
    protocol: Protocol | None = None  # how a `rebuilt` import may be used
    reexport: str = ""  # the sensitive object's defining path, reached through a re-export


@dataclass(frozen=True)
class Tiers:
    """The tables compiled for lookups, with the user's config entries added."""

    safe: frozenset[str]
    safe_packages: tuple[str, ...]
    known_ml: frozenset[str]
    known_ml_packages: tuple[str, ...]
    torchscript: frozenset[str]
    torchscript_packages: tuple[str, ...]
    user_exact: dict[str, Tier] = field(default_factory=dict)
    dangerous: dict[str, str] = field(default_factory=dict)
    rebuilt: dict[str, Protocol] = field(default_factory=dict)


def build_tiers(extra_safe: tuple[str, ...] = (), extra_known_ml: tuple[str, ...] = ()) -> Tiers:
    """Compile the tables once per scan; the user's entries extend `safe` and `known-ml`."""
    safe, safe_pkgs = _split((*SAFE, *extra_safe))
    ml, ml_pkgs = _split((*KNOWN_ML, *extra_known_ml))
    ts, ts_pkgs = _split(TORCHSCRIPT_SAFE)
    user = {p: Tier.KNOWN_ML for p in extra_known_ml if not p.endswith(".*")}
    user.update({p: Tier.SAFE for p in extra_safe if not p.endswith(".*")})
    dangerous = {p: why for why, paths in DANGEROUS.items() for p in paths}
    rebuilt = {p: group.protocol for group in REBUILT for p in group.paths}
    return Tiers(safe, safe_pkgs, ml, ml_pkgs, ts, ts_pkgs, user, dangerous, rebuilt)


def _split(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    exact = frozenset(e for e in entries if not e.endswith(".*"))
    packages = tuple(sorted({e[:-2] for e in entries if e.endswith(".*")}))
    return exact, packages


def normalise(module: str, name: str) -> tuple[str, str]:
    """Apply the Python 2 name mapping the unpickler applies (`__builtin__` → `builtins`)."""
    import _compat_pickle  # stdlib data tables only

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def classify(module: str, name: str, tiers: Tiers, container: str | None = None) -> Verdict:
    """Grade the object `find_class(module, name)` would return.

    A path that re-exports a sensitive object (`REEXPORTS`, found by
    introspecting the allowlisted libraries) is graded as the object it is,
    never with its module's trust. Exact curated or user entries win next
    (they name one object precisely); then anything that reaches a dangerous
    module, function or a reflective dunder attribute is dangerous; then the
    package wildcards; the rest is unknown. Odd names are judged on their
    normalised form and marked.
    """
    clean_module, clean_name = _clean(module), _clean(name)
    odd = (clean_module, clean_name) != (module, name) or not _well_formed(module, name)
    module, name = normalise(clean_module, clean_name)
    path = f"{module}.{name}"
    parts = path.split(".")
    walk_start = len(module.split("."))
    defined = _reexported(parts)
    why = _dangerous(defined.split("."), 1, tiers.dangerous) if defined else ""
    if why:
        return Verdict(Tier.DANGEROUS, path, f"re-export of {defined}: {why}", odd,
                       reexport=defined)
    if path in tiers.user_exact:
        return Verdict(tiers.user_exact[path], path, "listed in the configuration", odd)
    if container == FormatId.TORCHSCRIPT and (
        path in tiers.torchscript or _in_package(path, name, tiers.torchscript_packages, False)
    ):
        return Verdict(Tier.SAFE, path, "", odd)
    if path in tiers.safe:
        return Verdict(Tier.SAFE, path, "", odd)
    if path in tiers.rebuilt:
        return Verdict(Tier.REBUILT, path, "", odd, tiers.rebuilt[path])
    if path in tiers.known_ml:
        return Verdict(Tier.KNOWN_ML, path, "", odd)
    reason = _dangerous(parts, walk_start, tiers.dangerous)
    if reason:
        return Verdict(Tier.DANGEROUS, path, reason, odd)
    if _in_package(path, name, tiers.safe_packages, False):
        return Verdict(Tier.SAFE, path, "", odd)
    if _in_package(path, name, tiers.known_ml_packages, True):
        return Verdict(Tier.KNOWN_ML, path, "", odd)
    return Verdict(Tier.UNKNOWN, path, "", odd)


def classify_module(path: str, tiers: Tiers) -> Verdict:
    """Grade a module a pickle imports by name (`importlib.import_module('os')`)."""
    reason = _dangerous(path.split("."), 1, tiers.dangerous)
    return Verdict(Tier.DANGEROUS if reason else Tier.UNKNOWN, path, reason,
                   not all(_IDENT.match(p) for p in path.split(".")))


def _dangerous(parts: list[str], walk_start: int, table: dict[str, str]) -> str:
    """Why `parts` reaches something dangerous, or "".

    Checked from the module's start and from every component of the
    attribute walk, so a harmless module re-exporting `os` does not hide it.
    """
    for start in (0, *range(walk_start, len(parts))):
        tail = parts[start:]
        for end in range(len(tail), 0, -1):
            why = table.get(".".join(tail[:end]))
            if why is None and end == 1 and tail[0].startswith("_"):
                why = table.get(tail[0].lstrip("_"))
            if why is not None:
                return why
    for part in parts[1:]:
        if len(part) > 4 and part.startswith("__") and part.endswith("__"):
            return f"reflective attribute {part!r} reaches interpreter internals"
    return ""


def _reexported(parts: list[str]) -> str | None:
    """The defining path of the object `parts` reaches through a re-export, walks included."""
    for end in range(len(parts), 1, -1):
        defined = REEXPORTS.get(".".join(parts[:end]))
        if defined is not None:
            return ".".join((defined, *parts[end:]))
    return None


def _in_package(path: str, name: str, packages: tuple[str, ...], class_only: bool) -> bool:
    """A plain (undotted) name directly inside a listed package or its submodules."""
    if "." in name or not _IDENT.match(name):
        return False
    if class_only and not name.lstrip("_")[:1].isupper():
        return False
    return any(path.startswith(pkg + ".") for pkg in packages)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().replace("\x00", "")


def _well_formed(module: str, name: str) -> bool:
    parts = [*module.split("."), *name.split(".")]
    return all(_IDENT.match(p) for p in parts)


@cache
def tiers_for(extra_safe: tuple[str, ...] = (), extra_known_ml: tuple[str, ...] = ()) -> Tiers:
    """The compiled tables for one configuration (built once per distinct configuration)."""
    return build_tiers(extra_safe, extra_known_ml)
