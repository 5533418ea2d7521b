"""``colearn``: run collective-learning experiments from the command line.

Every subcommand parses its arguments, calls the library, and prints. A refused input
(``ColearningError``) prints one line naming the value and the fix and exits 2, with no
traceback; nothing committed is changed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from colearning.cli import exit_codes
from colearning.core.exceptions import (
    ColearningError,
    ConfigError,
    StoreDamagedError,
    StoreWriteError,
)

EPILOG = """examples:
  colearn run --task digits-mlp --learners 5 --rounds 20 --out runs/demo --plot
  colearn run config.toml -c rounds=50 -c params.epochs=2
  colearn run --resume runs/demo
  colearn tasks
  colearn plot runs/demo
  colearn export runs/demo --format json
  colearn run --task digits-mlp --learners 5 --processes --out runs/procs
  colearn learner serve --task mnist-cnn --share 2/5 --port 7001 --certs certs
  colearn run --remote host1:7001,host2:7001 --certs certs --out runs/remote
  colearn run --task digits-mlp --ledger evm --out runs/chain && colearn ledger verify runs/chain
  colearn committee --learners 10000 --malicious-share 0.2 --risk 1e-6
  colearn run --task synthetic-softmax --learners 10000 -c params.rows=400000 \
      --committee 51 --no-baselines --pool ray
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colearn",
        description="Collective learning: learners propose model updates and vote on them "
        "with their private data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from colearning import __version__

    parser.add_argument("--version", action="version", version=f"colearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run an experiment from a task name or a TOML config")
    run.add_argument("config", nargs="?", help="TOML file with the settings (flags override it)")
    run.add_argument("--task", help="task name (see `colearn tasks`)")
    run.add_argument("--learners", type=int, help="number of learners (default: the task's)")
    run.add_argument("--rounds", type=int, help="rounds in total (default: the task's)")
    run.add_argument(
        "--threshold",
        type=float,
        dest="vote_threshold",
        help="share of voters that must approve, in [0, 1] (default 0.5)",
    )
    run.add_argument("--partition", help="how data is shared out: iid, dirichlet:ALPHA or shards:K")
    run.add_argument(
        "--split",
        help="each learner's train, vote and test shares, TRAIN,VOTE,TEST (default 0.6,0.2,0.2)",
    )
    run.add_argument("--seed", type=int, help="seed for data, models and proposers (default 0)")
    run.add_argument(
        "--proposer",
        choices=["round-robin", "random"],
        help="proposer policy (default round-robin)",
    )
    run.add_argument("--timeout", type=float, help="seconds each learner call may take")
    run.add_argument(
        "--mode",
        choices=["single", "aggregate", "screened"],
        help="round mode: single (one proposer, the default), aggregate (proposals "
        "combined, then voted on) or screened (each proposal voted on first); see docs/modes.md",
    )
    run.add_argument(
        "--combiner",
        help="how aggregate and screened rounds combine proposals: mean (weighted by "
        "train rows, the default), median, trimmed-mean or trimmed-mean:TRIM",
    )
    run.add_argument(
        "--server-lr",
        type=float,
        metavar="ETA",
        help="aggregate and screened rounds: the candidate is current + ETA * (combined - "
        "current), still voted on (default 1: the combination as it is); see docs/modes.md",
    )
    run.add_argument(
        "--server-momentum",
        type=float,
        metavar="BETA",
        help="aggregate and screened rounds: add BETA times the last adopted step to the "
        "candidate (FedAvgM's server momentum, in [0, 1); default 0)",
    )
    run.add_argument(
        "--proposers",
        type=int,
        metavar="K",
        help="learners proposing in an aggregate or screened round: a sample of K, "
        "seeded per round (default: every learner)",
    )
    run.add_argument("--data-dir", help="directory with data files, for tasks that read them")
    run.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip training each learner alone and on pooled data at the end",
    )
    run.add_argument(
        "-c",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. -c rounds=50 or -c params.epochs=2 (repeatable)",
    )
    run.add_argument("--out", help="experiment directory to create (default runs/TASK-TIME)")
    run.add_argument("--resume", metavar="DIR", help="continue the experiment in DIR")
    run.add_argument("--plot", action="store_true", help="also write DIR/plot.png at the end")
    run.add_argument(
        "--ledger",
        choices=["evm"],
        help="evm: a smart contract decides every round, on the embedded chain or --chain-url",
    )
    run.add_argument("--chain-url", help="JSON-RPC URL of the chain for --ledger evm (anvil, ...)")
    run.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="json: stdout carries only the result JSON; progress goes to stderr",
    )
    from colearning.cli import committee_cmd, network_cmds

    network_cmds.add_run_options(run)
    committee_cmd.add_run_options(run)
    network_cmds.add_parsers(sub)
    committee_cmd.add_parser(sub)

    from colearning.cli import attack_cmds

    attack_cmds.add_run_options(run)
    attack_cmds.add_parsers(sub)

    tasks = sub.add_parser("tasks", help="list the named tasks")
    tasks.add_argument("--format", choices=["text", "json"], default="text")

    plot = sub.add_parser("plot", help="write a PNG of scores and votes per round")
    plot.add_argument("directory", help="experiment directory")
    plot.add_argument("-o", "--output", help="PNG path (default DIR/plot.png)")

    export = sub.add_parser("export", help="write an experiment's results or final model")
    export.add_argument("directory", help="experiment directory")
    export.add_argument(
        "--format",
        choices=["json", "safetensors", "onnx"],
        default="json",
        help="json: every round and the summary; safetensors: the final weights; "
        "onnx: the final model, exported by the task's learner",
    )
    export.add_argument("-o", "--output", help="file to write (default: stdout for json)")
    export.add_argument(
        "--data-dir",
        help="with --format onnx: the task's data, where the model is rebuilt from files "
        "(a --remote run's coordinator holds none)",
    )
    export.add_argument(
        "-c",
        dest="overrides",
        action="append",
        default=[],
        metavar="params.KEY=VALUE",
        help="with --format onnx: a task option the learners served (repeatable)",
    )

    show = sub.add_parser("show", help="print an experiment's rounds and summary")
    show.add_argument("directory", help="experiment directory")

    from colearning.cli import ledger_cmds

    ledger_cmds.add_parsers(sub)
    from colearning.cli.bench_cmds import add_bench_parser

    add_bench_parser(sub)
    from colearning.cli import verify_cmd

    verify_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return exit_codes.USAGE
    from colearning.cli import ledger_cmds, peer_cmds

    handler = (
        getattr(args, "handler", None)
        or {
            "ledger": ledger_cmds.cmd_ledger,
            "peer": peer_cmds.cmd_peer,
            "run": cmd_run,
            "tasks": cmd_tasks,
            "plot": cmd_plot,
            "export": cmd_export,
            "show": cmd_show,
            "learner": _network("cmd_learner"),
            "certs": _network("cmd_certs"),
            "bench": _cmd_bench,
            "committee": _committee,
            "attacks": _cmd_attacks,
        }[args.command]
    )
    try:
        return handler(args)
    except ColearningError as exc:
        _error(args, exc)
        if isinstance(exc, StoreDamagedError):
            return exit_codes.DAMAGED
        if isinstance(exc, StoreWriteError):
            return exit_codes.IO_ERROR
        return exit_codes.USAGE
    except KeyboardInterrupt:
        print(f"\ncolearn {args.command}: {_interrupted(args)}", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        # the reader of stdout went away (`colearn export DIR | head`): nothing to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed pipe
        return exit_codes.OK
    except OSError as exc:  # a file the user named, or the disk: never a traceback
        from colearning.core.store import os_message

        _error(args, os_message(exc))
        return exit_codes.IO_ERROR


def _error(args: argparse.Namespace, message: object) -> None:
    """One line on stderr: ``colearn COMMAND: error: MESSAGE``."""
    text = " ".join(str(message).split())
    print(f"colearn {args.command}: error: {text}", file=sys.stderr)


def _interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left behind, naming the real experiment directory."""
    directory = getattr(args, "experiment_dir", None)
    if args.command != "run" or not directory:
        return "Interrupted (Ctrl-C)."
    from colearning.core.store import DB_NAME

    if not (Path(directory) / DB_NAME).is_file():
        return f"Interrupted (Ctrl-C) before {directory} was created; nothing was written."
    return (
        f"Interrupted (Ctrl-C). The rounds committed to {directory} are kept; continue "
        f"with `colearn run --resume {shlex.quote(str(directory))}`."
    )


def _committee(args: argparse.Namespace) -> int:
    from colearning.cli import committee_cmd

    return committee_cmd.cmd_committee(args)


def _network(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from colearning.cli import network_cmds

        code: int = getattr(network_cmds, name)(args)
        return code

    return handler


# -- run --------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from colearning.cli.config import apply_override, read_toml

    settings: dict[str, Any] = read_toml(args.config) if args.config else {}
    for text in args.overrides:
        apply_override(settings, text)
    flags = {
        "task": args.task,
        "learners": args.learners,
        "rounds": args.rounds,
        "vote_threshold": args.vote_threshold,
        "partition": args.partition,
        "split": args.split,
        "seed": args.seed,
        "proposer": args.proposer,
        "timeout": args.timeout,
        "mode": args.mode,
        "combiner": args.combiner,
        "server_lr": args.server_lr,
        "server_momentum": args.server_momentum,
        "proposers": args.proposers,
        "data_dir": args.data_dir,
        "out": args.out,
        "ledger": args.ledger,
        "chain_url": args.chain_url,
        "committee": args.committee,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    if args.no_baselines:
        settings["baselines"] = False
    from colearning.cli import attack_cmds

    attack_cmds.settings_from(args, settings)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    from colearning.cli.config import to_run_config
    from colearning.cli.display import ProgressBar, RoundTable, format_summary
    from colearning.core.store import ExperimentStore
    from colearning.tasks.runner import Setup, resume_task, run_task

    settings = _settings(args)
    text = args.format == "text"
    table = RoundTable(sys.stdout if text else None, ProgressBar(sys.stderr, 0))

    def announce(directory: str) -> None:
        print(
            f"experiment directory: {directory}",
            file=sys.stdout if text else sys.stderr,
            flush=True,
        )

    def on_start(setup: Setup, first_round: int) -> None:
        if args.resume is not None:
            announce(args.resume)  # once the directory proved to be one to resume
        table.bar.total = int(setup.config.rounds or 0)
        table.bar.done = table.bar.first = first_round
        if text:
            c = setup.config
            sizes = [p.sizes for p in setup.parts]
            print(
                f"{c.task}: {c.learners} learners, {c.rounds} rounds, threshold "
                f"{c.vote_threshold}, partition {c.partition}, seed {c.seed}"
                + (f", mode {c.mode} ({c.combiner_of().label})" if c.mode != "single" else "")
                + "; "
                f"rows per learner (train/vote/test) from {min(sizes)} to {max(sizes)}"
                + (f"; resuming at round {first_round}" if first_round else "")
            )
        table.bar.draw()

    from colearning.cli import committee_cmd, network_cmds

    ray_pool = committee_cmd.ray_pool(args)
    if ray_pool is None and network_cmds.is_network_run(args):
        outcome = network_cmds.run_network(args, settings, table, on_start)
    elif args.resume is not None:
        if args.config is not None or "out" in settings:
            raise ConfigError(
                "--resume DIR continues a stored experiment with its stored settings; "
                "drop the config file and --out (only --rounds may change)"
            )
        if not args.resume.strip():
            raise ConfigError("--resume needs an experiment directory; got ''")
        args.experiment_dir = args.resume  # for the Ctrl-C message
        outcome = resume_task(
            args.resume,
            settings or None,
            observers=[table],
            on_start=on_start,
            pool_factory=ray_pool,
        )
    else:
        config, out = to_run_config(settings)
        config = config.resolved()  # every setting checked before anything runs
        out = out or f"runs/{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"
        ExperimentStore.check_new(out)  # refused before it is announced
        args.experiment_dir = out
        announce(out)  # before the data loads, which may take long
        outcome = run_task(config, out, observers=[table], on_start=on_start, pool_factory=ray_pool)
    table.bar.clear()

    directory = str(outcome.directory) if outcome.directory else None
    plot_path = None
    if args.plot and directory:
        from colearning.report.plot import plot_experiment

        plot_path = plot_experiment(directory)
    if text:
        print(format_summary(outcome.summary, directory))
        if plot_path:
            print(f"plot written to {plot_path}")
    else:
        from colearning.core.store import opened

        with opened(directory or "") as store:
            document = store.to_json()
        if plot_path:
            document["plot"] = str(plot_path)
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return exit_codes.OK


# -- the other commands -----------------------------------------------------------------


def _cmd_attacks(args: argparse.Namespace) -> int:
    from colearning.cli.attack_cmds import cmd_attacks

    return cmd_attacks(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from colearning.cli.bench_cmds import cmd_bench

    return cmd_bench(args)


def cmd_tasks(args: argparse.Namespace) -> int:
    from colearning.tasks.registry import list_tasks

    tasks = list_tasks()
    if args.format == "json":
        json.dump(
            [
                {
                    "name": t.name,
                    "description": t.description,
                    "extra": t.extra,
                    "metric": t.metric,
                    "defaults": dict(t.defaults),
                    "params": dict(t.params),
                }
                for t in tasks
            ],
            sys.stdout,
            indent=1,
        )
        print()
        return exit_codes.OK
    width = max(len(t.name) for t in tasks) + 2
    for t in tasks:
        needs = f"  [needs colearning[{t.extra}]]" if t.extra else ""
        print(f"{t.name:<{width}}{t.description}{needs}")
        if t.params:
            opts = ", ".join(f"{k}={v!r}" for k, v in t.params.items())
            print(f"{'':<{width}}options: {opts}")
    return exit_codes.OK


def cmd_plot(args: argparse.Namespace) -> int:
    from colearning.cli.outputs import output_path
    from colearning.report.plot import plot_experiment

    _experiment_dir(args.directory)
    output = output_path(args.output, args.directory, "plot.png", suffix=".png")
    path = plot_experiment(args.directory, output)
    print(f"plot written to {path}")
    return exit_codes.OK


def cmd_export(args: argparse.Namespace) -> int:
    from colearning.cli.outputs import output_path, write_atomically
    from colearning.core.store import opened

    _experiment_dir(args.directory)
    if args.format == "onnx":
        from colearning.cli.config import apply_override
        from colearning.core.interface import ModelFormat
        from colearning.tasks.export import export_model, write_model

        settings: dict[str, Any] = {}
        for text in args.overrides:
            apply_override(settings, text)
        if set(settings) - {"params"}:
            raise ConfigError(
                "export takes task options only (-c params.KEY=VALUE); got "
                f"{sorted(set(settings) - {'params'})[0]!r}"
            )
        output = output_path(args.output, args.directory, "model.onnx")
        model = export_model(args.directory, data_dir=args.data_dir, params=settings.get("params"))
        if model.model_format is not ModelFormat.ONNX:
            raise ConfigError(
                f"this task's learner exports {getattr(model.model_format, 'value', None)}, "
                "not ONNX; use "
                "--format safetensors for the raw weights"
            )
        path = write_model(model, output)
        print(f"final model written to {path} (ONNX)")
        return exit_codes.OK

    if args.data_dir or args.overrides:
        raise ConfigError("--data-dir and -c rebuild the model: they go with --format onnx")
    if args.format == "json":
        target = None
        if args.output is not None:
            target = output_path(args.output, args.directory, "results.json")
        with opened(args.directory) as store:
            text = json.dumps(store.to_json(), indent=1) + "\n"
        if target is None:
            sys.stdout.write(text)
        else:
            write_atomically(target, text.encode("utf-8"))
            print(f"results written to {target}")
        return exit_codes.OK
    output = output_path(args.output, args.directory, "final.safetensors")
    with opened(args.directory) as store:
        wid = store.current_weights_id()
        if wid is None:
            raise ConfigError(f"{args.directory} has no weights yet; run some rounds first")
        store.rounds()  # the chain is checked before its weights are handed out
        blob = store.get_blob(wid)
    write_atomically(output, blob)
    print(f"final weights {wid[:12]} written to {output}")
    return exit_codes.OK


def _experiment_dir(directory: str) -> None:
    """Refuse a directory that is not an experiment before anything else is checked."""
    from colearning.core.store import opened

    if not directory.strip():
        raise ConfigError("the experiment directory must not be empty; got ''")
    with opened(directory):
        pass


def cmd_show(args: argparse.Namespace) -> int:
    from colearning.cli.display import ProgressBar, RoundTable, format_summary
    from colearning.core.store import opened

    _experiment_dir(args.directory)
    with opened(args.directory) as store:
        rounds = store.rounds()
        summary = store.get_meta("summary")
        notes = store.notes
    out = io.StringIO()  # all of it, or nothing if something stored is damaged
    table = RoundTable(out, ProgressBar(sys.stderr, 0))
    table.bar.enabled = False
    for record in rounds:
        table(record)
    if summary:
        try:
            out.write(format_summary(summary, args.directory) + "\n")
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise StoreDamagedError(
                f"{args.directory} is damaged: its stored summary cannot be shown "
                f"({type(exc).__name__}: {exc}); the rounds are intact. Run `colearn verify "
                f"{args.directory}` for every problem found"
            ) from None
    else:
        out.write(f"\n{len(rounds)} rounds committed; no summary yet (the run did not finish)\n")
    sys.stdout.write(out.getvalue())
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return exit_codes.OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
