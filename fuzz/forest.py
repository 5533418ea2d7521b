"""Fuzz the random-forest reader: ``read_skops_schema``, then ``forest_from_bytes``
(skops builds the forest from the checked zip, and each tree's nodes are checked), as
a learner receiving a proposal does.

    python -m fuzz.forest -runs=2000

Every input must end in a :class:`WeightsError` or in a forest that predicts one of
the expected classes for a row of the expected width.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["colearning"]):
    import numpy as np
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    from colearning.core.exceptions import WeightsError
    from colearning.learners._formats import canonical_skops, read_skops_schema
    from colearning.learners.forest import forest_from_bytes

from fuzz._common import main

N_FEATURES = 4
CLASSES = np.array([0, 1, 2])
ROW = np.linspace(-1, 1, N_FEATURES).reshape(1, -1)


def seeds() -> list[bytes]:
    """Small forests (1 to 3 trees, depth 1 to 3), as the forest learner writes them."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, N_FEATURES))
    y = np.repeat(CLASSES, 30)
    out = []
    for trees, depth in ((1, 1), (2, 2), (3, 3)):
        forest = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0)
        out.append(canonical_skops(sio.dumps(forest.fit(x, y))))
    return out


def test_one(data: bytes) -> None:
    try:
        read_skops_schema(data)
        forest = forest_from_bytes(
            data, task="classification", n_features=N_FEATURES, classes=CLASSES
        )
    except WeightsError:
        return
    p = forest.predict(ROW)
    if p.shape != (1,) or p[0] not in CLASSES:
        raise AssertionError(f"a checked forest predicts {p!r}")


if __name__ == "__main__":
    main(test_one, seeds, sys.argv, max_len=1 << 17)
