"""``colearn bench collaboration``: this project's round modes beside Flower's FedAvg.

Two parts, each measured side by side in one invocation:

**accuracy** (:func:`run_grid`): for every cell (task, learners, partition, seed) the
partition is written as row indices (:mod:`colearning.bench.partitions`); this project
plays each round mode on it, Flower's FedAvg runs on the same file in Flower's own
simulation engine, and both are scored after every round by the same judge. Each
learner alone and pooled training are scored the same way. Raw numbers go to
``OUT/raw/CELL.json`` (one file per cell, written when the cell is done, so a stopped
grid resumes where it stopped); ``OUT/accuracy.md`` and ``OUT/*.png`` are made from them.

**speed** (:func:`run_speed`): per-round wall time of every round mode with learners
that do no work (``InstantLearner``), so the round time is the framework's overhead,
against FedAvg over clients that do no work; time from launching the process to the
end of the first round; peak memory of the whole process tree (Ray's processes
included), sampled every 20 ms. ``OUT/speed.json`` and ``OUT/speed.md``.

Every side runs in a subprocess of its own (``python -m colearning.bench.collaboration
JOB RESULT`` here, ``bench/collaboration/flower_side.py`` in the benchmark environment),
so their memory and start-up are measured alike.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ColearningError, ConfigError

#: The round modes the accuracy grid plays, by the name the tables use.
MODES: Mapping[str, Mapping[str, Any]] = {
    "single": {"mode": "single"},
    "aggregate": {"mode": "aggregate", "combiner": "mean"},
    "screened": {"mode": "screened", "combiner": "mean"},
    # aggregate rounds with FedAvgM's server momentum (docs/modes.md, "The server step")
    "momentum": {"mode": "aggregate", "combiner": "mean", "server_momentum": 0.9},
    # the same with half the momentum: at 100 learners 0.9 overshot to where no FedAvg
    # step passes the vote (docs/modes.md, "Longer runs at 100 learners")
    "momentum-0.5": {"mode": "aggregate", "combiner": "mean", "server_momentum": 0.5},
}
#: The modes a grid plays unless asked for others (``--modes``).
GRID_MODES = ("single", "aggregate", "screened", "momentum")
#: The settings of a mode that make its combiner, not the Experiment's other options.
_COMBINER_SETTINGS = ("combiner", "server_lr", "server_momentum")
#: Learners in the speed part, and rounds timed at each size: many of this project's
#: (a round takes milliseconds, so the median rides out a busy machine's bursts), as many
#: of Flower's as the time allows (28 s a round at 1,000 clients).
SPEED_SIZES = (5, 100, 1000)
SPEED_ROUNDS = {5: 300, 100: 60, 1000: 10}
#: This project's side of each speed cell runs in this many processes, taking turns with
#: the others, and its median is over all their rounds: on a shared machine one process
#: can land in a burst of other jobs' load from its first round to its last.
SPEED_REPEATS = 3
FLOWER_SPEED_ROUNDS = {5: 30, 100: 10, 1000: 4}
#: In the speed part a screened round screens a sample of this many proposals: every
#: proposal screened by every learner is k * n validations (a million at 1,000).
SPEED_SCREENED_PROPOSERS = 5
FLOWER_DIR = Path(__file__).resolve().parents[3] / "bench" / "collaboration"


@dataclass(frozen=True)
class Cell:
    """One cell of the accuracy grid."""

    task: str
    learners: int
    partition: str
    seed: int
    rounds: int

    @property
    def key(self) -> str:
        part = self.partition.replace(":", "")
        return f"{self.task}-n{self.learners}-{part}-r{self.rounds}-s{self.seed}"


# -- running one side in a subprocess ---------------------------------------------------


def spawn(command: Sequence[str], job: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """Run ``command JOB RESULT`` and return its result, with ``peak_rss_mib`` (of the
    whole process tree) and ``wall_seconds`` added."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd, job_path = tempfile.mkstemp(suffix=".json", dir=workdir, prefix="job-")
    os.close(fd)
    result_path = job_path.replace("job-", "result-")
    Path(job_path).write_text(json.dumps({**job, "launched": time.time()}))
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, job_path, result_path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    peak = _PeakMemory(proc.pid)
    peak.start()
    _, stderr = proc.communicate()
    peak.stop()
    wall = time.perf_counter() - start
    try:
        if proc.returncode != 0:
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"{' '.join(command[:3])} exited {proc.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(Path(result_path).read_text())
    finally:
        Path(job_path).unlink(missing_ok=True)
        Path(result_path).unlink(missing_ok=True)
    result["peak_rss_mib"] = peak.peak / 2**20
    result["wall_seconds"] = wall
    return result


