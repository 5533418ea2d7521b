"""Every *_to_proto / *_from_proto pair round-trips."""

import numpy as np
import pytest

from colearning.core.codec import WeightsSpec
from colearning.core.interface import (
    DiffPrivBudget,
    ErrorCodes,
    LearnerTags,
    ProposedWeights,
    TrainingSummary,
    Weights,
)
from colearning.core.protocol import Reason
from colearning.network import convert as c


def test_spec_round_trip():
    spec = WeightsSpec.of(Weights({"a": np.zeros((2, 3), np.float32), "b": np.zeros(0, np.uint8)}))
    assert c.spec_from_proto(c.spec_to_proto(spec)) == spec


@pytest.mark.parametrize(
    "tags", [LearnerTags(), LearnerTags(True, True, True, True, True), LearnerTags(private=True)]
)
def test_tags_round_trip(tags):
    assert c.tags_from_proto(c.tags_to_proto(tags)) == tags


@pytest.mark.parametrize(
    "summary",
    [
        TrainingSummary(),
        TrainingSummary(DiffPrivBudget(8.0, 1e-5, 1.5, 1e-6), ErrorCodes.DP_BUDGET_EXCEEDED),
    ],
)
def test_training_summary_round_trip(summary):
    assert c.summary_from_proto(c.summary_to_proto(summary)) == summary


def test_unknown_error_code_is_refused_by_name():
    msg = c.summary_to_proto(TrainingSummary())
    msg.error_code = "melted"
    with pytest.raises(ValueError, match="'melted'"):
        c.summary_from_proto(msg)


@pytest.mark.parametrize(
    "failure",
    [
        c.RemoteFailure(Reason.RAISED, "RuntimeError: x"),
        c.RemoteFailure(Reason.BAD_ANSWER, "bad answer: y"),
        c.RemoteFailure(Reason.RAISED, "does not hold", need_bytes=True),
    ],
)
def test_failure_round_trip(failure):
    assert c.failure_from_proto(c.failure_to_proto(failure)) == failure


@pytest.mark.parametrize(
    "verdict",
    [
        ProposedWeights(None, 0.5, 0.25, True),
        ProposedWeights(None, None, None, False, error="note", criterion="acc"),
    ],
)
def test_verdict_round_trip(verdict):
    assert c.verdict_from_proto(c.verdict_to_proto(verdict)) == verdict


def test_verdict_reads_colearn_dict_scores_and_refuses_garbage():
    got = c.verdict_from_proto(
        c.verdict_to_proto(
            ProposedWeights(None, {"acc": 0.5}, {"acc": 0.75}, True, criterion="acc")
        )
    )
    assert (got.vote_score, got.test_score) == (0.5, 0.75)
    with pytest.raises(ValueError, match="a vote must be True or False"):
        c.verdict_to_proto(ProposedWeights(None, 0.5, 0.5, "yes"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite numbers"):
        c.verdict_to_proto(ProposedWeights(None, float("nan"), 0.5, True))


def test_description_round_trip():
    d = c.LearnerDescription(
        learner_id="learner-3",
        task="digits-mlp",
        spec=WeightsSpec.of(Weights({"w": np.zeros(3)})),
        library_version="0.1.0",
        protocol_version=c.PROTOCOL_VERSION,
        tags=LearnerTags(deterministic=True),
        instance_id="abc",
        current_weights_id="0" * 64,
        metric="accuracy",
        higher_is_better=True,
        max_bytes=123,
    )
    assert c.description_from_proto(c.description_to_proto(d)) == d
