"""Collective model vs each learner alone vs pooled data, over several seeds.

    .venv/bin/python bench/accuracy.py                          # digits-mlp, mnist-mlp
    .venv/bin/python bench/accuracy.py --tasks mnist-cnn --rounds 20 50 --seeds 0 1 2

For each task, seed and round count: one full run (``colearning.tasks.run_task``,
no experiment directory) whose summary scores every model on the union of all
learners' test splits. Prints one row per run and the mean over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import time

from colearning.tasks import RunConfig, run_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["digits-mlp", "mnist-mlp"])
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--rounds", type=int, nargs="+", default=[20])
    parser.add_argument("--partition", default="dirichlet:0.5")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "-c",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="task option, e.g. -c epsilon=2",
    )
    args = parser.parse_args()
    params = {}
    for item in args.params:
        key, _, value = item.partition("=")
        try:
            params[key] = float(value) if "." in value or "e" in value else int(value)
        except ValueError:
            params[key] = value

    print(
        f"{'task':<14} {'rounds':>6} {'seed':>4} {'collective':>10} {'best alone':>10} "
        f"{'pooled':>8} {'accepted':>8} {'skipped':>7} {'run s':>8}  privacy"
    )
    for task in args.tasks:
        for rounds in args.rounds:
            rows = []
            for seed in args.seeds:
                config = RunConfig(
                    task=task,
                    learners=args.learners,
                    rounds=rounds,
                    partition=args.partition,
                    seed=seed,
                    params=params,
                )
                start = time.perf_counter()
                s = run_task(config).summary
                seconds = time.perf_counter() - start  # rounds and baselines
                row = (
                    s["collective"]["score"],
                    s["best_individual"]["score"],
                    s["pooled"]["score"],
                )
                rows.append(row)
                budgets = (s.get("dp_budgets") or {}).values()
                privacy = (
                    f"max epsilon spent {max(b['consumed_epsilon'] for b in budgets):.3f} "
                    f"of {max(b['target_epsilon'] for b in budgets):.2f}"
                    if budgets
                    else ""
                )
                print(
                    f"{task:<14} {rounds:>6} {seed:>4} {row[0]:>10.4f} {row[1]:>10.4f} "
                    f"{row[2]:>8.4f} {s['accepted']:>8} {s['skipped']:>7} {seconds:>8.1f}  "
                    f"{privacy}",
                    flush=True,
                )
            means = [statistics.mean(col) for col in zip(*rows, strict=True)]
            print(
                f"{task:<14} {rounds:>6} {'mean':>4} {means[0]:>10.4f} {means[1]:>10.4f} "
                f"{means[2]:>8.4f}"
            )


if __name__ == "__main__":
    main()