class _PeakMemory(threading.Thread):
    """Samples the resident memory of a process and all its descendants (``/proc``)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and every process descended from it (Linux)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        p = int(entry.name)
        children.setdefault(int(fields.get("PPid", "0").strip() or 0), []).append(p)
        rss[p] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def _ours() -> list[str]:
    return [sys.executable, "-m", "colearning.bench.collaboration"]


def _flower(python: str) -> list[str]:
    return [python, str(FLOWER_DIR / "flower_side.py")]


# -- this project's side (run inside the subprocess) -------------------------------------


def ours_accuracy(job: Mapping[str, Any]) -> dict[str, Any]:
    """Every round mode of ``job["modes"]`` on the partition file, the shared model
    judged after every round; then each learner alone and pooled training."""
    from colearning.bench.partitions import (
        POOLED,
        build_learners,
        epochs_per_proposal,
        judge_score,
        no_vote,
        read_partition,
    )
    from colearning.core.combiners import Combiner
    from colearning.core.experiment import Experiment
    from colearning.core.protocol import Reason

    spec = read_partition(job["partition_file"])
    rounds = int(job["rounds"])
    n = spec.learners
    epochs = epochs_per_proposal(spec)
    quiet = no_vote(spec)
    judge = build_learners(spec, [POOLED], quiet)[0]
    ids = [f"learner-{i}" for i in range(n)]
    sizes = {lid: float(p["train_rows"]) for lid, p in zip(ids, spec.parts, strict=True)}
    out: dict[str, Any] = {"modes": {}, "epochs_per_proposal": epochs}

    for name, settings in job["modes"].items():
        learners = build_learners(spec, range(n))
        t0 = time.perf_counter()
        combiner = Combiner.parse(
            str(settings.get("combiner", "mean")),
            sizes,
            server_lr=settings.get("server_lr"),
            server_momentum=settings.get("server_momentum"),
        )
        options = {k: v for k, v in settings.items() if k not in _COMBINER_SETTINGS}
        scores, trained = [], [0]
        with Experiment(learners, seed=spec.seed, combiner=combiner, **options) as experiment:
            scores.append(judge_score(judge, experiment.current_weights))
            last = experiment.current_weights_id
            for r in range(rounds):
                record = experiment.run(r + 1).rounds[-1]
                made = sum(p.reason in (None, Reason.MALFORMED) for p in record.proposals)
                trained.append(trained[-1] + made * epochs)
                if experiment.current_weights_id != last:
                    last = experiment.current_weights_id
                    scores.append(judge_score(judge, experiment.current_weights))
                else:
                    scores.append(scores[-1])
            records = experiment.rounds
        out["modes"][name] = {
            "scores": scores,  # [0]: the initial model; [r]: after round r
            "epochs": trained,
            "accepted": sum(r.accepted for r in records),
            "proposals": sum(len(r.proposals) for r in records),
            "screened_out": sum(
                1 for r in records for p in r.proposals if p.screened and not p.screened.accepted
            ),
            "seconds": time.perf_counter() - t0,
        }

    if job.get("baselines", True):
        initial = build_learners(spec, [0])[0].mli_get_current_weights()
        t0 = time.perf_counter()
        alone = [
            _train_alone(learner, initial, rounds, judge)
            for learner in build_learners(spec, range(n))
        ]
        pooled = _train_alone(build_learners(spec, [POOLED])[0], initial, rounds, judge)
        out["alone"] = {
            "final": [a[-1] for a in alone],
            "best_by_round": [max(col) for col in zip(*alone, strict=True)],
        }
        out["pooled"] = {"scores": pooled}
        out["baseline_seconds"] = time.perf_counter() - t0
    return out


def _train_alone(learner: Any, initial: Any, rounds: int, judge: Any) -> list[float]:
    """A learner on its own: ``rounds`` proposals, each adopted (as a one-learner
    experiment does), judged after each."""
    from colearning.bench.partitions import judge_score

    learner.mli_accept_weights(initial)
    scores = [judge_score(judge, initial)]
    for r in range(rounds):
        learner.mli_set_round(r)
        proposal = learner.mli_propose_weights()
        learner.mli_accept_weights(proposal)
        scores.append(judge_score(judge, proposal))
    return scores


def ours_speed(job: Mapping[str, Any]) -> dict[str, Any]:
    """Per-round wall time of one round mode over learners that do no work."""
    from colearning.core.combiners import Combiner
    from colearning.core.experiment import Experiment
    from colearning.core.store import ExperimentStore
    from colearning.testing import InstantLearner

    n, rounds = int(job["learners"]), int(job["rounds"])
    launched = float(job["launched"])
    settings = dict(job["settings"])
    if any(k in settings for k in ("server_lr", "server_momentum")):
        settings["combiner"] = Combiner.parse(
            str(settings.get("combiner", "mean")),
            server_lr=settings.pop("server_lr", None),
            server_momentum=settings.pop("server_momentum", None),
        )
    ends: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        learners = [InstantLearner() for _ in range(n)]
        ids = [f"learner-{i}" for i in range(n)]
        store = ExperimentStore.create(f"{tmp}/e", {}, ids) if job["store"] else None
        with Experiment(
            learners, store=store, observers=[lambda _r: ends.append(time.time())], **settings
        ) as experiment:
            experiment.run(rounds)
    return {
        "round_seconds": [b - a for a, b in itertools.pairwise(ends)],
        "first_round_end": ends[0] - launched,
    }


# -- the grid ------------------------------------------------------------------------------


def run_grid(
    cells: Sequence[Cell],
    out: Path,
    *,
    flower_python: str | None,
    modes: Sequence[str] = GRID_MODES,
    log: Any = print,
) -> list[dict[str, Any]]:
    """Play every cell not yet in ``out/raw`` and return every cell's raw numbers."""
    from colearning.bench.partitions import write_partition

    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"modes must be among {', '.join(MODES)}; got {unknown[0]!r}")
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    done = []
    result: dict[str, Any]
    for i, cell in enumerate(cells, start=1):
        path = raw / f"{cell.key}.json"
        partition_file = out / "partitions" / f"{cell.key}.json"
        if path.exists():
            result = json.loads(path.read_text())
            missing = [m for m in modes if "ours" in result and m not in result["ours"]["modes"]]
            if missing:
                result = _add_modes(result, missing, cell, partition_file, out)
                path.write_text(json.dumps(result))
                finals = ", ".join(
                    f"{m} {result['ours']['modes'][m]['scores'][-1]:.3f}" for m in missing
                )
                log(f"[{i}/{len(cells)}] {cell.key}: added {finals}")
            if flower_python is not None and "ours" in result and result.get("flower") is None:
                # played with --no-flower: Flower's side now, on the same rows
                write_partition(partition_file, cell.task, cell.learners, cell.partition, cell.seed)
                flower_job = {
                    "kind": "accuracy",
                    "partition_file": str(partition_file),
                    "rounds": cell.rounds,
                }
                added = spawn(_flower(flower_python), flower_job, out / "tmp")
                result = {**result, "flower": added}
                path.write_text(json.dumps(result))
                log(
                    f"[{i}/{len(cells)}] {cell.key}: added FedAvg {added['scores'][-1]:.3f} "
                    f"({added['wall_seconds']:.0f} s)"
                )
            done.append(result)
            continue
        try:
            write_partition(partition_file, cell.task, cell.learners, cell.partition, cell.seed)
        except ColearningError as exc:
            log(f"[{i}/{len(cells)}] {cell.key}: not run: {exc}")
            result = {"cell": dict(cell.__dict__), "error": str(exc)}
            path.write_text(json.dumps(result))
            done.append(result)
            continue
        job: dict[str, Any] = {
            "partition_file": str(partition_file),
            "rounds": cell.rounds,
            "modes": {m: _grid_settings(m, cell) for m in modes},
        }
        ours = spawn(_ours(), {"kind": "accuracy", **job}, out / "tmp")
        flower = None
        if flower_python is not None:
            flower = spawn(_flower(flower_python), {"kind": "accuracy", **job}, out / "tmp")
        result = {"cell": cell.__dict__, "ours": ours, "flower": flower}
        path.write_text(json.dumps(result))
        done.append(result)
        finals = ", ".join(f"{m} {ours['modes'][m]['scores'][-1]:.3f}" for m in modes)
        fed = f", FedAvg {flower['scores'][-1]:.3f}" if flower else ""
        log(
            f"[{i}/{len(cells)}] {cell.key}: {finals}{fed}, pooled "
            f"{ours['pooled']['scores'][-1]:.3f}, best alone {max(ours['alone']['final']):.3f} "
            f"({ours['wall_seconds']:.0f} s + {flower['wall_seconds'] if flower else 0:.0f} s)"
        )
    return done


