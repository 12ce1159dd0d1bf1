"""auditor: may these weights run here?

Static audit of model artifacts: weight-format safety, hashes, signatures,
provenance, CycloneDX ML-BOMs and policy gates. Nothing scanned is ever
executed, unpickled, imported, rendered or loaded.

The Python API is two functions, `auditor.scan(target, …)` and
`auditor.gate(target, policies, …)` (see docs/api.md). They are loaded on
first use, so `import auditor.model` or `auditor --version` does not import
the scanner.
"""

from __future__ import annotations

from typing import Any

from auditor.version import __version__

__all__ = ["__version__", "gate", "scan"]

_API = frozenset({"scan", "gate"})  # the public functions, defined in auditor.pipeline


def __getattr__(name: str) -> Any:
    """PEP 562: `auditor.scan` and `auditor.gate` import the pipeline only when first used."""
    if name in _API:
        from auditor import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'auditor' has no attribute {name!r}")
