"""Checkpoints written by the libraries that write them in real life, at tiny sizes.

A security team stops trusting a scanner after the first false alarm on a
file its own trainer wrote, so this corpus is made by the real writers
(transformers, accelerate, PEFT, Lightning, scikit-learn, joblib, numpy,
torch, onnx …, all in the test extra), never by hand. Each module here
declares `WRITERS`; `tests/benign/corpus.py` gathers them and
`tests/test_benign_corpus.py` scans every folder they write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Writer:
    """One model folder of the corpus: `make(folder)` writes it with `library`'s own code."""

    name: str  # the folder's name in the corpus, unique
    library: str  # the real writer, e.g. "transformers.Trainer" or "numpy.save"
    make: Callable[[Path], None]
