"""Colearn's names, so that a learner or example script written for Colearn ports by
its imports.

Every ``from colearn.<anything> import ...`` becomes ``from colearning.compat import
...``: the interface (``colearn.ml_interface``), ``convert_model_to_onnx``
(``colearn.onnxutils``), the training helpers (``colearn.training``), the results and
their printing (``colearn.utils.results``), the plot (``colearn.utils.plot``) and the
driver (``colearn.standalone_driver``). The driver underneath is this library's
(``colearning.run_one_round``): validation runs in parallel, votes are counted in
integers and proposals are checked before anyone votes. ``docs/porting.md`` says what
else changes.

Importing this module loads no ML framework and no matplotlib: each is imported by the
function that needs it.

Examples
--------
>>> from colearning.compat import Weights, collective_learning_round, set_equal_weights
>>> from colearning.testing import QuadraticLearner
>>> learners = [QuadraticLearner(target=[1.0, 1.0], seed=i) for i in range(3)]
>>> set_equal_weights(learners)
>>> result = collective_learning_round(learners, 0.5, 0)
Doing collective learning round
>>> result.block_proposer, result.votes, result.vote
(0, [None, True, True], True)
"""

from colearning.compat._driver import run, run_one_round
from colearning.compat._onnx import convert_model_to_onnx, deser_model
from colearning.compat._plot import ColearnPlot
from colearning.compat._results import Result, Results, print_results
from colearning.compat._training import (
    collective_learning_round,
    individual_training_round,
    initial_result,
    set_equal_weights,
)
from colearning.core.interface import (
    ColearnModel,
    DiffPrivBudget,
    DiffPrivConfig,
    ErrorCodes,
    MachineLearningInterface,
    ModelFormat,
    Prediction,
    PredictionRequest,
    ProposedWeights,
    TrainingSummary,
    Weights,
)

__all__ = [
    "ColearnModel",
    "ColearnPlot",
    "DiffPrivBudget",
    "DiffPrivConfig",
    "ErrorCodes",
    "MachineLearningInterface",
    "ModelFormat",
    "Prediction",
    "PredictionRequest",
    "ProposedWeights",
    "Result",
    "Results",
    "TrainingSummary",
    "Weights",
    "collective_learning_round",
    "convert_model_to_onnx",
    "deser_model",
    "individual_training_round",
    "initial_result",
    "print_results",
    "run",
    "run_one_round",
    "set_equal_weights",
]
