"""Scheduled scans of a model mirror: discover models, rescan only what changed, catch drift.

`discover` finds the models, `state` remembers what was seen (SQLite),
`executor` runs per-file scans (local threads or Dask workers), `drift`
compares a model with what the state recorded, `scan` runs one pass over
the mirror and `summary` renders its deltas.
"""