def play_modes(cell: Cell, partition_file: Path, modes: Sequence[str], out: Path) -> dict[str, Any]:
    """This project's side of ``cell``: ``modes`` played on the partition written in
    ``partition_file``, with the grid's settings, no baselines, in a fresh process."""
    job = {
        "kind": "accuracy",
        "partition_file": str(partition_file),
        "rounds": cell.rounds,
        "modes": {m: _grid_settings(m, cell) for m in modes},
        "baselines": False,
    }
    return spawn(_ours(), job, out / "tmp")


def _add_modes(
    result: Mapping[str, Any], modes: Sequence[str], cell: Cell, partition_file: Path, out: Path
) -> dict[str, Any]:
    """A played cell with ``modes`` played too, on the same partition (rewritten from
    the cell, to the same rows); its baselines and Flower's side are kept."""
    from colearning.bench.partitions import write_partition

    write_partition(partition_file, cell.task, cell.learners, cell.partition, cell.seed)
    added = play_modes(cell, partition_file, modes, out)
    ours = dict(result["ours"])
    ours["modes"] = {**ours["modes"], **added["modes"]}
    ours.setdefault("added_wall_seconds", {}).update({m: added["wall_seconds"] for m in modes})
    return {**result, "ours": ours}


#: Above this many learners a screened round of the grid screens a seeded sample of this
#: many proposals (every proposal screened by everyone is k * n validations a round).
GRID_SCREENED_PROPOSERS = 20


