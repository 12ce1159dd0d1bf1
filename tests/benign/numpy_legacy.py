"""Legacy torch.save (`_use_new_zipfile_serialization=False`) and numpy's own object arrays.

Old checkpoints are still everywhere: the pre-1.6 torch format is a chain of
pickles and raw storages, and numpy writes object arrays as pickles inside
`.npy`/`.npz`. Each file here is written by torch or numpy itself.
"""

from __future__ import annotations

import collections
from pathlib import Path

from tests.benign import Writer


def _torch_legacy(folder: Path) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    old = {"_use_new_zipfile_serialization": False}
    torch.save(net.state_dict(), folder / "pytorch_model.bin", **old)
    torch.save({"epoch": 3, "model": net.state_dict(), "optimizer": opt.state_dict(),
                "best": 0.5, "history": collections.OrderedDict(loss=[1.0, 0.5])},
               folder / "checkpoint.pth.tar", **old)
    torch.save({"half": torch.arange(6, dtype=torch.float16).reshape(2, 3),
                "ints": torch.arange(4), "flags": torch.tensor([True, False])},
               folder / "tensors.pt", **old)


def _numpy(folder: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    ragged = np.empty(3, dtype=object)
    ragged[:] = [np.arange(2), np.arange(3), "label"]
    np.save(folder / "ragged.npy", ragged, allow_pickle=True)
    np.save(folder / "vocab.npy", np.array(["a", "bb", None, {"k": 1}], dtype=object))
    np.save(folder / "weights.npy", rng.random((3, 2)).astype(np.float32))
    np.savez(folder / "arrays.npz", w=rng.random(4), labels=np.array(["x", 1], dtype=object))
    np.savez_compressed(folder / "compressed.npz", a=np.arange(5),
                        meta=np.array([{"step": 1}], dtype=object))
    np.save(folder / "record.npy", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]))


WRITERS: tuple[Writer, ...] = (
    Writer("torch-legacy", "torch.save", _torch_legacy),
    Writer("numpy-object-arrays", "numpy.save", _numpy),
)
