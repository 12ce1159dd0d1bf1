"""Lineage measured from the bytes: tokenizer, architecture and weight fingerprints.

A sibling of `sources` and `scanning`: it reads only the facts the format
modules put on each scanned file (and the reference data it is given), never
a file itself, so every source — a folder, a cache, `hf://` read in place —
is measured the same way.
"""