def _grid_settings(mode: str, cell: Cell) -> dict[str, Any]:
    settings = dict(MODES[mode])
    if mode == "screened" and cell.learners > GRID_SCREENED_PROPOSERS:
        settings["proposers"] = GRID_SCREENED_PROPOSERS
    return settings


# -- speed ---------------------------------------------------------------------------------


def speed_settings(mode: str, n: int) -> dict[str, Any]:
    """The Experiment settings of a round mode in the speed part."""
    if mode == "single":
        return {"mode": "single"}
    if mode == "aggregate":
        return {"mode": "aggregate", "combiner": "mean"}
    if mode.startswith("momentum") and mode in MODES:  # aggregate rounds, the grid's step
        return dict(MODES[mode])
    if mode != "screened":
        raise ConfigError(f"modes must be among {', '.join(MODES)}; got {mode!r}")
    return {
        "mode": "screened",
        "combiner": "mean",
        "proposers": min(n, SPEED_SCREENED_PROPOSERS),
    }


def run_speed(
    out: Path,
    *,
    flower_python: str | None,
    sizes: Sequence[int] = SPEED_SIZES,
    modes: Sequence[str] = GRID_MODES,
    log: Any = print,
) -> dict[str, Any]:
    """Both sides at every size, taking turns, in this one invocation."""
    from colearning.bench.machine import machine_speed, speed_line

    results: dict[str, Any] = {"ours": {}, "flower": {}, "sizes": list(sizes)}
    results["machine_speed"] = [machine_speed()]
    log(speed_line(results["machine_speed"][0]))
    for n in sizes:
        rounds = SPEED_ROUNDS.get(n, 10)
        for mode in modes:
            job = {"kind": "speed", "learners": n, "rounds": rounds + 1}
            job["settings"] = speed_settings(mode, n)
            # in memory, as Flower's simulation keeps its rounds; then committing every
            # round to an experiment directory, which Flower does not do
            runs, stored_runs = [], []
            for _ in range(SPEED_REPEATS):
                runs.append(spawn(_ours(), {**job, "store": False}, out / "tmp"))
                stored_runs.append(spawn(_ours(), {**job, "store": True}, out / "tmp"))
            got = pool_runs(runs)
            stored = pool_runs(stored_runs)
            got["stored_round_seconds"] = stored["round_seconds"]
            results["ours"].setdefault(mode, {})[str(n)] = got
            log(
                f"speed: colearning {mode:<9} n={n:<5} {1e3 * _median_round(got):9.2f} ms/round "
                f"({1e3 * _median_round(stored):.2f} with an experiment directory)"
            )
        if flower_python is not None:
            got = spawn(
                _flower(flower_python),
                {"kind": "speed", "learners": n, "rounds": FLOWER_SPEED_ROUNDS.get(n, 4) + 1},
                out / "tmp",
            )
            results["flower"][str(n)] = got
            log(f"speed: Flower FedAvg       n={n:<5} {1e3 * _median_round(got):9.2f} ms/round")
    results["machine_speed"].append(machine_speed())
    log(speed_line(results["machine_speed"][-1]))
    (out / "speed.json").write_text(json.dumps(results, indent=1))
    (out / "speed.md").write_text(speed_table(results))
    return results


