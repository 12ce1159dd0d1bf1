"""scikit-learn pipelines as people save them: joblib.dump and pickle.dump.

Covers `FunctionTransformer(numpy.log1p)` (a numpy ufunc inside the pickle),
`ColumnTransformer`, `StandardScaler`, `LogisticRegression`, tree ensembles,
and the XGBoost and LightGBM scikit-learn wrappers, trained on tiny seeded data.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from tests.benign import Writer


def _data() -> tuple[object, object]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((24, 3))
    return x, (x[:, 0] > 0.5).astype(int)


def _fitted() -> tuple[object, object]:
    """A log1p → scaler → logistic pipeline, and a column transformer → forest pipeline."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    x, y = _data()
    log_reg = Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler()),
                        ("clf", LogisticRegression())]).fit(x, y)
    columns = Pipeline([
        ("cols", ColumnTransformer([("num", StandardScaler(), [0, 1]),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), [2])])),
        ("clf", RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0)),
    ]).fit(np.round(x, 1), y)
    return log_reg, columns


def _joblib(folder: Path) -> None:
    import joblib

    log_reg, columns = _fitted()
    joblib.dump(log_reg, folder / "pipeline.joblib")
    joblib.dump(columns, folder / "columns.joblib", compress=3)


def _pickle(folder: Path) -> None:
    log_reg, columns = _fitted()
    with open(folder / "pipeline.pkl", "wb") as f:
        pickle.dump(log_reg, f, protocol=pickle.HIGHEST_PROTOCOL)
    with open(folder / "columns-p2.pkl", "wb") as f:
        pickle.dump(columns, f, protocol=2)


def _xgboost(folder: Path) -> None:
    import joblib
    import xgboost

    x, y = _data()
    model = xgboost.XGBClassifier(n_estimators=2, max_depth=2, random_state=0).fit(x, y)
    joblib.dump(model, folder / "xgb.joblib")
    with open(folder / "xgb.pkl", "wb") as f:
        pickle.dump(model, f)


def _lightgbm(folder: Path) -> None:
    import joblib
    import lightgbm

    x, y = _data()
    model = lightgbm.LGBMClassifier(n_estimators=2, num_leaves=3, min_child_samples=2,
                                    random_state=0, verbose=-1).fit(x, y)
    joblib.dump(model, folder / "lgbm.joblib")
    with open(folder / "lgbm.pkl", "wb") as f:
        pickle.dump(model, f)


WRITERS: tuple[Writer, ...] = (
    Writer("sklearn-joblib", "joblib.dump", _joblib),
    Writer("sklearn-pickle", "sklearn.pickle", _pickle),
    Writer("xgboost-sklearn", "xgboost.XGBClassifier", _xgboost),
    Writer("lightgbm-sklearn", "lightgbm.LGBMClassifier", _lightgbm),
)
