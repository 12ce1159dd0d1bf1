"""pandas objects as people save them: DataFrame.to_pickle and Series.to_pickle.

A frame of numeric, categorical, string-dtype, nullable-integer, datetime and
timedelta columns on a named index, a multi-indexed frame, a datetime-indexed
series and a categorical series: every reduce function pandas pickles name.
"""

from __future__ import annotations

from pathlib import Path

from tests.benign import Writer


def _write(folder: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "x": rng.random(4), "n": [1, 2, 3, 4],
        "cat": pd.Categorical(["a", "b", "a", "c"], ordered=True),
        "s": pd.array(["p", "q", None, "r"], dtype="string"),
        "i": pd.array([1, None, 3, 4], dtype="Int64"),
        "t": pd.date_range("2024-01-01", periods=4, freq="D"),
        "d": pd.to_timedelta([1, 2, 3, 4], unit="s"),
    }, index=pd.Index([10, 20, 30, 40], name="id"))
    frame.to_pickle(folder / "frame.pkl")
    frame.set_index(["n", "cat"]).to_pickle(folder / "multi_index.pkl")
    pd.Series(rng.random(3), name="y", index=pd.date_range("2024", periods=3)).to_pickle(
        folder / "series.pkl")
    pd.Series(pd.Categorical(["x", "y", "x"])).to_pickle(folder / "categorical.pkl")


WRITERS: tuple[Writer, ...] = (Writer("pandas-to-pickle", "pandas.DataFrame.to_pickle", _write),)
