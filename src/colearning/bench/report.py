"""Tables and plots of ``colearn bench collaboration``'s raw numbers (``OUT/raw``).

Means over the seeds of each (task, learners, partition, rounds); every number is the
judge's accuracy on the union of all learners' test splits. "FedAvg at equal local
training" is FedAvg's accuracy after the round at which its clients had trained as
many epochs in total as the mode had (FedAvg trains every client every round).
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from colearning.core.exceptions import require_extra

#: How close to pooled training the best mode must come (the issue's goal).
POOLED_MARGIN = 0.02


def load_raw(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(Path(out, "raw").glob("*.json"))]


def _group(results: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], list[Mapping[str, Any]]]:
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in results:
        c = r["cell"]
        groups.setdefault((c["task"], c["learners"], c["partition"], c["rounds"]), []).append(r)
    return groups


def fedavg_at_epochs(flower: Mapping[str, Any], epochs: float) -> float:
    """FedAvg's score after the last round whose total epochs do not exceed ``epochs``."""
    per_round = float(flower["epochs_per_round"])
    scores = flower["scores"]
    r = min(len(scores) - 1, math.floor(epochs / per_round + 1e-9))
    return float(scores[r])


def summarize_cell(r: Mapping[str, Any]) -> dict[str, Any]:
    """One seed's finals: each mode, best alone, pooled, FedAvg (equal rounds, and at
    each mode's total epochs)."""
    ours = r["ours"]
    row: dict[str, Any] = {"modes": {}}
    for name, m in ours["modes"].items():
        row["modes"][name] = {
            "final": m["scores"][-1],
            "epochs": m["epochs"][-1],
            "accepted": m["accepted"],
            "rounds": len(m["scores"]) - 1,
            "proposals": m["proposals"],
            "fedavg_at_epochs": None
            if not r.get("flower")
            else fedavg_at_epochs(r["flower"], m["epochs"][-1]),
        }
    row["best_alone"] = max(ours["alone"]["final"])
    row["pooled"] = ours["pooled"]["scores"][-1]
    row["fedavg"] = r["flower"]["scores"][-1] if r.get("flower") else None
    row["peak_mib"] = ours["peak_rss_mib"]
    row["flower_peak_mib"] = r["flower"]["peak_rss_mib"] if r.get("flower") else None
    return row


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.mean(got) if got else None


