"""What ``colearn run`` shows: a live progress bar on stderr, a row per round, a summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from colearning.core.records import RoundRecord

ROW = "{:>5}  {:<11} {:<9} {:>7}  {:>10}  {:>10}  {:>7}"
#: Past this many learners the summary shows the spread instead of a row each.
MAX_ROWS = 10


def _fmt(score: float | None, width: int = 10) -> str:
    return "-".rjust(width) if score is None else f"{score:{width}.4f}"


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


class ProgressBar:
    """A one-line bar redrawn in place; silent when the stream is not a terminal."""

    def __init__(self, stream: TextIO, total: int, done: int = 0) -> None:
        self.stream = stream
        self.total = max(total, 0)
        self.done = done
        self.accepted = 0
        self.started = time.perf_counter()
        self.first = done
        self.enabled = stream.isatty()

    def advance(self, record: RoundRecord) -> None:
        self.done += 1
        self.accepted += record.accepted
        self.draw()

    def draw(self) -> None:
        if not self.enabled or self.total == 0:
            return
        width = 30
        filled = int(width * self.done / self.total)
        played = self.done - self.first
        rate = (time.perf_counter() - self.started) / played if played else 0.0
        eta = rate * (self.total - self.done)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} rounds"
            f" · {self.accepted} accepted · {rate:.2f} s/round · eta {eta:.0f} s"
        )
        self.stream.write("\r\033[K" + line)
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


class RoundTable:
    """Observer that prints one row per committed round and keeps the bar under it."""

    def __init__(self, out: TextIO | None, bar: ProgressBar) -> None:
        self.out = out
        self.bar = bar
        self._header_done = False

    def header(self) -> None:
        if self.out is not None and not self._header_done:
            self._header_done = True
            self.out.write(
                ROW.format(
                    "round", "proposer", "status", "votes", "vote score", "test score", "secs"
                )
                + "\n"
            )

    def __call__(self, record: RoundRecord) -> None:
        if self.out is not None:
            self.bar.clear()
            self.header()
            voters = [v for v in record.votes if v.vote is not None]
            votes = "-" if record.status == "skipped" else f"{record.approvals}/{record.eligible}"
            proposer = record.proposer_id
            if record.mode != "single":  # several proposals: how many were combined
                used = len(record.candidate.sources) if record.candidate else 0
                proposer = f"{used} of {len(record.proposals)}"
            self.out.write(
                ROW.format(
                    record.round_index,
                    proposer,
                    record.status,
                    votes,
                    _fmt(_mean([v.vote_score for v in voters])),
                    _fmt(_mean([v.test_score for v in record.votes])),
                    f"{record.timings.total:.2f}",
                )
                + "\n"
            )
            self.out.flush()
        self.bar.advance(record)


def format_summary(summary: dict[str, Any], directory: str | None) -> str:
    """The end-of-run comparison as a small table."""
    metric = summary["metric"]
    better = "higher" if summary["higher_is_better"] else "lower"
    lines = [
        "",
        f"{summary['task']}: {summary['learners']} learners, {summary['rounds']} rounds "
        f"({summary['accepted']} accepted, {summary['rejected']} rejected, "
        f"{summary['skipped']} skipped)",
    ]
    if summary.get("stopped_early"):
        lines.append(f"stopped early: {summary['stopped_early']}")
    lines.append(f"{'model':<34}{metric} on all learners' test data ({better} is better)")
    rows: list[tuple[str, float | None]] = [
        ("initial model", summary["initial"]["score"]),
        ("collective model", summary["collective"]["score"]),
    ]
    if "individual" in summary:
        alone = summary["individual"]
        if len(alone) <= MAX_ROWS:
            rows += [(f"{lid} alone", s) for lid, s in alone.items()]
        else:  # thousands of learners: the spread, not a row each
            scores = sorted(s for s in alone.values() if s is not None)
            if scores:
                rows.append((f"median of {len(alone):,} learners alone", scores[len(scores) // 2]))
                worst = scores[0] if summary["higher_is_better"] else scores[-1]
                rows.append(("worst learner alone", worst))
        rows.append(("best learner alone", summary["best_individual"]["score"]))
        rows.append(("pooled data (upper reference)", summary["pooled"]["score"]))
    lines += [f"{name:<34}{_fmt(score, 8)}" for name, score in rows]
    budgets = summary.get("dp_budgets", {})
    shown = budgets if len(budgets) <= MAX_ROWS else {}
    for lid, dp in shown.items():
        lines.append(
            f"{lid}: privacy spent epsilon {dp['consumed_epsilon']:.3f} of "
            f"{dp['target_epsilon']:.3f} (delta {dp['target_delta']:g})"
        )
    if budgets and not shown:
        most = max(budgets.values(), key=lambda dp: dp["consumed_epsilon"])
        lines.append(
            f"{len(budgets):,} learners spent privacy budget; the most: epsilon "
            f"{most['consumed_epsilon']:.3f} of {most['target_epsilon']:.3f}"
        )
    if summary.get("committee"):
        lines.append(f"each round voted on by a committee of {summary['committee']}")
    ledger = summary.get("ledger")
    if ledger:
        where = ledger.get("chain_url") or "the embedded chain"
        lines.append(
            f"decided by the ledger contract {ledger.get('contract')} on {where}; "
            f"audit with: colearn ledger verify {directory or 'DIR'}"
        )
    if directory:
        lines.append(f"experiment saved in {directory}")
    return "\n".join(lines)


def stderr() -> TextIO:
    return sys.stderr
