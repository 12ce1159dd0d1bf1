"""Every writer of the benign corpus, one line per module."""

from __future__ import annotations

from tests.benign import (
    Writer,
    configs,
    hdf5,
    lightning,
    numpy_legacy,
    pandas_pickle,
    parts,
    peft,
    sklearn,
    torch_export,
    torchscript,
    trainer,
)

WRITERS: tuple[Writer, ...] = (
    *trainer.WRITERS, *lightning.WRITERS, *sklearn.WRITERS, *numpy_legacy.WRITERS,
    *pandas_pickle.WRITERS,
    *hdf5.WRITERS,
    *configs.WRITERS,
    *torchscript.WRITERS, *torch_export.WRITERS, *peft.WRITERS, *parts.WRITERS,
)
