"""Every writer of the benign corpus, one line per module."""

from __future__ import annotations

from tests.benign import Writer, hdf5, lightning, numpy_legacy, sklearn, trainer

WRITERS: tuple[Writer, ...] = (
    *trainer.WRITERS, *lightning.WRITERS, *sklearn.WRITERS, *numpy_legacy.WRITERS,
    *hdf5.WRITERS,
)
