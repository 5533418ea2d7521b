"""Tables, JSON and a plot of ``colearn bench robustness``'s raw numbers (``OUT/raw``).

Every figure is a mean over the seeds run; "vs clean" is the protocol's accuracy minus
the clean run's on the same partitions and seeds, in the same round mode (in points).
Raw cells from before round modes existed are ``single`` ones. The goal (issue 9): at
40% malicious learners, accuracy within 1 point of clean for every attack, no malicious
proposal accepted, backdoor success under 5%.
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

#: The goal's bounds: accuracy drop (points), backdoor success.
GOAL_POINTS = 1.0
GOAL_BACKDOOR = 0.05


def load_raw(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(Path(out, "raw").glob("*.json"))]


def _mode(cell: Mapping[str, Any]) -> str:
    return str(cell.get("mode", "single"))


def _partition(cell: Mapping[str, Any]) -> str:
    """The partition as the tables show it, with the split when it is not the default
    (cells of another split are other rows, compared with their own clean run)."""
    split = cell.get("split")
    return str(cell["partition"]) if split is None else f"{cell['partition']} split {split}"


def _mean(values: Sequence[float]) -> float:
    return statistics.mean(values) if values else math.nan


def _deduplicated(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One result per cell and seed: a cell run with the defences beside the vote
    replaces the same cell run for the vote alone (the vote's figures are the same)."""
    best: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for r in results:
        c = r["cell"]
        key = (
            c["task"],
            c["learners"],
            _partition(c),
            c["seed"],
            c["rounds"],
            c["threshold"],
            _mode(c),
            c["share"],
            c["attack"],
        )
        if key not in best or len(r["defences"]) > len(best[key]["defences"]):
            best[key] = r
    return list(best.values())


def summarize(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, learners, partition, rounds, threshold, mode, share, attack)."""
    results = _deduplicated(results)
    clean: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for r in results:
        c = r["cell"]
        if c["attack"] is None:
            clean[
                (
                    c["task"],
                    c["learners"],
                    _partition(c),
                    c["seed"],
                    c["rounds"],
                    c["threshold"],
                    _mode(c),
                )
            ] = r
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in results:
        c = r["cell"]
        key = (
            c["task"],
            c["learners"],
            _partition(c),
            c["rounds"],
            c["threshold"],
            _mode(c),
            c["share"],
            c["attack"] or "none",
        )
        groups.setdefault(key, []).append(r)
    rows = []
    for key, rs in sorted(groups.items(), key=lambda kv: (*kv[0][:7], _order(kv[0][7]))):
        task, n, partition, rounds, threshold, mode, share, attack = key
        row_variants = {}
        for variant, field in _fields(rs):
            if not all(field in r for r in rs):
                continue
            drops = []
            for r in rs:
                c = r["cell"]
                ref = clean.get((task, n, partition, c["seed"], rounds, threshold, mode))
                if ref is not None and field in ref:
                    drops.append(100 * (ref[field]["final"] - r[field]["final"]))
            p = [r[field] for r in rs]
            row_variants[variant] = {
                "final": _mean([x["final"] for x in p]),
                "final_sd": statistics.stdev([x["final"] for x in p]) if len(p) > 1 else 0.0,
                "drop_points": _mean(drops) if drops else None,
                "worst_drop_points": max(drops) if drops else None,
                "backdoor": _mean([x["backdoor"] for x in p]),
                "malicious_accepted": sum(x["malicious_accepted"] for x in p),
                "malicious_proposals": sum(x["malicious_proposals"] for x in p),
                "honest_rejected": sum(x["honest_rejected"] for x in p),
                "honest_proposals": sum(x["honest_proposals"] for x in p),
            }
        defences: dict[str, dict[str, float]] = {}
        for name in dict.fromkeys(d for r in rs for d in r["defences"]):
            got = [r["defences"][name] for r in rs if name in r["defences"]]
            defences[name] = {
                "final": _mean([g["final"] for g in got]),
                "backdoor": _mean([g["backdoor"] for g in got]),
                "seeds": len(got),
            }
        rows.append(
            {
                "task": task,
                "learners": n,
                "partition": partition,
                "rounds": rounds,
                "threshold": threshold,
                "mode": mode,
                "share": share,
                "malicious": rs[0]["cell"]["malicious"],
                "attack": attack,
                "seeds": sorted(r["cell"]["seed"] for r in rs),
                **row_variants["vote"],
                "variants": row_variants,
                "defences": defences,
            }
        )
    return rows


def _fields(results: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(variant, raw field)`` of every protocol variant in ``results``: the vote
    (``protocol``) first, then the stricter voters in the benchmark's order."""
    from colearning.bench.robustness import VARIANTS

    return [("vote", "protocol")] + [(v, v) for v in VARIANTS[1:] if any(v in r for r in results)]


