"""Fuzz the XGBoost booster reader: ``read_booster``, then XGBoost's own loader on what
it accepts (``booster_from_bytes``), as a learner receiving a proposal does.

    python -m fuzz.booster -runs=5000

Every input must end in a :class:`WeightsError` or in a booster that predicts finite
numbers for a row of the expected width.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["colearning"]):
    import numpy as np
    import xgboost as xgb

    from colearning.core.exceptions import WeightsError
    from colearning.learners._formats import read_booster
    from colearning.learners.xgboost import booster_from_bytes

from fuzz._common import main

N_FEATURES = 6
ROW = xgb.DMatrix(np.linspace(-1, 1, N_FEATURES).reshape(1, -1))


def seeds() -> list[bytes]:
    """Small binary:logistic boosters (1 to 4 trees, depth 1 to 3), as save_raw writes."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, N_FEATURES))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    out = []
    for trees, depth in ((1, 1), (2, 2), (4, 3)):
        params = {"objective": "binary:logistic", "max_depth": depth, "nthread": 1, "seed": 0}
        booster = xgb.train(params, xgb.DMatrix(x, label=y), trees)
        out.append(bytes(booster.save_raw("ubj")))
    return out


def test_one(data: bytes) -> None:
    try:
        read_booster(data, objective="binary:logistic", n_features=N_FEATURES)
    except WeightsError:
        return
    try:
        booster = booster_from_bytes(data, objective="binary:logistic", n_features=N_FEATURES)
    except WeightsError:
        return
    p = booster.predict(ROW)
    if p.shape != (1,) or not np.isfinite(p).all():
        raise AssertionError(f"a checked booster predicts {p!r}")


if __name__ == "__main__":
    main(test_one, seeds, sys.argv)
