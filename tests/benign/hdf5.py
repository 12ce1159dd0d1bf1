"""HDF5 as real code writes it: pandas HDFStore (fixed and table), h5py datasets, Keras-style files.

pandas keeps object (string) columns of fixed-format frames as pickled numpy
arrays in PyTables `ObjectAtom` rows, and table-format metadata as pickled
attributes: the scanner unpickles neither but must judge them as the benign
data they are. Keras is not installed here, so the Keras files are written
with h5py in the exact layout Keras' own savers use (legacy full-model `.h5`
with `model_config`, Keras 3 `model.weights.h5`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from tests.benign import Writer


def _pandas(folder: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    numbers = pd.DataFrame(rng.random((5, 3)), columns=["a", "b", "c"])
    words = pd.DataFrame({"token": ["the", "a", "model"], "count": [3, 2, 1],
                          "when": pd.date_range("2026-01-01", periods=3)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns that object columns are pickled
        with pd.HDFStore(folder / "store.h5", "w") as store:
            store.put("numbers", numbers)
            store.put("words", words)
            store.put("series", pd.Series(["x", "y"], index=["i", "j"]))
        words.to_hdf(folder / "table.h5", key="words", format="table", data_columns=["token"])
        numbers.to_hdf(folder / "compressed.h5", key="numbers", complevel=9, complib="zlib")


def _h5py(folder: Path) -> None:
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    with h5py.File(folder / "arrays.h5", "w") as f:
        f.create_dataset("weights", data=rng.random((4, 3)).astype("f4"))
        f.create_dataset("chunked", data=rng.random(64), chunks=(16,), compression="gzip")
        f.create_dataset("labels", data=np.array([b"cat", b"dog"]))
        f.create_dataset("names", data=["alpha", "beta"], dtype=h5py.string_dtype())
        f.create_dataset("bytes", data=rng.integers(0, 256, 32, dtype="u1"))
        f["alias"] = h5py.SoftLink("/weights")
        f.attrs["description"] = "tiny arrays."
        f.attrs["version"] = 3


def _dense_config() -> dict:
    dense = {"class_name": "Dense", "config": {"name": "dense", "units": 2,
                                               "activation": "relu", "use_bias": True}}
    return {"class_name": "Sequential",
            "config": {"name": "sequential", "layers": [
                {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4]}},
                dense]}}


def _keras_h5(folder: Path) -> None:
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    kernel, bias = rng.random((4, 2)).astype("f4"), np.zeros(2, "f4")
    with h5py.File(folder / "model.h5", "w") as f:  # keras.Model.save("model.h5") layout
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(_dense_config())
        f.attrs["training_config"] = json.dumps({"loss": "mse", "optimizer_config": {
            "class_name": "Adam", "config": {"learning_rate": 0.001}}})
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense"])
        weights.attrs["backend"] = "tensorflow"
        layer = weights.create_group("dense")
        layer.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
        layer.create_dataset("dense/kernel:0", data=kernel)
        layer.create_dataset("dense/bias:0", data=bias)
    with h5py.File(folder / "model.weights.h5", "w") as f:  # Keras 3 weights file layout
        layer = f.create_group("layers/dense/vars")
        layer.create_dataset("0", data=kernel)
        layer.create_dataset("1", data=bias)
        f.create_group("optimizer/vars").create_dataset("0", data=np.array(3, "i8"))


WRITERS: tuple[Writer, ...] = (
    Writer("pandas-hdfstore", "pandas.HDFStore", _pandas),
    Writer("h5py-datasets", "h5py", _h5py),
    Writer("keras-h5-layout", "h5py (Keras layouts)", _keras_h5),
)
