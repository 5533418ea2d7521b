"""How tests/core/data/v2-experiment was written: by colearning at commit 058ffc4
(store schema 2, before the chain), with the learners of the v1 fixture.

    git archive 058ffc4 src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python tests/core/data/make_v2_experiment.py OUT
"""

import sys
import warnings

import numpy as np

from colearning import Experiment, ExperimentStore, Weights
from colearning.core import store as store_module
from colearning.testing import FaultyLearner, QuadraticLearner


class NaNAtThree(QuadraticLearner):
    def mli_propose_weights(self):
        if self._round == 3:
            return Weights({"w": np.full(2, np.nan)})
        return super().mli_propose_weights()


def main(out: str) -> None:
    assert store_module.SCHEMA_VERSION == 2, store_module.__file__
    learners = [
        QuadraticLearner(target=[1.0, 2.0], seed=0),
        FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=1), "raise", on={"propose"}),
        FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=2), "raise", on={"test"}),
        NaNAtThree(target=[1.0, 2.0], seed=3),
    ]
    ids = [f"learner-{i}" for i in range(4)]
    config = {"task": "quadratic-v2-fixture", "vote_threshold": 0.5, "rounds": 6}
    store = ExperimentStore.create(out, config, ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Experiment(learners, store=store) as experiment:
            result = experiment.run(6)
    print(result.final_weights_id, [r.status for r in result.rounds])


if __name__ == "__main__":
    main(sys.argv[1])
