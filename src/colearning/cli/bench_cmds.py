"""``colearn bench collaboration``: this project's round modes beside Flower's FedAvg.

    bench/collaboration/setup.sh                    # once: .venv-bench with Flower
    colearn bench collaboration                     # the grid, then the speed part
    colearn bench collaboration --part speed        # only the speed part (minutes)
    colearn bench collaboration --report-only       # tables and plots from OUT/raw

A stopped grid resumes: cells already in ``OUT/raw`` are not played again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    c.add_argument("--modes", nargs="+", default=["single", "aggregate", "screened"])
    c.add_argument(
        "--flower-python",
        default=DEFAULT_FLOWER,
        help=f"the benchmark environment's python (default {DEFAULT_FLOWER}; make it "
        "with bench/collaboration/setup.sh)",
    )
    c.add_argument("--no-flower", action="store_true", help="run this project's side only")
    c.add_argument("--report-only", action="store_true", help="only redo tables and plots")


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench != "collaboration":
        raise ConfigError("name a benchmark: colearn bench collaboration")
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