def _order(attack: str) -> int:
    from colearning.bench.robustness import ATTACK_SPECS

    names = ["none", *ATTACK_SPECS]
    return names.index(attack) if attack in names else len(names)


def meets_goal(row: Mapping[str, Any]) -> bool:
    """Whether a row meets the goal (accuracy within 1 point of clean on average, no
    malicious proposal accepted, backdoor success under 5%). Accuracies are ratios of
    counts, so the figures are compared rounded to 1e-9: a drop of exactly one point
    passes whatever its last bits."""
    drop = row["drop_points"]
    return bool(
        (drop is None or round(float(drop), 9) <= GOAL_POINTS)
        and row["malicious_accepted"] == 0
        and round(float(row["backdoor"]), 9) < GOAL_BACKDOOR
    )


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table: the vote's figures, each stricter voter's (``vote+margin``
    always, as before; ``vote+perclass`` where played), then each defence's accuracy
    (and backdoor success on backdoor rows)."""
    names: list[str] = []
    for r in rows:
        names += [d for d in r["defences"] if d not in names]
    strict = ["vote+margin"] + [
        v for v in ("vote+perclass",) if any(v in r["variants"] for r in rows)
    ]
    head = (
        "| task | n | partition | mode | malicious | attack | seeds | vote accuracy "
        "| vs clean (pts) "
        "| backdoor | malicious accepted | honest rejected | goal |"
        + "".join(
            f" {v}: accuracy, vs clean, malicious accepted, honest rejected, goal |" for v in strict
        )
        + "".join(f" {d} |" for d in names)
    )
    lines = [head, "|" + "---|" * (13 + len(strict) + len(names))]
    for r in rows:
        drop = "-" if r["drop_points"] is None else f"{0.0 - r['drop_points']:+.1f}"
        mal = (
            f"{r['malicious_accepted']}/{r['malicious_proposals']}"
            if r["malicious_proposals"]
            else "-"
        )
        hon = f"{r['honest_rejected']}/{r['honest_proposals']}"
        goal = "-" if r["attack"] == "none" else ("yes" if meets_goal(r) else "**no**")
        cells = []
        for d in names:
            got = r["defences"].get(d)
            if got is None:
                cells.append("-")
                continue
            text = f"{got['final']:.3f}"
            if r["attack"] in ("backdoor",) or "backdoor" in r["attack"]:
                text += f" (bd {100 * got['backdoor']:.0f}%)"
            cells.append(text)
        lines.append(
            f"| {r['task']} | {r['learners']} | {r['partition']} | {r['mode']} | "
            f"{100 * r['share']:.0f}% ({r['malicious']}) | {r['attack']} | {len(r['seeds'])} | "
            f"{r['final']:.3f} ± {r['final_sd']:.3f} | {drop} | {100 * r['backdoor']:.1f}% | "
            f"{mal} | {hon} | {goal} |"
            + "".join(f" {_variant_cell(r, v)} |" for v in strict)
            + "".join(f" {c} |" for c in cells)
        )
    return "\n".join(lines) + "\n"


def mode_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The round modes side by side: one row per (task, learners, partition, rounds,
    threshold, share, attack), one column per mode (single first), each "accuracy (vs
    clean) malicious accepted, backdoor, goal"; "-" where a mode did not play the cell."""
    modes = sorted(dict.fromkeys(r["mode"] for r in rows), key=lambda m: m != "single")
    keys: dict[tuple[Any, ...], dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        base = (r["task"], r["learners"], r["partition"], r["rounds"], r["threshold"])
        keys.setdefault((*base, r["share"], r["malicious"], r["attack"]), {})[r["mode"]] = r
    head = "| task | n | partition | rounds | threshold | malicious | attack |" + "".join(
        f" {m} |" for m in modes
    )
    lines = [head, "|" + "---|" * (7 + len(modes))]
    for key, by_mode in keys.items():
        task, n, partition, rounds, threshold, share, malicious, attack = key
        cells: list[str] = []
        for m in modes:
            got = by_mode.get(m)
            if got is None:
                cells.append("-")
                continue
            r = got
            drop = "" if r["drop_points"] is None else f" ({0.0 - r['drop_points']:+.1f})"
            mal = (
                f", {r['malicious_accepted']}/{r['malicious_proposals']}"
                if r["malicious_proposals"]
                else ""
            )
            bd = f", bd {100 * r['backdoor']:.0f}%" if "backdoor" in attack else ""
            goal = "" if attack == "none" else (", yes" if meets_goal(r) else ", **no**")
            cells.append(f"{r['final']:.3f}{drop}{mal}{bd}{goal}")
        lines.append(
            f"| {task} | {n} | {partition} | {rounds} | {threshold:g} "
            f"| {100 * share:.0f}% ({malicious}) "
            f"| {attack} |" + "".join(f" {c} |" for c in cells)
        )
    return "\n".join(lines) + "\n"


def _variant_cell(row: Mapping[str, Any], variant: str) -> str:
    v = row["variants"].get(variant)
    if v is None:
        return "-"
    drop = "-" if v["drop_points"] is None else f"{0.0 - v['drop_points']:+.1f}"
    mal = (
        f"{v['malicious_accepted']}/{v['malicious_proposals']}" if v["malicious_proposals"] else "-"
    )
    goal = "" if row["attack"] == "none" else (", yes" if meets_goal(v) else ", **no**")
    bd = f", bd {100 * v['backdoor']:.1f}%" if "backdoor" in row["attack"] else ""
    return (
        f"{v['final']:.3f}, {drop}, {mal}, {v['honest_rejected']}/{v['honest_proposals']}{bd}{goal}"
    )


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Accuracy by malicious share, one panel per attack: the vote and each defence,
    averaged over every task, size and partition run."""
    require_extra("matplotlib", "report", "plotting the robustness benchmark")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = [a for a in dict.fromkeys(r["attack"] for r in rows) if a != "none"]
    if not attacks:
        return None
    clean = [r for r in rows if r["attack"] == "none"]
    cols = min(4, len(attacks))
    nrows = math.ceil(len(attacks) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), squeeze=False)
    names: list[str] = []
    for r in rows:
        names += [d for d in r["defences"] if d not in names]
    modes = [m for m in dict.fromkeys(r["mode"] for r in rows) if m != "single"]
    for ax, attack in zip(axes.flat, attacks, strict=False):
        these = clean + [r for r in rows if r["attack"] == attack]
        shares = sorted({r["share"] for r in these})
        strict = [
            v for v in ("vote+margin", "vote+perclass") if any(v in r["variants"] for r in rows)
        ]
        for label in ["vote", *strict, *(f"vote {m}" for m in modes), *names]:
            ys = []
            for s in shares:
                at = [r for r in these if r["share"] == s]
                vals = [_plotted(r, label) for r in at]
                got = [v for v in vals if v is not None and not math.isnan(v)]
                ys.append(_mean(got) if got else math.nan)
            style: dict[str, Any] = {}
            if label == "vote":
                style = {"linewidth": 2.5, "color": "black"}
            elif label == "vote+margin":
                style = {"linewidth": 2.0, "color": "black", "linestyle": "--"}
            elif label == "vote+perclass":
                style = {"linewidth": 2.0, "color": "black", "linestyle": ":"}
            ax.plot([100 * s for s in shares], ys, marker="o", label=label, **style)
        ax.set_title(attack)
        ax.set_xlabel("malicious learners (%)")
        ax.set_ylabel("clean test accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(attacks) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plotted(row: Mapping[str, Any], label: str) -> float | None:
    """A row's accuracy under a plot label: ``vote`` and ``vote+margin`` (single
    rounds), ``vote MODE`` (another round mode), or a defence's name."""
    if label.startswith("vote "):
        got = {"final": row["final"]} if row["mode"] == label[5:] else {}
    elif label.startswith("vote"):
        got = row["variants"].get(label, {}) if row["mode"] == "single" else {}
    else:
        got = row["defences"].get(label, {})
    value = got.get("final")
    return None if value is None else float(value)


def write_reports(out: str | os.PathLike[str]) -> tuple[Path, Path, Path | None]:
    """``OUT/robustness.md`` (with the modes side by side after the full table when
    more than one mode was played), ``OUT/robustness.json`` and ``OUT/robustness.png``."""
    out = Path(out)
    rows = summarize(load_raw(out))
    md = out / "robustness.md"
    text = table(rows)
    if len({r["mode"] for r in rows}) > 1:
        text += "\n" + mode_table(rows)
    md.write_text(text)
    js = out / "robustness.json"
    js.write_text(json.dumps(rows, indent=1))
    png = plot(rows, out / "robustness.png") if rows else None
    return md, js, png
