"""Driver overhead per round: everything but learner compute.

Learners here do no work at all (``InstantLearner``), so a round's wall time is the
driver's own cost: picking the proposer, dispatching the calls to worker threads,
collecting verdicts, tallying, dispatching the accepts, encoding and hashing the
proposal (off the critical path) and committing the round.

    .venv/bin/python bench/driver_overhead.py            # 5, 100, 1000 learners
    .venv/bin/python bench/driver_overhead.py --rounds 50 --learners 5 1000

Prints the median and 90th percentile per round, without a store and with an
experiment directory (SQLite commit + blob), measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from colearning import Experiment, ExperimentStore
from colearning.testing import InstantLearner


def per_round_seconds(n: int, rounds: int, with_store: bool) -> list[float]:
    learners = [InstantLearner() for _ in range(n)]
    ids = [f"learner-{i}" for i in range(n)]
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ExperimentStore.create(f"{tmp}/e", {}, ids) if with_store else None
        last = [time.perf_counter()]

        def tick(_record: object) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        with Experiment(learners, store=store, observers=[tick]) as experiment:
            experiment.run(3)  # warm the worker threads
            times.clear()
            last[0] = time.perf_counter()
            experiment.run(3 + rounds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[5, 100, 1000])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    print(f"{'learners':>8}  {'store':>5}  {'median ms':>9}  {'p90 ms':>7}  rounds")
    for n in args.learners:
        rounds = args.rounds if n <= 100 else max(10, args.rounds // 5)
        for with_store in (False, True):
            t = sorted(per_round_seconds(n, rounds, with_store))
            p90 = t[int(0.9 * (len(t) - 1))]
            print(
                f"{n:>8}  {'yes' if with_store else 'no':>5}  "
                f"{1e3 * statistics.median(t):>9.3f}  {1e3 * p90:>7.3f}  {len(t)}"
            )


if __name__ == "__main__":
    main()
