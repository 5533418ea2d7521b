"""The experiment plot: scores per round and the vote matrix, as one PNG.

matplotlib is imported inside the functions, so importing colearning never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colearning.core.exceptions import StoreDamagedError, require_extra
from colearning.core.protocol import Reason
from colearning.core.records import RoundRecord
from colearning.core.store import opened

# vote matrix cell codes
NOT_ASKED, REJECT, APPROVE, ABSTAIN, PROPOSER = 0, 1, 2, 3, 4
CELL_COLORS = ["#f4f4f4", "#d9534f", "#5cb85c", "#9e9e9e", "#ffffff"]
#: With more learners than this, the vote matrix shows only those asked in some round,
#: and the score panel the spread of scores instead of a line per learner.
MANY_LEARNERS = 40
#: Tallest the vote matrix gets, in inches (one row per learner below that).
MAX_MATRIX_INCHES = 12.0


def vote_matrix(rounds: Sequence[RoundRecord], learner_ids: Sequence[str]) -> np.ndarray:
    """Learner x round codes of the votes on each round's candidate: approve, reject,
    abstain (failed/timed out), not asked (not in the round's committee, skipped rounds,
    malformed proposals, screened rounds with nothing left to combine) or proposer (the
    single proposer, who scores its own proposal without voting; in aggregate and
    screened rounds proposers vote). A round's record holds only the learners it asked;
    everyone else is not asked."""
    index = {lid: i for i, lid in enumerate(learner_ids)}
    matrix = np.full((len(learner_ids), len(rounds)), NOT_ASKED, dtype=np.int8)
    for col, record in enumerate(rounds):
        single_proposer = record.proposer_id if record.mode == "single" else None
        for vote in record.votes:
            row = index[vote.learner_id]
            if vote.reason is Reason.PROPOSER or vote.learner_id == single_proposer:
                matrix[row, col] = PROPOSER
            elif vote.error is not None and record.status != "skipped":
                matrix[row, col] = ABSTAIN
            elif vote.vote is True:
                matrix[row, col] = APPROVE
            elif vote.vote is False:
                matrix[row, col] = REJECT
    return matrix


def _asked(rounds: Sequence[RoundRecord], learner_ids: Sequence[str]) -> list[str]:
    """The learners that some round asked (or that proposed), in experiment order."""
    asked = {v.learner_id for rec in rounds for v in rec.votes}
    asked |= {p for rec in rounds for p in rec.proposer_ids}
    return [lid for lid in learner_ids if lid in asked]


def _scores(rounds: Sequence[RoundRecord], learner_ids: Sequence[str], field: str) -> np.ndarray:
    index = {lid: i for i, lid in enumerate(learner_ids)}
    values = np.full((len(learner_ids), len(rounds)), np.nan)
    for col, record in enumerate(rounds):
        for vote in record.votes:
            score = getattr(vote, field)
            if score is not None:
                values[index[vote.learner_id], col] = score
    return values


def _shared_model_mean(rounds: Sequence[RoundRecord], learner_ids: Sequence[str]) -> np.ndarray:
    """Mean test score of the shared model after each round: an accepted proposal's
    scores carry forward until the next acceptance (unknown before the first)."""
    tests = _scores(rounds, learner_ids, "test_score")
    out = np.full(len(rounds), np.nan)
    current = np.nan
    for col, record in enumerate(rounds):
        if record.accepted and not np.isnan(tests[:, col]).all():
            current = float(np.nanmean(tests[:, col]))
        out[col] = current
    return out


def plot_rounds(
    rounds: Sequence[RoundRecord],
    learner_ids: Sequence[str],
    output: str | os.PathLike[str],
    *,
    title: str = "",
    summary: dict[str, Any] | None = None,
) -> Path:
    """Write the two-panel PNG for ``rounds`` to ``output`` and return its path."""
    require_extra("matplotlib", "report", "colearn plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    n, r = len(learner_ids), len(rounds)
    many = n > MANY_LEARNERS
    shown = _asked(rounds, learner_ids) if many else list(learner_ids)
    rows = max(1, len(shown))
    matrix_inches = min(MAX_MATRIX_INCHES, max(1.2, 0.3 * rows))
    x = np.array([rec.round_index for rec in rounds])
    fig, (ax_s, ax_v) = plt.subplots(
        2,
        1,
        figsize=(max(8.0, 0.35 * r + 3), 5.5 + matrix_inches),
        gridspec_kw={"height_ratios": [3, matrix_inches]},
        constrained_layout=True,
    )

    # -- panel 1: each learner's scores of each round's proposal, and their means -------
    colors = plt.get_cmap("tab10")
    for field, style, label in (("vote_score", ":", "vote"), ("test_score", "-", "test")):
        values = _scores(rounds, learner_ids, field)
        if np.isnan(values).all():
            continue
        if many:  # thousands of lines say nothing: the middle 80% of the scores
            band = ~np.isnan(values).all(axis=0)
            with np.errstate(all="ignore"):
                low = np.nanpercentile(values[:, band], 10, axis=0)
                high = np.nanpercentile(values[:, band], 90, axis=0)
            ax_s.fill_between(
                x[band], low, high, color="grey", alpha=0.2, label=f"{label} scores, 10-90%"
            )
        for i in range(0 if many else n):
            ax_s.plot(x, values[i], style, color=colors(i % 10), alpha=0.45, linewidth=1)
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(np.isnan(values).all(axis=0), 0.0, values), axis=0)
        mean[np.isnan(values).all(axis=0)] = np.nan
        ax_s.plot(x, mean, style, color="black", linewidth=2.2, label=f"mean {label} score")
        accepted = np.array([rec.accepted for rec in rounds])
        ax_s.plot(x[accepted], mean[accepted], "o", color="black", markersize=4)
    shared = _shared_model_mean(rounds, learner_ids)
    if not np.isnan(shared).all():
        ax_s.step(
            x,
            shared,
            where="post",
            color="#1f5fbf",
            linewidth=2.5,
            label="shared model, mean test score",
        )
    handles, _ = ax_s.get_legend_handles_labels()
    handles += [
        Line2D([], [], color=colors(i % 10), label=lid)
        for i, lid in enumerate([] if many else learner_ids[:10])
    ]
    handles.append(Line2D([], [], marker="o", color="black", linestyle="", label="accepted round"))
    ax_s.legend(handles=handles, fontsize=7, ncol=2, loc="best")
    metric = (summary or {}).get("metric", "score")
    ax_s.set_ylabel(f"{metric} of the round's candidate")
    ax_s.set_xlabel("round")
    ax_s.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_s.set_title(title or "scores per round (dotted: vote set, solid: test set)")
    ax_s.grid(alpha=0.3)

    # -- panel 2: the vote matrix -------------------------------------------------------
    matrix = vote_matrix(rounds, shown)
    ax_v.imshow(
        matrix,
        cmap=ListedColormap(CELL_COLORS),
        vmin=0,
        vmax=len(CELL_COLORS) - 1,
        aspect="auto",
        interpolation="nearest",
    )
    row_of = {lid: i for i, lid in enumerate(shown)}
    combined = False
    for col, record in enumerate(rounds):
        status_marker = {"accepted": ("*", "#1f5fbf", 11), "rejected": ("X", "black", 8)}.get(
            record.status, ("s", "#f0ad4e", 7)
        )
        if record.mode == "single":
            row = row_of.get(record.proposer_id)
            if row is not None:
                marker, color, size = status_marker
                ax_v.plot(col, row, marker=marker, color=color, markersize=size)
            continue
        # several proposals: a dot for each one combined into the candidate, a cross for
        # each left out (screened out, failed, malformed); the round's fate above the grid
        combined = True
        sources = set(record.candidate.sources) if record.candidate else set()
        for p in record.proposals:
            if p.proposer_id not in row_of:
                continue
            kept = p.proposer_id in sources
            ax_v.plot(
                col,
                row_of[p.proposer_id],
                marker="o" if kept else "x",
                color="#1f5fbf" if kept else "black",
                markersize=4 if len(shown) <= 40 else 2,
            )
        marker, color, size = status_marker
        ax_v.plot(col, -1, marker=marker, color=color, markersize=size, clip_on=False)
    ax_v.set_ylim(len(shown) - 0.5, -1.6 if combined else -0.5)
    if many:
        ax_v.set_yticks([])
        ax_v.set_ylabel(f"{len(shown):,} of {n:,} learners (those asked)")
    else:
        ax_v.set_yticks(range(n), list(learner_ids) if n <= 40 else [""] * n)
    step = max(1, r // 25)
    ax_v.set_xticks(range(0, r, step), [str(v) for v in x[::step]])
    ax_v.set_xlabel("round")
    sizes = sorted({len(rec.committee) for rec in rounds if rec.committee is not None})
    committee = f"; a committee of {', '.join(map(str, sizes))} votes" if sizes else ""
    ax_v.set_title(
        "votes (star accepted, X rejected, square skipped"
        + ("; o combined, x left out" if combined else "")
        + ")"
        + committee,
        loc="left",
    )
    ax_v.legend(
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
    budgets = (summary or {}).get("dp_budgets") or {}
    if budgets:
        spent = ", ".join(
            f"{lid} {b['consumed_epsilon']:.2f}/{b['target_epsilon']:.2f}"
            for lid, b in budgets.items()
        )
        ax_v.set_xlabel(f"round\nprivacy spent (epsilon used/target): {spent}", fontsize=8)

    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_experiment(
    directory: str | os.PathLike[str], output: str | os.PathLike[str] | None = None
) -> Path:
    """Plot the experiment stored in ``directory`` (default output ``DIR/plot.png``)."""
    with opened(directory) as store:
        rounds = store.rounds()
        ids = store.learner_ids
        summary = _checked_summary(store.get_meta("summary"), directory)
        config = store.config
    title = f"{config.get('task', 'experiment')}: {len(ids)} learners, {len(rounds)} rounds"
    return plot_rounds(
        rounds, ids, output or Path(directory) / "plot.png", title=title, summary=summary
    )


def _checked_summary(summary: Any, directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The stored summary if the plot can use it (it is not part of the chain)."""
    if summary is None:
        return None
    budgets = summary.get("dp_budgets") if isinstance(summary, dict) else None
    ok = (
        isinstance(summary, dict)
        and isinstance(summary.get("metric", ""), str)
        and (budgets is None or isinstance(budgets, dict))
        and all(
            isinstance(b, dict)
            and all(
                isinstance(b.get(k), (int, float)) and not isinstance(b.get(k), bool)
                for k in ("consumed_epsilon", "target_epsilon")
            )
            for b in (budgets or {}).values()
        )
    )
    if not ok:
        raise StoreDamagedError(
            f"{directory} is damaged: its stored summary is not one colearning wrote (the "
            f"rounds are intact); run `colearn verify {directory}` for every problem found"
        )
    return summary  # type: ignore[no-any-return]