def _fmt_partial(value: float | None, mode: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """A mode's mean, with the count of seeds it covers where that is not all of them."""
    played = sum(mode in row["modes"] for row in rows)
    if played == 0:
        return "-"
    note = "" if played == len(rows) else f" ({played} of {len(rows)} seeds)"
    return _fmt(value) + note


def _fmt_accepted(mode: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """A mode's accepted rounds of its rounds over the row's seeds; "-" where never played."""
    played = [row["modes"][mode] for row in rows if mode in row["modes"]]
    if not played:
        return "-"
    return f"{sum(m['accepted'] for m in played)} of {sum(m['rounds'] for m in played)}"


def _at_least(value: float | None, bound: float | None) -> bool:
    """``value >= bound`` on figures rounded to 1e-9: accuracies are ratios of counts and
    their means must not pass or fail a goal on the last bits of a float."""
    return value is not None and bound is not None and round(value, 9) >= round(bound, 9)


def accuracy_table(results: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table of the accuracy grid, one row per (task, learners, partition)."""
    ran = [r for r in results if "ours" in r]
    skipped = [r for r in results if "error" in r]
    modes: list[str] = []
    for r in ran:
        modes += [m for m in r["ours"]["modes"] if m not in modes]
    head = (
        "| task | learners | partition | rounds | seeds | "
        + " | ".join(modes)
        + " | best alone | pooled | FedAvg | FedAvg at single's epochs | best mode | goals "
        "(pooled-2, > alone, >= FedAvg rounds, >= FedAvg epochs) | accepted rounds ("
        + "/".join(modes)
        + ") |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for key, group in sorted(_group(ran).items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        task, n, partition, rounds = key
        rows = [summarize_cell(r) for r in group]
        seeds = ",".join(str(r["cell"]["seed"]) for r in group)
        finals = {
            m: _mean([row["modes"][m]["final"] for row in rows if m in row["modes"]]) for m in modes
        }
        alone = _mean([row["best_alone"] for row in rows])
        pooled = _mean([row["pooled"] for row in rows])
        fedavg = _mean([row["fedavg"] for row in rows])
        # a mode played on only some of the row's seeds is shown, not compared: its mean
        # is over other seeds than the pooled, alone and FedAvg means
        everywhere = [m for m in modes if all(m in row["modes"] for row in rows)]
        best = max((m for m in everywhere if finals[m] is not None), key=lambda m: finals[m] or 0.0)
        best_epochs = _mean([row["modes"][best]["fedavg_at_epochs"] for row in rows])
        single_epochs = (
            _mean([row["modes"]["single"]["fedavg_at_epochs"] for row in rows])
            if "single" in everywhere
            else None
        )
        b = finals[best] or 0.0
        goals = [
            _at_least(b, None if pooled is None else pooled - POOLED_MARGIN),
            alone is not None and round(b, 9) > round(alone, 9),
            _at_least(b, fedavg),
            _at_least(b, best_epochs),
        ]
        accepted = "/".join(_fmt_accepted(m, rows) for m in modes)
        lines.append(
            f"| {task} | {n} | {partition} | {rounds} | {seeds} | "
            + " | ".join(_fmt_partial(finals[m], m, rows) for m in modes)
            + f" | {_fmt(alone)} | {_fmt(pooled)} | {_fmt(fedavg)} | {_fmt(single_epochs)} "
            f"| {best} | {' '.join('yes' if g else 'NO' for g in goals)} | {accepted} |"
        )
    for r in skipped:
        c = r["cell"]
        lines.append(
            f"| {c['task']} | {c['learners']} | {c['partition']} | {c['rounds']} | "
            f"{c['seed']} | not run: {r['error']} |"
        )
    return "\n".join(lines) + "\n"


def memory_lines(results: Sequence[Mapping[str, Any]]) -> str:
    """Peak memory of both sides (whole process trees), per cell size, as ratios."""
    lines = [
        "| task | learners | colearning peak MiB | Flower peak MiB | Flower / colearning |",
        "|---|---|---|---|---|",
    ]
    for key, group in sorted(_group([r for r in results if "ours" in r]).items()):
        rows = [summarize_cell(r) for r in group]
        a = _mean([row["peak_mib"] for row in rows])
        b = _mean([row["flower_peak_mib"] for row in rows])
        if a is None or b is None or key[2] != "iid":
            continue
        lines.append(f"| {key[0]} | {key[1]} | {a:.0f} | {b:.0f} | {b / a:.1f} x |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def plot_accuracy(results: Sequence[Mapping[str, Any]], out: str | os.PathLike[str]) -> list[Path]:
    """One PNG per task: accuracy by round and by total local epochs, means over seeds."""
    require_extra("matplotlib", "report", "colearn bench collaboration's plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    ran = [r for r in results if "ours" in r]
    for task in sorted({r["cell"]["task"] for r in ran}):
        groups = sorted((k, g) for k, g in _group(ran).items() if k[0] == task)
        fig, axes = plt.subplots(
            len(groups), 2, figsize=(11, 3.2 * len(groups)), squeeze=False, constrained_layout=True
        )
        for row, (key, group) in enumerate(groups):
            _, n, partition, rounds = key
            ax_r, ax_e = axes[row]
            x = np.arange(rounds + 1)
            curves: dict[str, tuple[Any, Any]] = {}
            for name in group[0]["ours"]["modes"]:
                if not all(name in g["ours"]["modes"] for g in group):
                    continue  # a curve is the mean of every seed of the row
                scores = np.mean([g["ours"]["modes"][name]["scores"] for g in group], axis=0)
                epochs = np.mean([g["ours"]["modes"][name]["epochs"] for g in group], axis=0)
                curves[f"colearning {name}"] = (scores, epochs)
            if all(g.get("flower") for g in group):
                scores = np.mean([g["flower"]["scores"] for g in group], axis=0)
                per = group[0]["flower"]["epochs_per_round"]
                curves["Flower FedAvg"] = (scores, x * per)
            epochs_per = group[0]["ours"]["epochs_per_proposal"]
            pooled = np.mean([g["ours"]["pooled"]["scores"] for g in group], axis=0)
            alone = np.mean([g["ours"]["alone"]["best_by_round"] for g in group], axis=0)
            # one pass over the pooled data is one pass over every party's share
            curves["pooled data"] = (pooled, x * epochs_per * n)
            curves["best learner alone"] = (alone, x * epochs_per)
            for label, (scores, epochs) in curves.items():
                style = "--" if label in ("pooled data", "best learner alone") else "-"
                ax_r.plot(x[: len(scores)], scores, style, label=label)
                ax_e.plot(np.maximum(epochs, 1), scores, style, label=label)
            for ax in (ax_r, ax_e):
                ax.set_ylim(max(0.0, float(np.min(alone)) - 0.05), 1.0)
                ax.grid(alpha=0.3)
                ax.set_title(f"{task}, {n} learners, {partition}", fontsize=9)
            ax_r.set_xlabel("round")
            ax_r.set_ylabel("test accuracy (judge)")
            ax_e.set_xscale("log")
            ax_e.set_xlabel("local epochs, summed over parties (pooled: n per pass)")
            if row == 0:
                ax_r.legend(fontsize=7, title="aggregate = FedAvg + a vote", title_fontsize=7)
        path = Path(out) / f"accuracy-{task}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


#: What each mode column is, under the table (the settings: ``collaboration.MODES``).
MODES_LEGEND = (
    "Modes: `single` (one proposer a round), `aggregate` (every learner proposes, the "
    "train-row-weighted mean is voted on), `screened` (each proposal voted on first), "
    "`momentum` (aggregate with a server step: `--server-momentum 0.9`, docs/modes.md), "
    "`momentum-0.5` (the same with `--server-momentum 0.5`). "
    "Made by `colearn bench collaboration`; the commands are in the README's "
    '"How it compares".\n'
)


def write_reports(out: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """``OUT/accuracy.md`` and the plots, from ``OUT/raw``."""
    results = load_raw(out)
    md = Path(out) / "accuracy.md"
    md.write_text(
        accuracy_table(results)
        + "\n"
        + MODES_LEGEND
        + "\nPeak memory (IID cells):\n\n"
        + memory_lines(results)
    )
    plots = plot_accuracy(results, out) if any("ours" in r for r in results) else []
    return md, plots
