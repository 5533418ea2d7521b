"""``colearn.training``: the helpers Colearn's example scripts are built from."""

from __future__ import annotations

from collections.abc import Sequence

from colearning.compat._results import Result, score_of
from colearning.core.driver import run_one_round
from colearning.core.interface import MachineLearningInterface, ProposedWeights

__all__ = [
    "collective_learning_round",
    "individual_training_round",
    "initial_result",
    "set_equal_weights",
]


def set_equal_weights(learners: Sequence[MachineLearningInterface]) -> None:
    """Give every learner the first learner's current weights."""
    first = learners[0].mli_get_current_weights()
    for learner in learners[1:]:
        learner.mli_accept_weights(first)


def _scores(verdict: ProposedWeights) -> tuple[float | None, float | None]:
    criterion = verdict.criterion
    return score_of(verdict.vote_score, criterion), score_of(verdict.test_score, criterion)


def initial_result(learners: Sequence[MachineLearningInterface]) -> Result:
    """Each learner's scores of its own current weights (every vote counted as
    approving), the first column of Colearn's plots."""
    result = Result()
    for learner in learners:
        verdict = learner.mli_test_weights(learner.mli_get_current_weights())
        vote_score, test_score = _scores(verdict)
        result.test_scores.append(test_score)
        result.vote_scores.append(vote_score)
        result.votes.append(True)
        result.errors.append(None)
    return result


def collective_learning_round(
    learners: Sequence[MachineLearningInterface], vote_threshold: float, round_index: int
) -> Result:
    """Play one round with :func:`colearning.run_one_round` and record it.

    The proposer is ``learners[round_index % len(learners)]``; the others validate in
    parallel. A learner that failed has ``votes[i] = False`` (``None`` for the
    proposer) and its reason in ``errors[i]``.
    """
    print("Doing collective learning round")
    verdicts, accepted = run_one_round(round_index, learners, vote_threshold)
    result = Result()
    result.vote = accepted
    result.votes = [v.vote for v in verdicts]
    for verdict in verdicts:
        vote_score, test_score = _scores(verdict)
        result.vote_scores.append(vote_score)
        result.test_scores.append(test_score)
        result.errors.append(verdict.error)
    result.block_proposer = round_index % len(learners)
    summaries = (learner.mli_get_current_weights().training_summary for learner in learners)
    result.training_summaries = [s for s in summaries if s is not None]
    return result


def individual_training_round(
    learners: Sequence[MachineLearningInterface], round_index: int
) -> Result:
    """Every learner trains on its own data and adopts its own proposal, with no vote:
    the "each learner alone" baseline."""
    print("Doing individual training pass")
    result = Result()
    for i, learner in enumerate(learners):
        print(f"Training learner #{i} round index {round_index}")
        learner.mli_set_round(round_index)
        weights = learner.mli_propose_weights()
        verdict = learner.mli_test_weights(weights)
        learner.mli_accept_weights(weights)
        vote_score, test_score = _scores(verdict)
        result.votes.append(True)
        result.vote_scores.append(vote_score)
        result.test_scores.append(test_score)
        result.errors.append(None)
    return result
