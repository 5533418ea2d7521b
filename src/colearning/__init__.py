"""colearning: collective learning by proposing updates and voting on them.

Each round one learner proposes new weights trained on its private data, the others
score them on their own private data and vote, and the update is adopted only if enough
approve. See ``docs/architecture.md`` for what is built.
"""

from colearning.core.codec import check_weights, decode, encode, id_of
from colearning.core.driver import run_one_round
from colearning.core.exceptions import (
    ColearningError,
    ConfigError,
    DataError,
    LearnerError,
    MissingExtraError,
    StoreError,
    WeightsError,
)
from colearning.core.experiment import Experiment, ExperimentResult
from colearning.core.interface import (
    ColearnModel,
    DiffPrivBudget,
    DiffPrivConfig,
    ErrorCodes,
    LearnerTags,
    MachineLearningInterface,
    ModelFormat,
    Prediction,
    PredictionRequest,
    ProposedWeights,
    TrainingSummary,
    Weights,
)
from colearning.core.records import PhaseTimings, RoundRecord, VoteRecord
from colearning.core.store import ExperimentStore
from colearning.core.wrapper import LearnerWrapper

__version__ = "0.1.0"

__all__ = [
    "ColearnModel",
    "ColearningError",
    "ConfigError",
    "DataError",
    "DiffPrivBudget",
    "DiffPrivConfig",
    "ErrorCodes",
    "Experiment",
    "ExperimentResult",
    "ExperimentStore",
    "LearnerError",
    "LearnerTags",
    "LearnerWrapper",
    "MachineLearningInterface",
    "MissingExtraError",
    "ModelFormat",
    "PhaseTimings",
    "Prediction",
    "PredictionRequest",
    "ProposedWeights",
    "RoundRecord",
    "StoreError",
    "TrainingSummary",
    "VoteRecord",
    "Weights",
    "WeightsError",
    "check_weights",
    "decode",
    "encode",
    "id_of",
    "run_one_round",
]
