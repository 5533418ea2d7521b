"""``colearn bench collaboration``: this project's round modes beside Flower's FedAvg.

    bench/collaboration/setup.sh                    # once: .venv-bench with Flower
    colearn bench collaboration                     # the grid, then the speed part
    colearn bench collaboration --part speed        # only the speed part (minutes)
    colearn bench collaboration --report-only       # tables and plots from OUT/raw

A stopped grid resumes: cells already in ``OUT/raw`` are not played again; a mode asked
of a played cell, or Flower's side of a cell played with ``--no-flower``, is added to it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colearning.bench.collaboration import GRID_MODES, MODES
from colearning.core.exceptions import ConfigError

DEFAULT_OUT = "bench/collaboration/results"
DEFAULT_FLOWER = ".venv-bench/bin/python"


def add_bench_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    bench = sub.add_parser("bench", help="side-by-side benchmarks (see docs/modes.md)")
    kinds = bench.add_subparsers(dest="bench", metavar="BENCH")
    c = kinds.add_parser(
        "collaboration",
        help="round modes beside Flower's FedAvg: accuracy on identical partitions, speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--part", choices=["all", "accuracy", "speed"], default="all")
    c.add_argument("--out", default=DEFAULT_OUT, help=f"results directory (default {DEFAULT_OUT})")
    c.add_argument("--tasks", nargs="+", default=["digits-mlp", "digits-sgd"])
    c.add_argument("--learners", nargs="+", type=int, default=[5, 20, 100])
    c.add_argument("--partitions", nargs="+", default=["iid", "dirichlet:0.5"])
    c.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    c.add_argument("--rounds", type=int, default=30)
    c.add_argument(
        "--modes",
        nargs="+",
        default=list(GRID_MODES),
        help=f"round modes to play, among {', '.join(MODES)} (default {' '.join(GRID_MODES)})",
    )
    c.add_argument(
        "--flower-python",
        default=DEFAULT_FLOWER,
        help=f"the benchmark environment's python (default {DEFAULT_FLOWER}; make it "
        "with bench/collaboration/setup.sh)",
    )
    c.add_argument("--no-flower", action="store_true", help="run this project's side only")
    c.add_argument("--report-only", action="store_true", help="only redo tables and plots")
    add_robustness_parser(kinds)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench == "robustness":
        return cmd_robustness(args)
    if args.bench != "collaboration":
        raise ConfigError(
            "name a benchmark: colearn bench collaboration, or colearn bench robustness"
        )
    from colearning.bench.collaboration import Cell, run_grid, run_speed
    from colearning.bench.report import write_reports

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    flower = None if args.no_flower else args.flower_python
    if flower is not None and not args.report_only and not Path(flower).exists():
        raise ConfigError(
            f"no Flower environment at {flower}; make it with bench/collaboration/setup.sh, "
            "pass --flower-python PATH, or --no-flower for this project's side only"
        )
    if args.rounds < 1:
        raise ConfigError(f"rounds must be a whole number >= 1; got {args.rounds}")

    def log(line: str) -> None:
        print(line, flush=True)

    if not args.report_only and args.part in ("all", "accuracy"):
        cells = [
            Cell(task, n, partition, seed, args.rounds)
            for task in args.tasks
            for n in args.learners
            for partition in args.partitions
            for seed in args.seeds
        ]
        run_grid(cells, out, flower_python=flower, modes=args.modes, log=log)
    if not args.report_only and args.part in ("all", "speed"):
        run_speed(out, flower_python=flower, modes=args.modes, log=log)
    md, plots = write_reports(out)
    print(f"tables in {md}" + (f" and {out / 'speed.md'}" if (out / "speed.md").exists() else ""))
    for p in plots:
        print(f"plot written to {p}")
    sys.stdout.flush()
    return 0


# -- colearn bench robustness ---------------------------------------------------------------

ROBUSTNESS_OUT = "bench/robustness/results"
ROBUSTNESS_HELP = """``colearn bench robustness``: the vote against every attack at 0, 20 and 40%
malicious learners, beside FedAvg, median, trimmed mean, Multi-Krum and FLTrust on the
same partitions (docs/robustness.md).

    colearn bench robustness --quick                # a minute: the CI size
    colearn bench robustness --jobs 2               # the grid (resumes where it stopped)
    colearn bench robustness --report-only          # tables and plot from OUT/raw
    colearn bench robustness --modes single aggregate:median screened:trimmed-mean
