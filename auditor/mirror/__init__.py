"""Scheduled scans of a model mirror: discover models, rescan only what changed, catch drift.

`discover` finds the models, `state` remembers what was seen (SQLite),
`executor` runs per-file scans (local threads or Dask workers), `scan` runs
one pass over the mirror — each model assembled, written as an SBOM and
judged through `auditor.pipeline`, and compared with what the state recorded
by `auditor.integrity.drift` — and `summary` renders its deltas.
"""
