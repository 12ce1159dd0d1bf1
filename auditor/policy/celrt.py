"""The CEL evaluator without the `cel` package's command line.

The `common-expression-language` package's `__init__` imports its own CLI
(typer, prompt_toolkit) before the native evaluator: ~190 ms of every
`auditor gate`, for code auditor never runs. The evaluator itself is one
native extension module (`cel/cel.*.so`), which is loaded here on its own,
by file, without running the package's `__init__`: ~10 ms. If that layout
ever changes, the package is imported the ordinary way.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType


@cache
def runtime() -> ModuleType:
    """The module with `compile`, `Context`, `Program` (the same objects `import cel` gives)."""
    spec = importlib.util.find_spec("cel")
    folder = Path(spec.origin).parent if spec is not None and spec.origin else None
    natives = sorted(folder.glob("cel.*.so")) + sorted(folder.glob("cel.*.pyd")) if folder else []
    if len(natives) == 1:
        native = importlib.util.spec_from_file_location("cel.cel", natives[0])
        if native is not None and native.loader is not None:
            module = importlib.util.module_from_spec(native)
            native.loader.exec_module(module)
            if all(hasattr(module, name) for name in ("compile", "Context")):
                return module
    import cel  # the layout changed: the slow, documented way

    return cel
