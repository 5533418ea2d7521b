"""Thousands of learners: round overhead in process and on local Ray, peak memory, and
the committee sizes.

    .venv/bin/python bench/scale.py                   # everything (a few minutes)
    .venv/bin/python bench/scale.py --skip-ray        # in process only
    .venv/bin/python bench/scale.py --table           # the committee-size table only
    .venv/bin/python bench/scale.py --repeat 5        # five runs, each and their median

The model is ``synthetic-softmax`` (SoftmaxLearner, NumPy alone; 40 rows a learner,
20 features, 10 classes). For each pool, learner count and committee it prints the
median (and 90th percentile) round time, the learners' own compute per round, and
the **overhead**: the median over rounds of round time minus that round's compute.
Compute is the CPU time the learners' calls used (propose, test, accept; each call's
``time.thread_time``, so a call waiting for the interpreter lock or a core does not
count), measured by a thin wrapper around each learner in the in-process run;
the Ray run plays the very same rounds (same seeds, same calls), so its overhead is its
round time minus the in-process compute of the same round. The same rounds with
learners that do no work at all (``InstantLearner``) give the overhead directly; both
are printed, and the CPU time this process spends on such a round (in process, all
of the round's work, less disturbed by other programs on a shared machine than wall
time; on Ray, the coordinator's share only, the actors' not counted). In process, the
time *outside* the learners' calls (round time minus the wall time inside them; the
calls of a committee round run one after another on the driver's thread) is printed
too: it splits a preemption by the machine between the call and the framework as it
falls, where the CPU-based overhead gives all of it to the framework. The wrapper that
measures the compute costs time itself (clock readings, a lock, a call per learner
call), which the overhead column counts; *timing* is that cost, measured in the same
run (zero-work rounds with every learner wrapped, less the compute the wrapper
counted, less the plain zero-work round), and *less timing* the overhead without it.
Every in-process case is played before Ray starts (Ray's daemons share the machine's
cores while it runs). Committees are sized by ``colearning.scale.committee_size`` for
20% malicious learners at risk 1e-6. Peak memory is measured in a fresh process holding
10,000 learners in process (``--memory`` runs only that part).

Every number is a median over rounds measured in this one run, side by side: on a
shared machine, compare the ratios, not a lone absolute time.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from colearning import Experiment, LearnerWrapper, ProposedWeights, Weights
from colearning.bench.machine import speed_line
from colearning.core.pool import LearnerPool, LocalPool
from colearning.scale import committee_size, committee_table
from colearning.tasks.runner import RunConfig, Setup, build
from colearning.testing import InstantLearner

ROWS_PER_LEARNER = 40
MALICIOUS, RISK = 0.2, 1e-6
#: Rounds measured with a committee (a few milliseconds each): enough that the median
#: of one run moves little with a preemption or a garbage collection here and there.
COMMITTEE_ROUNDS = 200


def setup_for(n: int) -> Setup:
    config = RunConfig(
        task="synthetic-softmax",
        learners=n,
        rounds=0,
        baselines=False,
        params={"rows": ROWS_PER_LEARNER * n},
    )
    return build(config, learners=False)


class InstantBuilder:
    """Builds learners that do no work, inside Ray actors (pickled by value from here)."""

    def build(self, indices: Sequence[int], shared: Any) -> list[InstantLearner]:
        return [InstantLearner() for _ in indices]


class Timed(LearnerWrapper):
    """Adds the CPU time of each of its learner's calls to ``SPENT[0]`` and the wall
    time inside the call to ``SPENT[1]``."""

    def mli_propose_weights(self) -> Weights:
        t0, w0 = time.thread_time(), time.perf_counter()
        try:
            return self.inner.mli_propose_weights()
        finally:
            _spend(time.thread_time() - t0, time.perf_counter() - w0)

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        t0, w0 = time.thread_time(), time.perf_counter()
        try:
            return self.inner.mli_test_weights(weights)
        finally:
            _spend(time.thread_time() - t0, time.perf_counter() - w0)

    def mli_accept_weights(self, weights: Weights) -> None:
        t0, w0 = time.thread_time(), time.perf_counter()
        try:
            self.inner.mli_accept_weights(weights)
        finally:
            _spend(time.thread_time() - t0, time.perf_counter() - w0)


SPENT = [0.0, 0.0]
_SPENT_LOCK = threading.Lock()


def _spend(seconds: float, wall: float) -> None:
    with _SPENT_LOCK:
        SPENT[0] += seconds
        SPENT[1] += wall


def round_times(
    pool: LearnerPool,
    committee: int | None,
    rounds: int,
    warm: int = 3,
    compute: list[float] | None = None,
    cpu: list[float] | None = None,
    inside: list[float] | None = None,
) -> list[float]:
    """Seconds of each round after ``warm`` rounds (the experiment's own loop); the
    learners' CPU time in each round goes to ``compute`` and the wall time inside their
    calls to ``inside`` (with :class:`Timed` learners), this process's CPU seconds of
    each round to ``cpu``."""
    times: list[float] = []
    last = [time.perf_counter()]
    last_cpu = [time.process_time()]

    def tick(_record: object) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now
        if cpu is not None:
            spent = time.process_time()
            cpu.append(spent - last_cpu[0])
            last_cpu[0] = spent
        if compute is not None:
            with _SPENT_LOCK:
                compute.append(SPENT[0])
                if inside is not None:
                    inside.append(SPENT[1])
                SPENT[0] = SPENT[1] = 0.0

    with Experiment(pool, committee=committee, observers=[tick]) as experiment:
        experiment.run(warm)
        times.clear()
        for kept in (compute, cpu, inside):
            if kept is not None:
                kept.clear()
        last[0] = time.perf_counter()
        last_cpu[0] = time.process_time()
        with _SPENT_LOCK:
            SPENT[0] = SPENT[1] = 0.0
        experiment.run(warm + rounds)
    return times


def empty_wave(pool: Any, calls: int = 100) -> float:
    """Median seconds of one call to every actor of ``pool`` that does nothing: Ray's
    own fixed cost of a wave, beside which the pool's rounds are measured."""
    import ray

    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        ray.get([actor.hello.remote() for actor in pool._actors])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def describe(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def bench(
    label: str,
    make: Callable[[], LearnerPool],
    make_zero: Callable[[], LearnerPool],
    n: int,
    committee: int | None,
    rounds: int,
    compute: list[float],
    measure: bool,
) -> dict[str, float]:
    """Rounds on ``make()``; with ``measure``, their learners' compute fills ``compute``
    (Timed learners), else ``compute`` holds the same rounds' compute already."""
    pool = make()
    cpu: list[float] = []
    inside: list[float] = []
    times = round_times(
        pool,
        committee,
        rounds,
        compute=compute if measure else None,
        cpu=cpu,
        inside=inside if measure else None,
    )
    zero_cpu: list[float] = []
    zero = round_times(make_zero(), committee, rounds, cpu=zero_cpu)
    median, p90 = describe(times)
    zero_median, _ = describe(zero)
    # The timing wrapper's own cost (in process, where the learners are Timed): the
    # same zero-work rounds with every learner wrapped, less what the wrapper counted as
    # compute, less the plain zero-work round. Two clock readings of each kind, a lock
    # and a call per learner call: it is in the overhead column, and belongs to the
    # measurement, not to the framework. (Ray's learners are not wrapped.)
    timing = float("nan")
    if measure:
        spent: list[float] = []
        timed_zero = round_times(
            LocalPool([Timed(InstantLearner()) for _ in range(n)]), committee, rounds, compute=spent
        )
        timing = (
            statistics.median(t - c for t, c in zip(timed_zero, spent, strict=True)) - zero_median
        )
    row = {
        "round_ms": 1e3 * median,
        "p90_ms": 1e3 * p90,
        "compute_ms": 1e3 * statistics.median(compute),
        "overhead_ms": 1e3 * statistics.median(t - c for t, c in zip(times, compute, strict=True)),
        # this process's CPU a round, less the learners' (in process: the overhead in
        # CPU time, which a loaded machine's waits for a core do not inflate; on Ray,
        # the coordinator's CPU, the learners' being in the actors)
        "overhead_cpu_ms": 1e3
        * statistics.median(
            u - (c if label == "process" else 0.0) for u, c in zip(cpu, compute, strict=True)
        ),
        # in process: round time minus the wall time inside the learners' calls (the
        # calls of such rounds run one after another on the driver's thread, so this is
        # the time spent outside them; a preemption inside a call counts as the call's)
        "outside_calls_ms": 1e3
        * statistics.median(t - w for t, w in zip(times, inside, strict=True))
        if inside
        else float("nan"),
        "zero_work_ms": 1e3 * zero_median,
        "timing_ms": 1e3 * timing,
        "overhead_less_timing_ms": 1e3
        * (statistics.median(t - c for t, c in zip(times, compute, strict=True)) - timing),
        # in process, all of a round's work; on Ray, the coordinator's share of it
        "zero_cpu_ms": 1e3 * statistics.median(zero_cpu),
    }
    k = "all" if committee is None else str(committee)
    print(
        f"{label:<9}{n:>8,}{k:>6}  {row['round_ms']:>9.2f} {row['p90_ms']:>8.2f} "
        f"{row['compute_ms']:>10.2f} {row['overhead_ms']:>11.2f} {row['zero_work_ms']:>11.2f}"
        f"{row['zero_cpu_ms']:>10.2f} {row['overhead_cpu_ms']:>12.2f} "
        f"{row['outside_calls_ms']:>13.2f} {row['timing_ms']:>8.2f} "
        f"{row['overhead_less_timing_ms']:>10.2f}  {len(times)}",
        flush=True,
    )
    return row


def overhead(skip_ray: bool, sizes: Sequence[int]) -> dict[tuple[str, int, str], dict[str, float]]:
    """Every in-process case first, then (unless ``skip_ray``) the same cases on a local
    Ray: Ray's daemons (its raylet, store and idle workers) share this machine's cores
    while it runs, so an in-process case measured after ``ray.init()`` on a 2-core
    machine measures them too."""
    print(
        "round time per pool, learners and committee (K: voters; all: everyone votes)\n"
        "pool     learners     K  median ms   p90 ms  compute ms  overhead ms  zero-work ms"
        "  (its CPU)  overhead CPU  outside calls  timing  less timing  rounds"
    )
    results: dict[tuple[str, int, str], dict[str, float]] = {}
    setups: dict[int, Setup] = {}
    computes: dict[tuple[int, int | None], list[float]] = {}
    for n in sizes:
        setup = setups[n] = setup_for(n)
        t0 = time.perf_counter()
        learners = [setup.make_learner(part, i) for i, part in enumerate(setup.parts)]
        built = time.perf_counter() - t0
        del learners
        k = committee_size(n, MALICIOUS, RISK).committee
        print(f"-- {n:,} learners built in process in {built:.2f} s; committee {k} --", flush=True)
        for committee in (k, None):
            compute = computes[n, committee] = []
            # new learners for every case, so that in process and on Ray play the same
            timed = [Timed(setup.make_learner(part, i)) for i, part in enumerate(setup.parts)]
            results[("local", n, str(committee))] = bench(
                "process",
                lambda timed=timed: LocalPool(timed),  # type: ignore[misc]
                lambda n=n: LocalPool([InstantLearner() for _ in range(n)]),  # type: ignore[misc]
                n,
                committee,
                _rounds(n, committee),
                compute,
                measure=True,
            )
            del timed
    if skip_ray:
        return results
    import ray

    from colearning.scale import RayPool

    t0 = time.perf_counter()
    ray.init(include_dashboard=False, logging_level="warning", log_to_driver=False)
    print(f"   (local Ray started in {time.perf_counter() - t0:.1f} s)", flush=True)
    for n in sizes:
        setup = setups[n]
        k = committee_size(n, MALICIOUS, RISK).committee
        print(f"-- {n:,} learners on Ray; committee {k} --", flush=True)
        for committee in (k, None):
            t0 = time.perf_counter()
            pool = RayPool.for_setup(setup)
            print(
                f"   ({pool.actors} Ray actors built {n:,} learners in "
                f"{time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            if committee is not None:
                wave = empty_wave(pool)
                print(
                    f"   (one wave of empty calls to the {pool.actors} actors: "
                    f"{1e3 * wave:.2f} ms median; a single-proposer round is one wave)",
                    flush=True,
                )
            results[("ray", n, str(committee))] = bench(
                "ray",
                lambda pool=pool: pool,  # type: ignore[misc]
                lambda n=n: RayPool(builder=InstantBuilder(), n_learners=n),  # type: ignore[misc]
                n,
                committee,
                _rounds(n, committee),
                computes[n, committee],
                measure=False,
            )
    print("\nRay round time / in-process round time (same learners, same rounds):")
    for n in sizes:
        for committee in (str(committee_size(n, MALICIOUS, RISK).committee), "None"):
            a, b = results[("ray", n, committee)], results[("local", n, committee)]
            k = "all" if committee == "None" else committee
            print(f"  {n:>7,} learners, K={k:<4} {a['round_ms'] / b['round_ms']:.2f} x")
    ray.shutdown(wait_for_processes=True)
    return results


def _rounds(n: int, committee: int | None) -> int:
    return COMMITTEE_ROUNDS if committee is not None else (10 if n <= 1000 else 3)


def across_runs(runs: list[dict[tuple[str, int, str], dict[str, float]]]) -> None:
    """The committee rows' overhead and zero-work round in every run, and their medians
    over the runs (one run's figures move with the machine: compare many)."""
    print(f"\nover {len(runs)} runs (committee rounds; ms):")
    print("pool     learners     K  overhead: median (each run)  |  zero-work: median (each run)")
    for key in runs[0]:
        pool, n, committee = key
        if committee == "None":
            continue
        over = [run[key]["overhead_ms"] for run in runs]
        less = [run[key]["overhead_less_timing_ms"] for run in runs]
        zero = [run[key]["zero_work_ms"] for run in runs]
        each = " ".join(f"{x:.2f}" for x in over)
        each_zero = " ".join(f"{x:.2f}" for x in zero)
        label = "process" if pool == "local" else pool
        line = (
            f"{label:<9}{n:>8,}{committee:>6}  {statistics.median(over):.2f} ({each})  |  "
            f"{statistics.median(zero):.2f} ({each_zero})"
        )
        if pool == "local":
            each_less = " ".join(f"{x:.2f}" for x in less)
            line += f"  |  less timing: {statistics.median(less):.2f} ({each_less})"
        print(line)


def memory() -> None:
    """Run in a fresh process: 10,000 learners in process, committee rounds."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 10_000
    t0 = time.perf_counter()
    setup = setup_for(n)
    learners = [setup.make_learner(part, i) for i, part in enumerate(setup.parts)]
    built = time.perf_counter() - t0
    k = committee_size(n, MALICIOUS, RISK).committee
    with Experiment(learners, committee=k) as experiment:
        experiment.run(50)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "learners": n,
                "committee": k,
                "build_s": built,
                "rounds": 50,
                "peak_kib": peak,
                "after_imports_kib": before,
            }
        )
    )


def table() -> None:
    shares, risks = (0.1, 0.2, 0.33), (1e-3, 1e-6, 1e-9)
    rows = committee_table((100, 1_000, 10_000), shares, risks)
    print("committee size K (risk that malicious voters fill the approvals of a committee,")
    print("threshold 0.5, worst case: every malicious learner among the non-proposers)")
    head = "".join(f"  {int(f * 100)}% @{r:g}" for f in shares for r in risks)
    print(f"{'learners':>8}{head}")
    i = 0
    for n in (100, 1_000, 10_000):
        cells = []
        for _ in range(len(shares) * len(risks)):
            row = rows[i]
            i += 1
            cells.append("-" if row is None else str(row.committee))
        width = [len(f"  {int(f * 100)}% @{r:g}") for f in shares for r in risks]
        print(f"{n:>8,}" + "".join(c.rjust(w) for c, w in zip(cells, width, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ray", action="store_true", help="in process only")
    parser.add_argument("--table", action="store_true", help="the committee table only")
    parser.add_argument("--memory", action="store_true", help="peak memory only (own process)")
    parser.add_argument("--learners", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="play the overhead part N times and print each run's figures and their median",
    )
    args = parser.parse_args()
    if args.memory:
        memory()
        return
    table()
    if args.table:
        return
    print()
    child = subprocess.run(
        [sys.executable, __file__, "--memory"], capture_output=True, text=True, check=True
    )
    got = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"peak memory, {got['learners']:,} learners in process, {got['rounds']} rounds with a "
        f"committee of {got['committee']}: {got['peak_kib'] / 1024:.0f} MiB "
        f"({got['after_imports_kib'] / 1024:.0f} MiB after imports; built in "
        f"{got['build_s']:.1f} s)\n"
    )
    runs = []
    for i in range(max(1, args.repeat)):
        if args.repeat > 1:
            print(f"== run {i + 1} of {args.repeat} ==", flush=True)
        print(speed_line(), flush=True)
        runs.append(overhead(args.skip_ray, args.learners))
    if len(runs) > 1:
        across_runs(runs)


if __name__ == "__main__":
    main()
