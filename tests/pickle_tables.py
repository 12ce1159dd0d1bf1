"""Regenerate auditor/formats/pickle/introspected.py by introspecting the installed libraries.

Run at development time only (`python -m tests.pickle_tables`): the scanner
never imports a library to judge a pickle, so what only introspection can
tell is recorded here once and checked in as data:

- the numpy ufuncs (pure array math) a pickle may name as values;
- re-exports: for every module of an allowlisted library, the names that are
  really objects defined in a sensitive module (`os.system` reached as
  `some_lib.util.system`), and renamed aliases of modules holding dangerous
  names (`sklearn.base.np` is numpy, so `sklearn.base.np.load` is numpy.load),
  so trust follows the defining module, not the path.
"""

from __future__ import annotations

import importlib
import inspect
import pprint
import sys
import warnings
from pathlib import Path

from auditor.formats.pickle import imports

OUT = Path(__file__).resolve().parents[1] / "auditor" / "formats" / "pickle" / "introspected.py"
# The libraries the import tiers trust (wholly or in part), and modules the tiers name.
LIBRARIES = (
    "torch", "torch.nn", "torch.optim", "torch.serialization", "torch._utils", "torch._tensor",
    "torch.storage", "numpy", "numpy.random", "numpy.ma", "scipy.sparse", "sklearn",
    "sklearn.pipeline", "sklearn.compose", "sklearn.preprocessing", "sklearn.linear_model",
    "sklearn.ensemble", "sklearn.tree", "sklearn.neighbors", "sklearn.utils", "xgboost",
    "lightgbm", "omegaconf", "transformers.training_args", "transformers.trainer_utils",
    "transformers.trainer_pt_utils", "transformers.debug_utils", "accelerate.state",
    "accelerate.utils.dataclasses", "joblib", "joblib.numpy_pickle", "argparse", "pathlib",
    "collections", "datetime", "typing", "pandas",
)
PREFIXES = ("torch", "numpy", "scipy.sparse", "sklearn", "xgboost", "lightgbm", "omegaconf",
            "transformers", "accelerate", "joblib", "argparse", "pathlib", "collections",
            "datetime", "typing", "pandas")


def _defining_path(obj: object) -> str | None:
    if inspect.ismodule(obj):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if isinstance(module, str) and isinstance(name, str):
        return f"{module}.{name}"
    return None


def _source_path(obj: object) -> str | None:
    """Where a Python class's or function's code really lives.

    pandas rewrites `__module__` of its public API to "pandas" (`pandas.HDFStore`
    is pandas.io.pytables.HDFStore), so `__module__` alone would hide its real home.
    """
    codes = [obj] if inspect.isfunction(obj) else [
        f for f in vars(obj).values() if inspect.isfunction(f)] if inspect.isclass(obj) else []
    files = {f.__code__.co_filename for f in codes}
    if len(files) != 1:
        return None
    (file,) = files
    module = next((n for n, m in list(sys.modules.items())
                   if getattr(m, "__file__", None) == file), None)
    return module and f"{module}.{obj.__qualname__}"  # type: ignore[attr-defined]


def _sensitive(path: str, table: dict[str, str]) -> bool:
    """Whether the scanner grades `path` dangerous when a pickle names it."""
    return bool(imports._dangerous(path.split("."), 1, table))


def _defined_in_sensitive_module(path: str, table: dict[str, str]) -> bool:
    """Whether the object's real home is a dangerous module or name (read from its start)."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in table:
            return True
    return parts[0].startswith("_") and parts[0].lstrip("_") in table


def _holds_sensitive(module: str, table: dict[str, str]) -> bool:
    """Whether a module is sensitive or holds names the tiers grade dangerous."""
    return _defined_in_sensitive_module(module, table) or any(
        key.startswith(module + ".") for key in table)


def reexports() -> dict[str, str]:
    """Re-exported sensitive objects, and renamed module aliases (`np`, `_builtins`) of
    modules that hold dangerous names, by the path a pickle would spell."""
    table = imports.build_tiers().dangerous
    found: dict[str, str] = {}
    for name, module in sorted(sys.modules.items()):
        if module is None or not name.startswith(PREFIXES) or _sensitive(name, table):
            continue
        if not any(name == p or name.startswith(p + ".") for p in PREFIXES):
            continue
        for attr, obj in sorted(vars(module).items()):
            path = f"{name}.{attr}"
            try:
                defined = _defining_path(obj)
            except Exception:  # lazy proxies (torch.cuda without CUDA) refuse to be inspected
                continue
            if defined is None or _sensitive(path, table):
                continue
            if not _defined_in_sensitive_module(defined, table):
                defined = _source_path(obj) or defined
            renamed = inspect.ismodule(obj) and attr != defined.rsplit(".", 1)[-1]
            if _defined_in_sensitive_module(defined, table) \
                    or (renamed and _holds_sensitive(defined, table)):
                found[path] = defined
    return found


def ufuncs() -> tuple[str, ...]:
    import numpy as np

    return tuple(sorted(n for n, f in vars(np).items()
                        if isinstance(f, np.ufunc) and f.__name__ == n))  # no aliases


def main() -> None:
    warnings.simplefilter("ignore")
    for lib in LIBRARIES:
        importlib.import_module(lib)
    text = (
        "# ruff: noqa: E501\n"
        '"""Generated by tests/pickle_tables.py from the installed libraries; do not edit.\n\n'
        "NUMPY_UFUNCS: numpy's ufuncs (pure array math). REEXPORTS: a path inside an\n"
        "allowlisted library -> the sensitive object it really is (its defining module).\n"
        '"""\n\n'
        f"NUMPY_UFUNCS: tuple[str, ...] = {pprint.pformat(ufuncs(), width=96, compact=True)}\n\n"
        f"REEXPORTS: dict[str, str] = {pprint.pformat(reexports(), width=96)}\n"
    )
    OUT.write_text(text)


if __name__ == "__main__":
    main()
