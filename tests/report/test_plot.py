"""The experiment plot with committees and with many learners."""

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