def pool_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several processes' speed results as one: the round times of all of them (the
    first process's first round first, as :func:`_median_round` leaves it out; the
    others' first rounds dropped), the median time to the first round, the highest
    peak memory, and how many processes they came from."""
    first, *rest = runs
    rounds = list(first["round_seconds"])
    for run in rest:
        rounds += list(run["round_seconds"])[1:]
    return {
        "round_seconds": rounds,
        "first_round_end": statistics.median(r["first_round_end"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "wall_seconds": sum(r["wall_seconds"] for r in runs),
        "processes": len(runs),
    }


def _median_round(result: Mapping[str, Any]) -> float:
    """The median round time, the first round left out (it warms threads and actors)."""
    times = list(result["round_seconds"])[1:] or list(result["round_seconds"])
    return statistics.median(times) if times else math.nan


def speed_table(results: Mapping[str, Any]) -> str:
    """Markdown: overhead per round, time to first round and peak memory, as ratios."""
    lines = [
        "| learners | mode | colearning ms/round (with experiment dir) | Flower ms/round "
        "| Flower / colearning | first round s (colearning / Flower) "
        "| peak MiB (colearning / Flower) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in results["sizes"]:
        flower = results["flower"].get(str(n))
        for mode, by_size in results["ours"].items():
            ours = by_size.get(str(n))
            if ours is None:
                continue
            a = _median_round(ours)
            stored = _median_round({"round_seconds": ours.get("stored_round_seconds", [])})
            label = mode
            if mode == "screened":
                label += f" ({min(n, SPEED_SCREENED_PROPOSERS)} proposers)"
            ms = f"{1e3 * a:.2f} ({1e3 * stored:.2f})"
            if flower is None:
                lines.append(
                    f"| {n} | {label} | {ms} | - | - | {ours['first_round_end']:.2f} / - "
                    f"| {ours['peak_rss_mib']:.0f} / - |"
                )
                continue
            b = _median_round(flower)
            lines.append(
                f"| {n} | {label} | {ms} | {1e3 * b:.0f} | **{b / a:.0f} x** "
                f"| {ours['first_round_end']:.2f} / {flower['first_round_end']:.1f} "
                f"| {ours['peak_rss_mib']:.0f} / {flower['peak_rss_mib']:.0f} |"
            )
    speeds = results.get("machine_speed") or []
    if speeds:
        lines.append("")
        lines.append(
            "Machine speed at the start and the end of the run (`colearning.bench.machine`, "
            "lower is faster): interpreter "
            + " / ".join(f"{x['interpreter_ms']:.2f}" for x in speeds)
            + " ms, numpy "
            + " / ".join(f"{x['numpy_ms']:.2f}" for x in speeds)
            + " ms."
        )
    return "\n".join(lines) + "\n"


# -- the subprocess entry point ------------------------------------------------------------


def _worker(job_path: str, result_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    result = ours_accuracy(job) if job["kind"] == "accuracy" else ours_speed(job)
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
