"""Replay aggregate rounds with server momentum on one partition and print, round by
round, the tally and how the candidate moved each voter's vote loss: why a run stops.

    .venv/bin/python bench/collaboration/replay_momentum.py --seed 1 --rounds 16
    .venv/bin/python bench/collaboration/replay_momentum.py --seed 1 --rounds 16 --backtrack 0.5

``--backtrack F`` multiplies the server learning rate by ``F`` for each rejected round
since the last adopted one (a backtracking line search on the server step), to see
whether a shorter step would pass. The learners and the judge are the ones
``colearn bench collaboration`` builds from the same partition file; see docs/modes.md,
"Longer runs at 100 learners".
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import warnings
from pathlib import Path

import numpy as np

from colearning.bench.partitions import (
    POOLED,
    build_learners,
    judge_score,
    no_vote,
    read_partition,
    write_partition,
)
from colearning.core.combiners import Combiner
from colearning.core.experiment import Experiment
from colearning.core.plans import RoundPlan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="digits-sgd")
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--partition", default="iid")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--backtrack", type=float, default=1.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # scikit-learn's per-call warnings

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "partition.json"
        write_partition(path, args.task, args.learners, args.partition, args.seed)
        spec = read_partition(path)
    judge = build_learners(spec, [POOLED], no_vote(spec))[0]
    learners = build_learners(spec, range(spec.learners))
    ids = [f"learner-{i}" for i in range(spec.learners)]
    sizes = {lid: float(p["train_rows"]) for lid, p in zip(ids, spec.parts, strict=True)}
    combiner = Combiner.parse("mean", sizes, server_momentum=args.momentum)
    print(f"{args.task}, {spec.learners} learners, {args.partition}, seed {args.seed}")
    print("round status approvals | voters' vote-loss change: median, mean | judge | norm")
    with Experiment(learners, seed=spec.seed, combiner=combiner, mode="aggregate") as ex:
        planned = ex.planner.plan

        def backtracked(round_index: int, learner_ids: list[str]) -> RoundPlan:
            plan = planned(round_index, learner_ids)
            rejected = 0
            for record in reversed(ex.rounds):
                if record.accepted:
                    break
                rejected += 1
            if rejected and args.backtrack != 1.0:
                lr = plan.combiner.server_lr * args.backtrack**rejected
                step = dataclasses.replace(plan.combiner, server_lr=lr)
                plan = dataclasses.replace(plan, options={**plan.options, "combiner": step})
            return plan

        ex.planner.plan = backtracked  # type: ignore[method-assign]
        for r in range(args.rounds):
            before = {lid: lr.current_vote_score() for lid, lr in zip(ids, learners, strict=True)}  # type: ignore[attr-defined]
            record = ex.run(r + 1).rounds[-1]
            change = np.array(
                [
                    v.vote_score - before[v.learner_id]
                    for v in record.votes
                    if v.vote_score is not None
                ]
            )
            norm = np.sqrt(
                sum(float((a.astype(float) ** 2).sum()) for a in ex.current_weights.arrays.values())
            )
            assert record.decision is not None
            tally = f"{record.decision.approvals:3d}/{record.decision.eligible}"
            print(
                f"{r:5d} {record.status:8s} {tally}"
                f" | {np.median(change):+.4f} {change.mean():+.4f}"
                f" | {judge_score(judge, ex.current_weights):.3f} | {norm:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
