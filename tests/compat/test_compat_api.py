"""colearning.compat: Colearn's names and helpers, on this library's driver and plot."""

from __future__ import annotations

import numpy as np
import pytest

import colearning
from colearning import compat
from colearning.compat._results import score_of
from colearning.core.exceptions import ColearningError, LearnerError
from colearning.report.plot import ABSTAIN, APPROVE, NOT_ASKED, PROPOSER, REJECT
from colearning.testing import FaultyLearner, QuadraticLearner

# Every name of Colearn's modules that its learners and example scripts import.
COLEARN_NAMES = {
    "colearn.ml_interface": [
        "MachineLearningInterface", "Weights", "ProposedWeights", "DiffPrivBudget",
        "DiffPrivConfig", "TrainingSummary", "ErrorCodes", "ColearnModel", "ModelFormat",
        "PredictionRequest", "Prediction",
    ],
    "colearn.onnxutils": ["convert_model_to_onnx"],
    "colearn.training": [
        "set_equal_weights", "initial_result", "collective_learning_round",
        "individual_training_round",
    ],
    "colearn.utils.results": ["Result", "Results", "print_results"],
    "colearn.utils.plot": ["ColearnPlot"],
    "colearn.standalone_driver": ["run_one_round", "run"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(COLEARN_NAMES))
def test_every_colearn_name_is_in_compat(module):
    for name in COLEARN_NAMES[module]:
        assert name in compat.__all__, f"{module}.{name}"
        assert getattr(compat, name) is not None


def test_interface_names_are_the_cores():
    for name in COLEARN_NAMES["colearn.ml_interface"]:
        assert getattr(compat, name) is getattr(colearning, name)
    assert compat.run_one_round is colearning.run_one_round
    assert compat.__all__ == sorted(compat.__all__)


def quadratic(n=3, **kw):
    return [QuadraticLearner(target=[1.0, -1.0], seed=i, **kw) for i in range(n)]


def test_training_helpers_record_rounds_as_colearn_did(capsys):
    learners = quadratic(3)
    compat.set_equal_weights(learners)
    results = compat.Results()
    results.data.append(compat.initial_result(learners))
    for round_index in range(4):
        results.data.append(compat.collective_learning_round(learners, 0.5, round_index))
        compat.print_results(results)
    out = capsys.readouterr().out
    assert out.count("Doing collective learning round") == 4
    assert out.count("LATEST ROUND RESULTS") == 4

    first = results.data[0]
    assert first.votes == [True, True, True] and first.block_proposer is None
    for round_index, result in enumerate(results.data[1:]):
        assert result.block_proposer == round_index % 3
        assert result.votes[result.block_proposer] is None
        assert result.errors == [None, None, None]
        assert result.training_summaries == []
    results.process_statistics()
    assert len(results.h_vote_scores) == 3 and len(results.h_vote_scores[0]) == 5
    assert results.mean_vote_scores[0] == pytest.approx(np.mean(first.vote_scores))
    # the shared model moved towards the common target
    assert results.mean_vote_scores[-1] > results.mean_vote_scores[0]


def test_a_failed_voter_is_recorded_not_raised():
    learners = quadratic(3)
    learners[2] = FaultyLearner(learners[2], "raise", on=("test",))
    result = compat.collective_learning_round(learners, 0.5, 0)
    assert result.votes[2] is False and result.vote_scores[2] is None
    assert "injected failure" in result.errors[2]
    results = compat.Results()
    results.data.append(result)
    results.process_statistics()  # a missing score is left out of the mean
    assert results.mean_vote_scores[0] == pytest.approx(np.mean(result.vote_scores[:2]))
    compat.print_results(results)


def test_individual_training_round_adopts_each_learners_own_proposal():
    learners = quadratic(2)
    before = [lr.mli_get_current_weights() for lr in learners]
    result = compat.individual_training_round(learners, 0)
    assert result.votes == [True, True]
    for learner, old in zip(learners, before, strict=True):
        assert learner.mli_get_current_weights() != old


def test_run_plays_round_robin_rounds():
    learners = quadratic(3)
    start = learners[0].mli_get_current_weights()
    assert compat.run(3, learners) is None
    assert learners[0].mli_get_current_weights() != start


def test_score_of_reads_criterion_dictionaries():
    assert score_of({"acc": 0.5, "loss": 2.0}, "loss") == 2.0
    assert score_of({"acc": 0.5}) == 0.5
    assert score_of(np.float32(0.25)) == 0.25
    with pytest.raises(LearnerError, match="criterion"):
        score_of({"acc": 0.5, "loss": 2.0}, None)


# -- the plot -----------------------------------------------------------------------------


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)


