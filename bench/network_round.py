"""Rounds over learner-server processes: overhead, start-up, and mnist-cnn with and
without pipelining, against in-process learners, in one run.

1. **Round overhead**: 5 learner processes hosting a learner that does no work
   (``InstantLearner``), so a round's time is the transport's and driver's own cost.
2. **Start-up**: seconds from launching ``colearn run --processes`` to its first
   committed round (digits-sgd, and synthetic-softmax, which imports no ML framework;
   5 learners), and the CPU seconds of the whole process tree.
3. **mnist-cnn, 5 learners, label skew** (``dirichlet:0.5``): median seconds per round
   in process, over ``--processes``, each with and without pipelining, the four taking
   turns repetition by repetition; and the share of rounds whose early proposal was
   used. Every variant ends with the same final weights id (checked here too).

    .venv/bin/python bench/network_round.py                  # all three, 5 repetitions
    .venv/bin/python bench/network_round.py --only overhead startup --reps 7
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def overhead(reps: int, rounds: int = 30) -> None:
    from colearning import Experiment
    from colearning.network import GrpcPool, LearnerServer
    from colearning.network.processes import LearnerProcesses

    with tempfile.TemporaryDirectory() as tmp:
        ports = [f"{tmp}/{i}.port" for i in range(5)]
        cmds = [
            [
                sys.executable,
                "-m",
                "colearning.cli.main",
                "learner",
                "serve",
                "--factory",
                "colearning.testing.toys:InstantLearner",
                "--id",
                f"learner-{i}",
                "--insecure",
                "--port",
                "0",
                "--port-file",
                ports[i],
                "--quiet",
                "--share-cores",
            ]
            for i in range(5)
        ]
        procs = LearnerProcesses(cmds).start()
        phases = ("propose", "validate", "accept", "total")
        load = [os.getloadavg()[0]]
        try:
            got = procs.wait_ready(ports)
            pids = [p.pid for p in procs.procs]
            medians: dict[str, list[float]] = {k: [] for k in phases}
            cpu: dict[str, list[float]] = {"coordinator": [], "servers": []}
            for _ in range(reps):
                pool = GrpcPool([(f"learner-{i}", f"127.0.0.1:{p}") for i, p in enumerate(got)])
                records: list = []  # type: ignore[type-arg]
                with Experiment(pool, observers=[records.append]) as e:
                    e.run(3)  # the first rounds warm the channels up
                    c0, s0 = _own_cpu(), sum(map(_cpu_of, pids))
                    e.run(3 + rounds)
                    c1, s1 = _own_cpu(), sum(map(_cpu_of, pids))
                cpu["coordinator"].append((c1 - c0) / rounds)
                cpu["servers"].append((s1 - s0) / rounds)
                for k in phases:
                    medians[k].append(statistics.median(getattr(r.timings, k) for r in records[3:]))
                load.append(os.getloadavg()[0])
        finally:
            procs.stop()
            procs.cleanup()
    split = ", ".join(f"{k} {1000 * statistics.median(medians[k]):.1f}" for k in phases[:3])
    runs = ", ".join(f"{1000 * v:.1f}" for v in sorted(medians["total"]))
    print(
        f"round overhead, 5 learner processes, no learner compute: "
        f"{1000 * statistics.median(medians['total']):.1f} ms per round ({split} ms; median "
        f"of {reps} runs of {rounds} rounds: {runs}; load {min(load):.1f}-{max(load):.1f})\n"
        f"  CPU per round: coordinator {1000 * statistics.median(cpu['coordinator']):.1f} ms, "
        f"the 5 servers together {1000 * statistics.median(cpu['servers']):.1f} ms"
    )
    del LearnerServer


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_of(pid: int) -> float:
    """CPU seconds process ``pid`` has used (utime + stime from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _children_of(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def startup(reps: int, tasks: list[str]) -> None:
    """Each task's start-up, the tasks taking turns repetition by repetition. At the
    first committed round the CPU each process has used so far is read from /proc (the
    coordinator, the launcher, its servers); after the run, the whole tree's."""
    walls: dict[str, list[float]] = {t: [] for t in tasks}
    split: dict[str, list[tuple[float, float, float]]] = {t: [] for t in tasks}
    total: dict[str, list[float]] = {t: [] for t in tasks}
    load = [os.getloadavg()[0]]
    for _ in range(reps):
        for task in tasks:
            with tempfile.TemporaryDirectory() as tmp:
                cpu0 = _children_cpu()
                t0 = time.perf_counter()
                proc = subprocess.Popen(
                    [
                        *[sys.executable, "-m", "colearning.cli.main", "run", "--task", task],
                        *["--learners", "5", "--rounds", "1", "--no-baselines", "--processes"],
                        *["--out", f"{tmp}/e"],
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.strip().startswith("0  learner-0"):
                        walls[task].append(time.perf_counter() - t0)
                        launcher = _children_of(proc.pid)[0]
                        servers = sum(map(_cpu_of, _children_of(launcher)))
                        split[task].append((_cpu_of(proc.pid), _cpu_of(launcher), servers))
                        break
                proc.stdout.read()
                proc.wait()
                # the whole tree: the coordinator reaps the launcher, which reaps its servers
                total[task].append(_children_cpu() - cpu0)
                load.append(os.getloadavg()[0])
    for task in tasks:
        values = walls[task]
        co, la, se = (statistics.median(x[i] for x in split[task]) for i in range(3))
        print(
            f"colearn run --processes ({task}, 5 learners) to the first committed round: "
            f"{statistics.median(values):.2f} s (median of {reps}; runs "
            f"{', '.join(f'{v:.2f}' for v in sorted(values))}; load {min(load):.1f}-"
            f"{max(load):.1f})\n  CPU by then: coordinator {co:.2f} s, launcher {la:.2f} s, "
            f"the 5 servers {se:.2f} s; the whole 1-round run "
            f"{statistics.median(total[task]):.2f} s"
        )


def round_floor(record) -> float:  # type: ignore[no-untyped-def]
    """The proposer's training plus the slowest single validation of ``record``: what a
    round takes at least when validation starts only once the proposal exists."""
    tests = [v.seconds for v in record.votes if v.learner_id != record.proposer_id]
    return record.timings.propose + max(tests, default=0.0)


def mnist(reps: int, rounds: int) -> None:
    from colearning.network.runs import run_processes
    from colearning.tasks.runner import RunConfig, run_task

    config = RunConfig(
        task="mnist-cnn",
        learners=5,
        rounds=rounds,
        partition="dirichlet:0.5",
        seed=0,
        baselines=False,
    )
    from colearning.core.pipeline import PipelinedPool
    from colearning.core.plans import planner_for
    from colearning.core.pool import LocalPool

    def local_pipelined(setup):  # type: ignore[no-untyped-def]
        pool = LocalPool(setup.learners, setup.learner_ids)
        return PipelinedPool(pool, planner_for("round-robin", 0), rounds=rounds)

    variants = {
        "in process": lambda out: run_task(config, out),
        "in process, pipelined": lambda out: run_task(config, out, pool_factory=local_pipelined),
        "--processes, pipelined": lambda out: run_processes(config, out),
        "--processes, --no-pipeline": lambda out: run_processes(config, out, pipeline=False),
    }
    per_round: dict[str, list[float]] = {k: [] for k in variants}
    ids: dict[str, set[str]] = {k: set() for k in variants}
    used: dict[str, list[float]] = {k: [] for k in variants}
    floor: dict[str, list[float]] = {k: [] for k in variants}
    load = [os.getloadavg()[0]]
    for rep in range(reps):
        for name, run in variants.items():
            with tempfile.TemporaryDirectory() as tmp:
                outcome = run(Path(tmp) / "e")
            totals = [r.timings.total for r in outcome.result.rounds]
            per_round[name].append(statistics.median(totals[1:]))
            floor[name].append(statistics.median(round_floor(r) for r in outcome.result.rounds[1:]))
            ids[name].add(outcome.result.final_weights_id)
            pipe = outcome.summary.get("pipeline")
            if pipe:
                used[name].append(pipe["used"] / max(1, rounds - 1))
            print(
                f"  rep {rep + 1} {name:<28} {per_round[name][-1]:6.3f} s/round"
                + (f", early proposals used {pipe['used']}/{rounds - 1}" if pipe else ""),
                flush=True,
            )
        load.append(os.getloadavg()[0])
    base = statistics.median(per_round["in process"])
    print(
        f"mnist-cnn, 5 learners, dirichlet:0.5, {rounds} rounds; median s/round (round 0 left "
        f"out) over {reps} interleaved repetitions; load {min(load):.1f}-{max(load):.1f}:"
    )
    for name, values in per_round.items():
        m = statistics.median(values)
        share = (
            f"   early proposal used in {100 * statistics.median(used[name]):.0f}% of rounds"
            if used[name]
            else ""
        )
        print(f"  {name:<28} {m:6.3f} s/round   x{m / base:.2f} of in process{share}")
    print(
        "  the floor of a round without pipelining: the proposer's training plus the slowest "
        "single validation (per round, medians):"
    )
    for name in ("in process", "--processes, --no-pipeline"):
        f = statistics.median(floor[name])
        print(f"    {name:<26} {f:6.3f} s")
    remote_floor = statistics.median(floor["--processes, --no-pipeline"])
    piped = statistics.median(per_round["--processes, pipelined"])
    print(
        f"  --processes, pipelined: {piped:.3f} s/round, x{piped / remote_floor:.2f} of the "
        f"floor over processes ({'under' if piped < remote_floor else 'not under'} it)"
    )
    every = set().union(*ids.values())
    print(f"  final weights ids: {'all equal' if len(every) == 1 else every}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["overhead", "startup", "mnist"],
        default=["overhead", "startup", "mnist"],
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=8, help="mnist-cnn rounds per run")
    parser.add_argument(
        "--startup-tasks",
        nargs="+",
        default=["digits-sgd", "synthetic-softmax"],
        help="tasks whose start-up is timed (synthetic-softmax imports no ML framework)",
    )
    args = parser.parse_args()
    from colearning.bench.machine import speed_line

    print(speed_line(), flush=True)
    if "overhead" in args.only:
        overhead(args.reps)
    if "startup" in args.only:
        startup(args.reps, args.startup_tasks)
    if "mnist" in args.only:
        mnist(args.reps, args.rounds)


if __name__ == "__main__":
    main()
