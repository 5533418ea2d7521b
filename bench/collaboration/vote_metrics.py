"""Round modes of the accuracy grid under several vote metrics (and local epochs), side
by side.

    python bench/collaboration/vote_metrics.py --tasks digits-mlp --learners 20 \\
        --partitions iid --seeds 0 1 2 --modes aggregate momentum \\
        --metrics log_loss calibrated_log_loss --out bench/collaboration/results-calibrated
    python bench/collaboration/vote_metrics.py --tasks digits-sgd --learners 5 \\
        --partitions dirichlet:0.5 --rounds 150 --modes aggregate momentum \\
        --metrics log_loss --epochs 1 --out bench/collaboration/results-epochs

Each (cell, vote metric, epochs) is played by ``colearning.bench.collaboration``'s own
subprocess (``ours_accuracy``) on the grid's partition of that cell, with the task
option ``vote_metric`` set, and ``epochs`` (local epochs a proposal; damped training
with fewer than the task's) where ``--epochs`` is given; no baselines (each learner
alone, pooled training) and no Flower side are run: those do not vote, and
``--reference`` (default: the grid's ``bench/collaboration/results/raw``) gives them.
Raw numbers go to ``OUT/raw/CELL-METRIC.json`` (``CELL-METRIC-eE.json`` with
``--epochs``; a stopped run resumes); the table of every raw file there goes to
``OUT/vote-metrics.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from colearning.bench.collaboration import MODES, Cell, play_modes
from colearning.bench.partitions import write_partition

HERE = Path(__file__).resolve().parent


def variant_of(metric: str, epochs: int | None) -> str:
    """The name of a run's task options: the vote metric, and ``-eE`` for E epochs."""
    return metric if epochs is None else f"{metric}-e{epochs}"


def play(
    cell: Cell, metric: str, modes: list[str], out: Path, epochs: int | None = None
) -> dict[str, Any]:
    variant = variant_of(metric, epochs)
    path = out / "raw" / f"{cell.key}-{variant}.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    partition_file = out / "partitions" / f"{cell.key}-{variant}.json"
    options: dict[str, Any] = {"vote_metric": metric}
    if epochs is not None:
        options["epochs"] = epochs
    write_partition(partition_file, cell.task, cell.learners, cell.partition, cell.seed, options)
    ours = play_modes(cell, partition_file, modes, out)
    result = {
        "cell": dict(cell.__dict__),
        "vote_metric": metric,
        "variant": variant,
        "ours": ours,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    partition_file.unlink()  # the grid's partition of the cell, rewritten on demand
    return result


def reference(cell: Cell, ref: Path) -> dict[str, float | None]:
    path = ref / f"{cell.key}.json"
    if not path.exists():
        return {"pooled": None, "fedavg": None}
    data = json.loads(path.read_text())
    pooled = data["ours"].get("pooled", {}).get("scores", [None])[-1]
    fedavg = (data.get("flower") or {}).get("scores", [None])[-1]
    return {"pooled": pooled, "fedavg": fedavg}


def _mean(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.fmean(known):.3f}" if len(known) == len(values) and known else "-"


def table(results: list[dict[str, Any]], ref: Path) -> str:
    """One row per cell and mode, the vote metrics (and epochs) side by side: the mean
    final accuracy over the seeds (each seed's), and the rounds accepted."""
    metrics = sorted({_variant(r) for r in results}, key=lambda m: (m != "log_loss", m))
    groups: dict[tuple[Any, ...], dict[str, list[dict[str, Any]]]] = {}
    for r in results:
        c = r["cell"]
        key = (c["task"], c["learners"], c["partition"], c["rounds"])
        groups.setdefault(key, {}).setdefault(_variant(r), []).append(r)
    head = " | ".join(f"{m}: accuracy (seeds) | {m}: accepted" for m in metrics)
    lines = [
        f"| task | learners | partition | rounds | seeds | mode | {head} | pooled | FedAvg |",
        "|---|---|---|---|---|---|" + "---|---|" * len(metrics) + "---|---|",
    ]
    for (task, n, part, rounds), by_metric in sorted(groups.items()):
        for runs in by_metric.values():
            runs.sort(key=lambda r: r["cell"]["seed"])
        first = next(iter(by_metric.values()))
        seeds = [r["cell"]["seed"] for r in first]
        refs = [reference(Cell(**r["cell"]), ref) for r in first]
        for mode in first[0]["ours"]["modes"]:
            cols = []
            for m in metrics:
                runs = by_metric.get(m, [])
                if [r["cell"]["seed"] for r in runs] != seeds:
                    cols.append("- | -")
                    continue
                finals = [r["ours"]["modes"][mode]["scores"][-1] for r in runs]
                accepted = sum(r["ours"]["modes"][mode]["accepted"] for r in runs)
                cols.append(
                    f"{statistics.fmean(finals):.3f} ({'/'.join(f'{f:.3f}' for f in finals)}) | "
                    f"{accepted} of {rounds * len(runs)}"
                )
            lines.append(
                f"| {task} | {n} | {part} | {rounds} | {','.join(map(str, seeds))} | {mode} | "
                f"{' | '.join(cols)} | {_mean([x['pooled'] for x in refs])} | "
                f"{_mean([x['fedavg'] for x in refs])} |"
            )
    return "\n".join(lines) + "\n"


def _variant(result: dict[str, Any]) -> str:
    return str(result.get("variant", result["vote_metric"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["digits-mlp"])
    parser.add_argument("--learners", nargs="+", type=int, default=[20])
    parser.add_argument("--partitions", nargs="+", default=["iid"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--modes", nargs="+", default=["single", "aggregate", "momentum"], choices=MODES
    )
    parser.add_argument("--metrics", nargs="+", default=["log_loss", "calibrated_log_loss"])
    parser.add_argument(
        "--epochs",
        nargs="+",
        type=int,
        default=None,
        help="local epochs a proposal, each played with every metric (default: the task's)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results-calibrated")
    parser.add_argument("--reference", type=Path, default=HERE / "results" / "raw")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    results = []
    for task in args.tasks:
        for n in args.learners:
            for part in args.partitions:
                for seed in args.seeds:
                    cell = Cell(task, n, part, seed, args.rounds)
                    for metric, epochs in [
                        (m, e) for m in args.metrics for e in (args.epochs or [None])
                    ]:
                        variant = variant_of(metric, epochs)
                        path = args.out / "raw" / f"{cell.key}-{variant}.json"
                        if args.report_only and not path.exists():
                            continue
                        r = play(cell, metric, args.modes, args.out, epochs)
                        finals = {m: v["scores"][-1] for m, v in r["ours"]["modes"].items()}
                        print(
                            f"{cell.key} {variant}: "
                            + ", ".join(
                                f"{m} {f:.3f} ({r['ours']['modes'][m]['accepted']} acc)"
                                for m, f in finals.items()
                            ),
                            flush=True,
                        )
                        results.append(r)
    every = [json.loads(f.read_text()) for f in sorted((args.out / "raw").glob("*.json"))]
    (args.out / "vote-metrics.md").write_text(table(every, args.reference))


if __name__ == "__main__":
    main()
