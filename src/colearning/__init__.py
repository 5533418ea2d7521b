"""colearning: collective learning by proposing updates and voting on them.

Each round one learner proposes new weights trained on its private data, the others
score them on their own private data and vote, and the update is adopted only if enough
approve. See ``docs/architecture.md`` for what is built.
"""

from colearning.core.codec import check_weights, decode, encode, id_of
from colearning.core.decider import Decider, TallyDecider
from colearning.core.driver import ProposerSkippedWarning, run_one_round
from colearning.core.exceptions import (
    ColearningError,
    ConfigError,
    DataError,
    LearnerError,
    MissingExtraError,
    StoreDamagedError,
    StoreError,
    StoreWriteError,
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
from colearning.core.observers import RoundObserver
from colearning.core.plans import Planner, RandomProposer, RoundPlan, RoundRobin
from colearning.core.pool import LearnerPool, LocalPool, Outcome
from colearning.core.protocol import Ballot, Candidate, Decision, Failure, Proposal, Reason, Vote
from colearning.core.records import PhaseTimings, RoundRecord, VoteRecord
from colearning.core.store import ExperimentStore
from colearning.core.weights_ref import WeightsRef
from colearning.core.wrapper import LearnerWrapper

__version__ = "0.1.0"

__all__ = [
    "Ballot",
    "Candidate",
    "ColearnModel",
    "ColearningError",
    "ConfigError",
    "DataError",
    "Decider",
    "Decision",
    "DiffPrivBudget",
    "DiffPrivConfig",
    "ErrorCodes",
    "Experiment",
    "ExperimentResult",
    "ExperimentStore",
    "Failure",
    "LearnerError",
    "LearnerPool",
    "LearnerTags",
    "LearnerWrapper",
    "LocalPool",
    "MachineLearningInterface",
    "MissingExtraError",
    "ModelFormat",
    "Outcome",
    "PhaseTimings",
    "Planner",
    "Prediction",
    "PredictionRequest",
    "Proposal",
    "ProposedWeights",
    "ProposerSkippedWarning",
    "RandomProposer",
    "Reason",
    "RoundObserver",
    "RoundPlan",
    "RoundRecord",
    "RoundRobin",
    "StoreDamagedError",
    "StoreError",
    "StoreWriteError",
    "TallyDecider",
    "TrainingSummary",
    "Vote",
    "VoteRecord",
    "Weights",
    "WeightsError",
    "WeightsRef",
    "check_weights",
    "decode",
    "encode",
    "id_of",
    "run_one_round",
]
