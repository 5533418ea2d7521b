"""A reference for a malicious share: the protocol played by the honest learners alone.

Against a damaging attack, what the attackers' data adds reaches the model only through
proposals a defence should keep out, so a defence that works ends near the run the
``n - m`` honest learners would play on their own shares. This is a reference, not a
bound: seeds vary, and some attackers (``adaptive``, ``dishonest-vote``) do train on
their data. This plays that run (single rounds, or the round mode of ``--mode`` as
the bench's ``--modes`` names it; the same partition files and judge as ``colearn
bench robustness``) for every group of a results directory's partitions.

    .venv/bin/python bench/robustness/honest_only.py bench/robustness/results-modes \
        --share 0.4 --rounds 20 [--mode aggregate:median]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from colearning.bench.partitions import build_learners, read_partition
from colearning.bench.robustness import _Judges, malicious_count, parse_mode
from colearning.core.combiners import Combiner
from colearning.core.experiment import Experiment


def honest_only(
    partition_file: Path, share: float, rounds: int, mode: str = "single"
) -> tuple[int, float]:
    spec = read_partition(partition_file)
    honest = spec.learners - malicious_count(share, spec.learners)
    ids = [f"learner-{i}" for i in range(honest)]
    name, combiner = parse_mode(mode)
    sizes = {i: float(p["train_rows"]) for i, p in zip(ids, spec.parts, strict=False)}
    learners = build_learners(spec, range(honest))
    with Experiment(
        learners,
        seed=spec.seed,
        learner_ids=ids,
        mode=name,
        combiner=Combiner.parse(combiner, sizes),
    ) as e:
        result = e.run(rounds)
    return honest, _Judges(spec).score(result.final_weights)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--share", type=float, default=0.4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--mode", default="single")
    parser.add_argument("--groups", nargs="*", help="partition file names to play (default all)")
    args = parser.parse_args()
    groups: dict[str, list[float]] = {}
    for path in sorted((args.out / "partitions").glob("*.json")):
        if args.groups and not any(g in path.name for g in args.groups):
            continue
        spec = read_partition(path)
        honest, accuracy = honest_only(path, args.share, args.rounds, args.mode)
        key = f"{spec.task} n={spec.learners} {spec.partition} {args.mode}: {honest} honest alone"
        groups.setdefault(key, []).append(accuracy)
        print(json.dumps({"partition": path.name, "honest": honest, "accuracy": accuracy}))
    for key, values in groups.items():
        print(f"{key}: {statistics.mean(values):.3f} over {len(values)} seeds")


if __name__ == "__main__":
    main()
