"""The bundled learners, each behind its extra.

``import colearning.learners`` imports no ML framework; asking for a learner imports
its framework only::

    from colearning.learners import SKLearnLearner      # scikit-learn
    from colearning.learners import TorchLearner        # PyTorch
    from colearning.learners import KerasLearner        # Keras 3 on PyTorch
    from colearning.learners import XGBoostLearner      # XGBoost
    from colearning.learners import RandomForestLearner # scikit-learn + skops
    from colearning.learners import SoftmaxLearner      # NumPy alone

A missing extra fails loudly, naming the ``pip install`` to run. The differentially
private ``DPTorchLearner`` lives in :mod:`colearning.privacy` (privacy builds on the
learners, not the other way round). The shared protocol half is
:class:`colearning.learners._base.LearnerBase`; the metric vocabulary is
:mod:`colearning.learners.metrics`.

Examples
--------
>>> import colearning.learners as learners
>>> learners.METRICS["log_loss"].higher_is_better
False
>>> sorted(learners.__all__)[:3]
['KerasLearner', 'LearnerBase', 'METRICS']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from colearning.learners._base import LearnerBase
    from colearning.learners.forest import RandomForestLearner
    from colearning.learners.keras import KerasLearner
    from colearning.learners.metrics import METRICS, Metric
    from colearning.learners.sklearn import SKLearnLearner
    from colearning.learners.softmax import SoftmaxLearner
    from colearning.learners.torch import TorchLearner
    from colearning.learners.xgboost import XGBoostLearner

# Each public name and the module that defines it (imported on first use only).
_WHERE = {
    "KerasLearner": "colearning.learners.keras",
    "LearnerBase": "colearning.learners._base",
    "METRICS": "colearning.learners.metrics",
    "Metric": "colearning.learners.metrics",
    "RandomForestLearner": "colearning.learners.forest",
    "SKLearnLearner": "colearning.learners.sklearn",
    "SoftmaxLearner": "colearning.learners.softmax",
    "TorchLearner": "colearning.learners.torch",
    "XGBoostLearner": "colearning.learners.xgboost",
}

__all__ = [
    "METRICS",
    "KerasLearner",
    "LearnerBase",
    "Metric",
    "RandomForestLearner",
    "SKLearnLearner",
    "SoftmaxLearner",
    "TorchLearner",
    "XGBoostLearner",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'colearning.learners' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
