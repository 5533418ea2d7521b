"""``colearn.utils.results``: ``Result``, ``Results`` and ``print_results``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from colearning.core.exceptions import LearnerError
from colearning.core.interface import TrainingSummary

__all__ = ["Result", "Results", "print_results", "score_of"]


def score_of(score: Any, criterion: str | None = None) -> float | None:
    """A verdict's score as one float: a number as it is, or a ``{criterion: score}``
    dictionary's entry for ``criterion`` (later Colearn versions scored so).

    A dictionary without ``criterion`` gives its only entry; ``None`` stays ``None``
    (a learner that failed, or a set it does not have).

    Raises
    ------
    LearnerError
        If a dictionary has no entry for ``criterion`` and more than one entry.

    Examples
    --------
    >>> score_of(0.75), score_of({"accuracy": 0.5}, "accuracy"), score_of(None)
    (0.75, 0.5, None)
    """
    if score is None:
        return None
    if isinstance(score, Mapping):
        if criterion is not None and criterion in score:
            return score_of(score[criterion])
        if len(score) == 1:
            return score_of(next(iter(score.values())))
        raise LearnerError(
            f"a score dictionary {dict(score)!r} has no entry for the criterion "
            f"{criterion!r}; set ProposedWeights(criterion=...) to one of its keys"
        )
    return float(score)


class Result:
    """One round, as Colearn recorded it.

    Attributes
    ----------
    vote
        Whether the proposal was accepted.
    votes
        Each learner's vote, in learner order (``None`` for the proposer).
    test_scores, vote_scores
        Each learner's score of the proposal (``None`` where a learner failed).
    block_proposer
        The proposer's index (``None`` for the initial result).
    training_summaries
        The learners' current :class:`TrainingSummary` values, where they report one
        (later Colearn versions recorded these).
    errors
        Each learner's failure, or ``None`` (not in Colearn: its driver let a failure
        stop the experiment).
    """

    def __init__(self) -> None:
        self.vote: bool = False
        self.votes: list[bool | None] = []
        self.test_scores: list[float | None] = []
        self.vote_scores: list[float | None] = []
        self.block_proposer: int | None = None
        self.training_summaries: list[TrainingSummary] = []
        self.errors: list[str | None] = []

    def __repr__(self) -> str:
        return f"Result(block_proposer={self.block_proposer}, vote={self.vote}, votes={self.votes})"


def _mean(values: list[float | None]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


class Results:
    """The rounds of an experiment, and the statistics the plot draws.

    ``data`` holds one :class:`Result` per round (the first usually from
    :func:`initial_result`). :meth:`process_statistics` fills ``h_test_scores`` and
    ``h_vote_scores`` (per learner, per round) and ``mean_test_scores`` and
    ``mean_vote_scores`` (per round; a learner without a score is left out of the
    mean, where Colearn would have failed).
    """

    def __init__(self) -> None:
        self.data: list[Result] = []
        self.h_test_scores: list[list[float | None]] = []
        self.h_vote_scores: list[list[float | None]] = []
        self.mean_test_scores: list[float] = []
        self.mean_vote_scores: list[float] = []

    def process_statistics(self) -> None:
        """Recompute the per-learner histories and the per-round means from ``data``."""
        self.mean_test_scores = [_mean(r.test_scores) for r in self.data]
        self.mean_vote_scores = [_mean(r.vote_scores) for r in self.data]
        n_learners = len(self.data[0].vote_scores) if self.data else 0
        self.h_test_scores = [[r.test_scores[i] for r in self.data] for i in range(n_learners)]
        self.h_vote_scores = [[r.vote_scores[i] for r in self.data] for i in range(n_learners)]


def _fmt(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


def print_results(results: Results) -> None:
    """Print the latest round: proposer, outcome, and each learner's vote and scores.

    Examples
    --------
    >>> r = Result()
    >>> r.vote, r.block_proposer = True, 0
    >>> r.votes, r.test_scores, r.vote_scores = [None, True], [0.5, 0.25], [0.5, 0.75]
    >>> results = Results()
    >>> results.data.append(r)
    >>> print_results(results)  # doctest: +NORMALIZE_WHITESPACE
    --------------- LATEST ROUND RESULTS -------------
    Selected proposer:   0
    New model accepted:  True
    --------------------------------------------------
    learner id      vote    test score      vote score
    0               None    0.500           0.500
    1               True    0.250           0.750
    --------------------------------------------------
    """
    last = results.data[-1]
    print("--------------- LATEST ROUND RESULTS -------------")
    print("Selected proposer:\t", last.block_proposer)
    print("New model accepted:\t", last.vote)
    print("--------------------------------------------------")
    print("learner id\t\tvote\ttest score\t\tvote score")
    for i, vote in enumerate(last.votes):
        test_score = last.test_scores[i] if i < len(last.test_scores) else None
        vote_score = last.vote_scores[i] if i < len(last.vote_scores) else None
        print(f"{i}\t\t\t\t{vote}\t{_fmt(test_score)}\t\t\t{_fmt(vote_score)}")
    print("--------------------------------------------------")