def test_colearn_plot_draws_headless_and_block_returns(headless, tmp_path):
    learners = quadratic(3)
    learners[2] = FaultyLearner(learners[2], "raise", on=("test",))
    results = compat.Results()
    results.data.append(compat.initial_result(learners[:2] + [quadratic(3)[2]]))
    plot = compat.ColearnPlot(score_name="minus squared error")
    assert not plot.interactive
    for round_index in range(3):
        results.data.append(compat.collective_learning_round(learners, 0.5, round_index))
        plot.plot_results_and_votes(results)
    plot.block()  # returns at once: nothing to wait for off screen
    plot.block()
    path = plot.save(tmp_path / "plot.png")
    assert path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the vote matrix is the report's: approve, reject, abstain (failed), proposer
    matrix = np.asarray(plot.votes_axes.images[0].get_array())
    assert matrix.shape == (3, 4)
    assert (matrix[:, 0] == APPROVE).all()  # the initial result, as Colearn drew it
    for column, result in enumerate(results.data[1:], start=1):
        assert matrix[result.block_proposer, column] == PROPOSER
        if result.block_proposer != 2:
            assert matrix[2, column] == ABSTAIN
        for i, vote in enumerate(result.votes):
            if i not in (2, result.block_proposer):
                assert matrix[i, column] == (APPROVE if vote else REJECT)
    assert plot.score_name in plot.results_axes.get_ylabel()
    plot.close()


def test_colearn_plot_marks_a_skipped_round_not_asked(headless):
    learners = quadratic(2)
    learners[0] = FaultyLearner(learners[0], "raise", on=("propose",))
    results = compat.Results()
    results.data.append(compat.initial_result(quadratic(2)))
    results.data.append(compat.collective_learning_round(learners, 0.5, 0))
    plot = compat.ColearnPlot()
    plot.plot_results_and_votes(results)
    matrix = np.asarray(plot.votes_axes.images[0].get_array())
    assert matrix[1, 1] == NOT_ASKED and matrix[0, 1] == PROPOSER
    plot.close()


def test_colearn_plot_on_screen_block_waits_once(monkeypatch, headless):
    """On an interactive backend block() shows the window and, once it is closed,
    another block() without plotting says so (as Colearn did)."""
    plot = compat.ColearnPlot()
    shown: list[bool] = []
    monkeypatch.setattr(plot, "interactive", True)
    monkeypatch.setattr(plot._plt, "show", lambda block=None: shown.append(block))
    plot.block()
    assert shown == [True]
    with pytest.raises(ColearningError, match="closed"):
        plot.block()
    plot.close()


# -- failures of the port that the core has to report -------------------------------------


def test_a_proposer_that_always_fails_is_not_silent():
    """Colearn's driver raised when a proposer failed; ours records the skip, and
    run_one_round (which returns no record) warns with the reason."""
    learners = quadratic(3)
    learners[1] = FaultyLearner(learners[1], "raise", on=("propose",))
    for round_index in (1, 4):
        with pytest.warns(Warning, match="injected failure in propose"):
            verdicts, accepted = colearning.run_one_round(round_index, learners)
        assert not accepted
        assert [v.vote for v in verdicts] == [None, None, None]


class NumpyScoredLearner(compat.MachineLearningInterface):
    """Scores are NumPy scalars, so ``new > old`` is a ``numpy.bool_``: what Colearn
    learners gave on the scikit-learn of their day (``score`` returned ``np.float64``);
    Colearn's pydantic ``ProposedWeights`` turned them into ``bool`` and ``float``."""

    def __init__(self) -> None:
        self.value = 0

    def mli_propose_weights(self) -> compat.Weights:
        return compat.Weights(weights=self.value + 1)

    def mli_test_weights(self, weights: compat.Weights) -> compat.ProposedWeights:
        score = np.float64(weights.weights)
        return compat.ProposedWeights(
            weights=weights, vote_score=score, test_score=score, vote=score > self.value
        )

    def mli_accept_weights(self, weights: compat.Weights) -> None:
        self.value = weights.weights

    def mli_get_current_weights(self) -> compat.Weights:
        return compat.Weights(weights=self.value)


def test_numpy_bool_votes_count_as_colearn_counted_them():
    verdicts, accepted = colearning.run_one_round(0, [NumpyScoredLearner() for _ in range(3)])
    assert [v.error for v in verdicts] == [None, None, None]
    assert [v.vote for v in verdicts] == [None, True, True]
    assert accepted