"""
#: ``--quick``: one small group, the clean run and 40% of every attack, few rounds.
QUICK = {
    "tasks": ["digits-mlp"],
    "learners": [5],
    "partitions": ["iid"],
    "shares": [0.0, 0.4],
    "seeds": [0],
    "rounds": 10,
    "defence_rounds": 4,
}


def add_robustness_parser(kinds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from colearning.bench.robustness import ATTACK_SPECS, DEFAULT_VARIANTS, DEFENCES, VARIANTS

    r = kinds.add_parser(
        "robustness",
        help="the vote against attacks at 0/20/40%% malicious, beside aggregation defences",
        description=ROBUSTNESS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--out", default=ROBUSTNESS_OUT, help=f"results (default {ROBUSTNESS_OUT})")
    r.add_argument("--tasks", nargs="+", default=["digits-mlp", "mnist-cnn"])
    r.add_argument("--learners", nargs="+", type=int, default=[5, 10])
    r.add_argument("--partitions", nargs="+", default=["iid", "dirichlet:0.5"])
    r.add_argument("--shares", nargs="+", type=float, default=[0.0, 0.2, 0.4])
    r.add_argument("--attacks", nargs="+", default=list(ATTACK_SPECS))
    r.add_argument("--defences", nargs="+", default=list(DEFENCES))
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--rounds", type=int, help="protocol rounds (default: the task's)")
    r.add_argument(
        "--defence-rounds",
        type=int,
        default=10,
        help="rounds of each defence run, every learner training in each (default 10)",
    )
    r.add_argument(
        "--defence-seeds",
        nargs="+",
        type=int,
        default=[0],
        help="seeds the defences run on (default 0: they are the reference, the vote "
        "runs on every seed)",
    )
    r.add_argument(
        "--defence-shares",
        nargs="+",
        type=float,
        default=[0.0, 0.4],
        help="malicious shares the defences run at (default 0 and 0.4)",
    )
    r.add_argument("--no-defences", action="store_true", help="the vote alone")
    r.add_argument("--threshold", type=float, default=0.5, help="vote threshold (default 0.5)")
    r.add_argument(
        "--modes",
        nargs="+",
        default=["single"],
        help="round modes the protocol plays: single (DESIGN.md's), or aggregate or "
        "screened with a combiner, as colearn run --mode --combiner plays them, e.g. "
        "aggregate:median screened:trimmed-mean:0.2 (default single)",
    )
    r.add_argument(
        "--variants",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        choices=list(VARIANTS),
        help="how the honest learners vote in single rounds: vote (DESIGN.md's, always "
        "played), vote+margin (MarginVoter), vote+perclass (PerClassVoter: no class's "
        "recall may drop by more than a tolerance); default: vote vote+margin",
    )
    r.add_argument(
        "--split",
        help="each learner's train, vote and test shares, TRAIN,VOTE,TEST, as colearn run "
        "--split (default 0.6,0.2,0.2): a larger vote share gives each vote more rows",
    )
    r.add_argument("--jobs", type=int, default=1, help="cells played at once (processes)")
    r.add_argument("--quick", action="store_true", help="the CI size: " + str(QUICK))
    r.add_argument("--report-only", action="store_true", help="only redo tables and plot")


def cmd_robustness(args: argparse.Namespace) -> int:
    from colearning.bench.robustness import cells_for, run_grid
    from colearning.bench.robustness_report import write_reports
    from colearning.core.tally import threshold_fraction

    settings = {
        "tasks": args.tasks,
        "learners": args.learners,
        "partitions": args.partitions,
        "shares": args.shares,
        "seeds": args.seeds,
        "rounds": args.rounds,
        "defence_rounds": args.defence_rounds,
    }
    if args.quick:
        settings.update(QUICK)
    for name in ("rounds", "defence_rounds"):
        value = settings[name]
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be a whole number >= 1; got {value}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1; got {args.jobs}")
    if any(n < 2 for n in settings["learners"]):
        raise ConfigError(f"--learners must each be >= 2; got {settings['learners']}")
    threshold_fraction(args.threshold)
    out = Path(args.out)
    if not args.report_only:
        from colearning.tasks.registry import get_task

        for task in settings["tasks"]:
            get_task(task)
        from colearning.data.partition import parse_partition

        for partition in settings["partitions"]:
            parse_partition(partition)
        cells = cells_for(
            settings["tasks"],
            settings["learners"],
            settings["partitions"],
            settings["shares"],
            args.attacks,
            settings["seeds"],
            settings["rounds"],
            args.threshold,
            [] if args.no_defences else args.defences,
            settings["defence_rounds"],
            args.defence_seeds,
            args.defence_shares,
            args.modes,
            args.variants,
            args.split,
        )
        out.mkdir(parents=True, exist_ok=True)
        run_grid(cells, out, jobs=args.jobs, log=lambda line: print(line, flush=True))
    elif not (out / "raw").is_dir():
        raise ConfigError(f"no results in {out}/raw; run colearn bench robustness first")
    md, js, png = write_reports(out)
    print(f"table in {md}, numbers in {js}" + (f", plot in {png}" if png else ""))
    return 0
