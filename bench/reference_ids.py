"""Final weights ids of a few tasks over seeds: behaviour must not change unseen.

    .venv/bin/python bench/reference_ids.py [--rounds N] [--tasks a,b]

Runs each task with its default settings (no baselines) for seeds 0, 1, 2 and prints
one line per run: task, seed, rounds, accepted rounds and the final weights id. A change
to the library that changes any of these ids must say why.
"""

from __future__ import annotations

import argparse
import json

from colearning.tasks.runner import RunConfig, run_task

DEFAULT_TASKS = ("digits-mlp", "mnist-cnn", "iris-forest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=None, help="default: the task's")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for task in args.tasks.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            config = RunConfig(task=task, seed=seed, rounds=args.rounds, baselines=False)
            outcome = run_task(config)
            result = outcome.result
            row = {
                "task": task,
                "seed": seed,
                "rounds": len(result.rounds),
                "accepted": sum(r.accepted for r in result.rounds),
                "final_weights_id": result.final_weights_id,
            }
            rows.append(row)
            if not args.json:
                print(
                    f"{task:<14} seed {seed}  {row['rounds']:>3} rounds  "
                    f"{row['accepted']:>3} accepted  {row['final_weights_id']}",
                    flush=True,
                )
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
