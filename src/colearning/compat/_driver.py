"""``colearn.standalone_driver``: ``run_one_round`` and ``run``, on this library's driver."""

from __future__ import annotations

from collections.abc import Sequence

from colearning.core.driver import run_one_round
from colearning.core.interface import MachineLearningInterface

__all__ = ["run", "run_one_round"]


def run(
    n_rounds: int,
    learners: Sequence[MachineLearningInterface],
    vote_threshold: float = 0.5,
) -> None:
    """Play rounds ``0 .. n_rounds - 1`` with :func:`colearning.run_one_round`, as
    Colearn's ``standalone_driver.run`` did (round-robin proposers).

    ``vote_threshold`` is an addition (Colearn always used 0.5). For an experiment
    that records every round, resumes and plots, use :class:`colearning.Experiment`.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> learners = [QuadraticLearner(target=[2.0], seed=i) for i in range(2)]
    >>> run(2, learners)
    """
    for round_index in range(n_rounds):
        run_one_round(round_index, learners, vote_threshold)
