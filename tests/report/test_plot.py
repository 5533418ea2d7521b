"""The vote matrix and the plot draw every round mode, committees and many learners."""

import numpy as np

from colearning import Experiment
from colearning.report.plot import (
    APPROVE,
    MAX_MATRIX_INCHES,
    NOT_ASKED,
    PROPOSER,
    REJECT,
    plot_rounds,
    vote_matrix,
)
from colearning.testing import QuadraticLearner


def rounds_of(mode, n=3, rounds=3, **kw):
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(n)]
    with Experiment(learners, mode=mode, **kw) as experiment:
        return experiment.run(rounds).rounds, experiment.learner_ids


def test_single_rounds_mark_the_proposer_who_does_not_vote():
    records, ids = rounds_of("single")
    matrix = vote_matrix(records, ids)
    assert matrix[0, 0] == PROPOSER and matrix[1, 1] == PROPOSER
    assert set(matrix[:, 0][1:].tolist()) <= {APPROVE, REJECT}


def test_aggregate_rounds_show_every_learner_voting():
    records, ids = rounds_of("aggregate")
    matrix = vote_matrix(records, ids)
    assert PROPOSER not in matrix
    assert (matrix == APPROVE).all()  # a shared target: every learner gains


def test_a_screened_round_with_nothing_left_shows_no_votes_on_a_candidate():
    learners = [QuadraticLearner(target=[t], noise=0.0, start=[0.0]) for t in (10.0, -10.0, 0.0)]
    with Experiment(learners, mode="screened", vote_threshold=1.0) as experiment:
        records = experiment.run(1).rounds
    assert records[0].candidate is None
    assert (vote_matrix(records, experiment.learner_ids)[:, 0] == NOT_ASKED).all()


def test_plots_of_every_mode_are_written(tmp_path):
    for mode in ("single", "aggregate", "screened"):
        records, ids = rounds_of(mode, n=4, rounds=4)
        path = plot_rounds(records, ids, tmp_path / f"{mode}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000
    assert np.isfinite(records[-1].votes[0].vote_score)


def run(n, committee, rounds=6):
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(n)]
    with Experiment(learners, committee=committee) as experiment:
        return experiment.run(rounds), experiment.learner_ids


def test_a_learner_outside_the_committee_is_not_asked():
    result, ids = run(8, committee=2)
    matrix = vote_matrix(result.rounds, ids)
    for col, record in enumerate(result.rounds):
        asked = {v.learner_id for v in record.votes}
        for row, lid in enumerate(ids):
            if lid == record.proposer_id:
                assert matrix[row, col] == PROPOSER
            elif lid not in asked:
                assert matrix[row, col] == NOT_ASKED
            else:
                assert lid in record.committee and matrix[row, col] in (APPROVE, REJECT)


def test_many_learners_make_a_plot_of_bounded_size(tmp_path):
    from PIL import Image

    result, ids = run(600, committee=5)
    path = plot_rounds(result.rounds, ids, tmp_path / "plot.png")
    with Image.open(path) as image:
        _, height = image.size
    # 110 dpi: the score panel, plus the vote matrix at its tallest
    assert height <= 110 * (5.5 + MAX_MATRIX_INCHES) + 1
