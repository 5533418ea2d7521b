"""``colearn.utils.plot``: ``ColearnPlot``, the live plot of Colearn's example scripts.

It draws what ``colearn plot`` draws (``colearning.report.plot``: the vote matrix with
its colours, the proposer marked accepted or rejected) from Colearn's
:class:`~colearning.compat.Results`. matplotlib is imported when a plot is made. With
no display (no ``DISPLAY`` or ``WAYLAND_DISPLAY`` on Linux) it draws off-screen with
the Agg backend, so example scripts run unchanged on servers and in tests, and
:meth:`ColearnPlot.block` returns at once; :meth:`ColearnPlot.save` writes a PNG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from colearning.compat._results import Result, Results
from colearning.core.exceptions import ColearningError, require_extra
from colearning.core.protocol import Ballot, Decision, Proposal, Reason, Vote
from colearning.core.records import PhaseTimings, RoundRecord, RoundStatus

__all__ = ["ColearnPlot"]

_NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _status(result: Result) -> RoundStatus:
    if result.vote:
        return "accepted"
    if result.block_proposer is not None and all(v is None for v in result.votes):
        return "skipped"  # the proposer failed: nobody was asked
    return "rejected"


def _records(results: Results) -> tuple[list[RoundRecord], list[str]]:
    """Colearn's results as round records, the input of the report's vote matrix.

    The initial result (no proposer) becomes a column in which everyone approves, as
    Colearn drew it.
    """
    n = len(results.data[0].votes)
    ids = [f"Learner {i}" for i in range(n)]
    records = []
    for column, result in enumerate(results.data):
        errors = getattr(result, "errors", None) or [None] * n
        proposer = result.block_proposer
        status = _status(result)
        votes = tuple(
            _vote(
                ids[i],
                result.votes[i],
                result.vote_scores[i] if i < len(result.vote_scores) else None,
                result.test_scores[i] if i < len(result.test_scores) else None,
                errors[i] if i < len(errors) else None,
                is_proposer=i == proposer,
                asked=status != "skipped",
            )
            for i in range(n)
        )
        pid = ids[proposer] if proposer is not None else ""
        approvals = sum(v is True for v in result.votes)
        records.append(
            RoundRecord(
                round_index=column,
                status=status,
                proposals=(Proposal(pid, None, Reason.RAISED if status == "skipped" else None),),
                votes=votes,
                decision=None
                if status == "skipped"
                else Decision(status == "accepted", approvals, max(n - 1, 0), (1, 2)),
                candidate=None,
                previous_weights_id="",
                current_weights_id="",
                timings=PhaseTimings(),
            )
        )
    return records, ids


def _vote(
    learner_id: str,
    vote: bool | None,
    vote_score: float | None,
    test_score: float | None,
    error: str | None,
    *,
    is_proposer: bool,
    asked: bool,
) -> Vote:
    if not asked:
        return Vote(learner_id, Ballot.ABSTAIN, reason=Reason.NOT_ASKED)
    ballot, reason = Ballot.ABSTAIN, None
    if is_proposer:
        reason = Reason.PROPOSER
    elif error:
        reason = Reason.RAISED
    elif vote is None:
        reason = Reason.NOT_ASKED
    else:
        ballot = Ballot.APPROVE if vote else Ballot.REJECT
    return Vote(
        learner_id,
        ballot,
        vote_score=_number(vote_score),
        test_score=_number(test_score),
        reason=reason,
        detail=error if reason is Reason.RAISED else None,
    )


def _number(value: object) -> float | None:
    try:
        return None if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class ColearnPlot:
    """Scores per round and the vote matrix, redrawn after every round.

    Parameters
    ----------
    score_name
        The score's name, for the axis label.
    draw_time
        Seconds to pause after each redraw on screen, so the window updates.

    Examples
    --------
    Colearn's example loop, unchanged::

        plot = ColearnPlot(score_name="accuracy")
        for round_index in range(n_rounds):
            results.data.append(collective_learning_round(learners, 0.5, round_index))
            plot.plot_results_and_votes(results)
        plot.block()          # on screen: waits until the window is closed
        plot.save("run.png")  # an addition: the figure as a PNG
    """

    def __init__(self, score_name: str = "user-defined score", draw_time: float = 0.01) -> None:
        require_extra("matplotlib", "report", "ColearnPlot")
        import matplotlib

        if not _has_display():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self._plt: Any = plt
        self.score_name = score_name
        self.draw_time = draw_time
        self.interactive = matplotlib.get_backend().lower() not in _NON_INTERACTIVE
        self.fig_invalid = False
        self._make_axes()

    def _make_axes(self) -> None:
        plt = self._plt
        if self.interactive:
            plt.ion()
        self.figure: Any = plt.figure(figsize=(9.0, 7.0))
        self.results_axes: Any = self.figure.add_subplot(2, 1, 1)
        self.votes_axes: Any = self.figure.add_subplot(2, 1, 2)
        if self.interactive:
            plt.show()
        self.fig_invalid = False

    def _draw(self) -> None:
        if self.interactive:
            self.figure.canvas.draw_idle()
            self._plt.pause(self.draw_time)

    def plot_results_and_votes(self, results: Results) -> None:
        """Redraw both panels from ``results``."""
        self.plot_results(results)
        self.plot_votes(results)

    def plot_results(self, results: Results) -> None:
        """Redraw the scores: each learner's (thin; dotted: vote set, solid: test set)
        and their means (thick), one point per round."""
        if self.fig_invalid:
            self._make_axes()
        results.process_statistics()
        ax = self.results_axes
        ax.clear()
        n_rounds = len(results.data)
        x = np.arange(n_rounds)
        colors = self._plt.get_cmap("tab10")

        def line(values: list[float | None]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], dtype=float)

        for i, (tests, votes) in enumerate(
            zip(results.h_test_scores, results.h_vote_scores, strict=True)
        ):
            color = colors(i % 10)
            ax.plot(x, line(tests), "-", color=color, alpha=0.45, linewidth=1)
            ax.plot(x, line(votes), ":", color=color, alpha=0.45, linewidth=1)
        ax.plot(
            x,
            results.mean_test_scores,
            "-",
            color="black",
            linewidth=2.5,
            label=f"mean test {self.score_name}",
        )
        ax.plot(
            x,
            results.mean_vote_scores,
            ":",
            color="black",
            linewidth=2.5,
            label=f"mean vote {self.score_name}",
        )
        ax.set_xlim(-0.5, n_rounds - 0.5)
        ax.set_xticks(x)
        ax.set_xlabel("training round")
        ax.set_ylabel(self.score_name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        self._draw()

    def plot_votes(self, results: Results) -> None:
        """Redraw the vote matrix (learner x round; round 0 is the initial result)."""
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        from colearning.report.plot import (
            ABSTAIN,
            APPROVE,
            CELL_COLORS,
            NOT_ASKED,
            REJECT,
            vote_matrix,
        )

        if self.fig_invalid:
            self._make_axes()
        ax = self.votes_axes
        ax.clear()
        records, ids = _records(results)
        ax.imshow(
            vote_matrix(records, ids),
            cmap=ListedColormap(CELL_COLORS),
            vmin=0,
            vmax=len(CELL_COLORS) - 1,
            aspect="auto",
            interpolation="nearest",
        )
        for column, record in enumerate(records):
            if not record.proposer_id:
                continue
            row = ids.index(record.proposer_id)
            if record.status == "accepted":
                ax.plot(column, row, marker="*", color="#1f5fbf", markersize=12)
            elif record.status == "rejected":
                ax.plot(column, row, marker="X", color="black", markersize=9)
            else:
                ax.plot(column, row, marker="s", color="#f0ad4e", markersize=8)
        ax.set_xticks(range(len(records)))
        ax.set_yticks(range(len(ids)), ids)
        ax.set_xlabel("training round (proposer: star accepted, X rejected, square skipped)")
        ax.legend(
            handles=[
                Patch(color=CELL_COLORS[APPROVE], label="approve"),
                Patch(color=CELL_COLORS[REJECT], label="reject"),
                Patch(color=CELL_COLORS[ABSTAIN], label="abstain (failed)"),
                Patch(color=CELL_COLORS[NOT_ASKED], label="not asked"),
            ],
            fontsize=7,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            frameon=False,
        )
        self._draw()

    def block(self) -> None:
        """On screen: show the plot and wait until its window is closed. Off screen
        (the Agg backend): return at once; :meth:`save` keeps the figure.

        Raises
        ------
        ColearningError
            If called again on screen without plotting in between (the closed
            window is gone), as Colearn did.
        """
        if not self.interactive:
            return
        if self.fig_invalid:
            raise ColearningError(
                "the plot window was closed by the previous block(); plot again first"
            )
        self._plt.ioff()
        self._plt.show(block=True)
        self.fig_invalid = True  # closing the window destroyed the figure

    def save(self, path: str | os.PathLike[str], dpi: int = 110) -> Path:
        """Write the figure as a PNG (or any format matplotlib infers from ``path``)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.figure.tight_layout()
        self.figure.savefig(out, dpi=dpi, bbox_inches="tight")
        return out

    def close(self) -> None:
        """Release the figure."""
        self._plt.close(self.figure)
