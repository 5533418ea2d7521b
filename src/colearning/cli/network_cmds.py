"""``colearn learner serve``, ``colearn certs`` and the network options of ``colearn run``
(``--processes``, ``--remote``, ``--certs``, ``--insecure``, ``--no-pipeline``).

Nothing here imports grpc until a network command runs, so the rest of the CLI works
without the ``grpc`` extra; a network command without it fails with one sentence
naming the ``pip install``.
"""

from __future__ import annotations

import argparse
from typing import Any

from colearning.cli import exit_codes
from colearning.core.exceptions import ConfigError


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The network options of ``colearn run``."""
    group = run.add_argument_group("learners on other processes or machines")
    group.add_argument(
        "--processes",
        action="store_true",
        help="run each learner as a learner server subprocess on 127.0.0.1 (same result)",
    )
    group.add_argument(
        "--remote",
        metavar="[ID=]HOST:PORT,...",
        help="drive learner servers (colearn learner serve) at these addresses; an entry "
        "without ID= is learner-POSITION",
    )
    group.add_argument(
        "--certs",
        metavar="DIR",
        help="mutual TLS with the CA and certificates in DIR (colearn certs)",
    )
    group.add_argument(
        "--cert-name",
        default="coordinator",
        help="this coordinator's certificate name in --certs (default coordinator)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="with --remote: plaintext, no TLS (only on a network you trust)",
    )
    group.add_argument(
        "--no-pipeline",
        action="store_true",
        help="do not train the next round's proposal while this round is voted on",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for every learner server at the start (default 30)",
    )


def add_parsers(sub: Any) -> None:
    """``colearn learner serve`` and ``colearn certs init|issue``."""
    learner = sub.add_parser("learner", help="host one learner over gRPC (learner serve)")
    lsub = learner.add_subparsers(dest="learner_command", metavar="COMMAND", required=True)
    serve = lsub.add_parser(
        "serve",
        help="host one learner over gRPC for a coordinator to drive",
        description="Host one learner: a task's learner on your data (--task, --data-dir), "
        "on one share of a bundled data set (--share I/N, as colearn run would give it), "
        "or your own (--factory). Logs every call on stderr.",
    )
    what = serve.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", help="task name (see colearn tasks)")
    what.add_argument(
        "--factory", metavar="MODULE:CALLABLE", help="a callable returning your learner"
    )
    serve.add_argument("--data-dir", help="directory with the data files, for tasks that read them")
    serve.add_argument(
        "--share",
        metavar="I/N",
        help="hold share I of N (from 0) of the task's data set, as colearn run --learners N "
        "gives learner-I",
    )
    serve.add_argument("--partition", help="how the data set is shared out, with --share")
    serve.add_argument(
        "--split",
        help="each learner's train, vote and test shares, TRAIN,VOTE,TEST (default "
        "0.6,0.2,0.2), with --share",
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the data split and model")
    serve.add_argument(
        "-c",
        dest="overrides",
        action="append",
        default=[],
        metavar="params.KEY=VALUE",
        help="a task option, e.g. -c params.epochs=2 (repeatable)",
    )
    serve.add_argument(
        "--id", dest="learner_id", help="learner id (default learner-I with --share)"
    )
    serve.add_argument(
        "--host",
        help="address to listen on (default 127.0.0.1 with --insecure, "
        "every interface with --certs)",
    )
    serve.add_argument("--port", type=int, default=7001, help="port (0: a free one; default 7001)")
    serve.add_argument("--port-file", help="write the port here once listening (for launchers)")
    serve.add_argument("--certs", metavar="DIR", help="mutual TLS with the CA and DIR/ID.pem")
    serve.add_argument("--cert-name", help="certificate name in --certs (default: the learner id)")
    serve.add_argument(
        "--insecure", action="store_true", help="plaintext, no TLS (binds 127.0.0.1 unless --host)"
    )
    serve.add_argument(
        "--coordinator-name",
        dest="coordinator_names",
        action="append",
        metavar="NAME",
        help="with --certs: the certificate name a client must present to call this "
        "learner (default coordinator; repeat to allow several). Other parties' "
        "certificates from the same CA are refused",
    )
    serve.add_argument(
        "--max-bytes",
        type=int,
        help="largest weights transfer accepted, in bytes (default 8 GiB)",
    )
    serve.add_argument(
        "--share-cores",
        action="store_true",
        help="the learners of one experiment share this machine's cores: one thread per "
        "call while several learners are called at once (colearn run --processes sets it)",
    )
    serve.add_argument("--quiet", action="store_true", help="log only warnings")

    certs = sub.add_parser("certs", help="a small CA and certificates for mutual TLS")
    csub = certs.add_subparsers(dest="certs_command", metavar="COMMAND", required=True)
    init = csub.add_parser("init", help="make a CA in DIR (ca.pem, ca.key)")
    init.add_argument("directory")
    init.add_argument("--days", type=int, default=365)
    issue = csub.add_parser("issue", help="issue certificates DIR/NAME.pem and DIR/NAME.key")
    issue.add_argument("directory")
    issue.add_argument("names", nargs="+", metavar="NAME", help="learner ids, or coordinator")
    issue.add_argument("--days", type=int, default=365)


# -- colearn certs ----------------------------------------------------------------------------


def cmd_certs(args: argparse.Namespace) -> int:
    from colearning.network import tls

    if args.days < 1:
        raise ConfigError(f"--days must be >= 1; got {args.days}")
    if args.certs_command == "init":
        path = tls.init_ca(args.directory, days=args.days)
        print(
            f"CA written to {path} (its key, {tls.CA_KEY}, stays with whoever issues certificates)"
        )
        return exit_codes.OK
    for name in args.names:
        cert, key = tls.issue(args.directory, name, days=args.days)
        print(f"{name}: {cert} and {key}")
    return exit_codes.OK


# -- colearn learner serve --------------------------------------------------------------------


def cmd_learner(args: argparse.Namespace) -> int:
    from colearning.cli.config import apply_override

    settings: dict[str, Any] = {}
    for text in args.overrides:
        apply_override(settings, text)
    if set(settings) - {"params"}:
        raise ConfigError(
            f"learner serve takes task options only (-c params.KEY=VALUE); got "
            f"{sorted(set(settings) - {'params'})[0]!r}"
        )
    if not args.certs and not args.insecure:
        raise ConfigError(
            "learner serve needs --certs DIR (mutual TLS) or an explicit --insecure "
            "(plaintext, bound to 127.0.0.1 unless --host)"
        )
    if args.certs and args.insecure:
        raise ConfigError("give --certs DIR or --insecure, not both")
    if args.coordinator_names and not args.certs:
        raise ConfigError(
            "--coordinator-name checks the client's certificate; it needs --certs DIR "
            "(plaintext clients have no identity)"
        )
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port must be in 0-65535; got {args.port}")
    if args.max_bytes is not None and args.max_bytes < 1:
        raise ConfigError(f"--max-bytes must be >= 1; got {args.max_bytes}")

    from colearning.network import serving, tls

    for name in args.coordinator_names or ():
        tls.check_name(name)
    credentials = None
    if args.certs:  # read first: a missing file should not wait for the data to load
        name = args.cert_name or args.learner_id
        if name is None and args.share:
            name = f"learner-{serving.parse_share(args.share)[0]}"
        if name is None:
            raise ConfigError("with --certs, give --id NAME (or --cert-name NAME)")
        credentials = tls.server_credentials(args.certs, name)
    share = serving.parse_share(args.share) if args.share else None
    if args.factory:
        if share or args.partition or args.split or settings:
            raise ConfigError(
                "--share, --partition, --split and -c are for --task learners; a --factory "
                "learner loads its own data"
            )
        if not args.learner_id:
            raise ConfigError("a --factory learner needs --id NAME (the learner id it serves as)")
        served = serving.factory_learner(args.factory, args.learner_id)
    else:
        if args.partition and not share:
            raise ConfigError("--partition shares a data set out; it needs --share I/N")
        if args.split and not share:
            raise ConfigError("--split divides a share of the data set; it needs --share I/N")
        served = serving.task_learner(
            args.task,
            share=share,
            partition=args.partition,
            seed=args.seed,
            data_dir=args.data_dir,
            params=settings.get("params"),
            learner_id=args.learner_id,
            split=args.split,
        )
    return _serve(args, served, credentials)


def _coordinators(args: argparse.Namespace, credentials: Any) -> tuple[str, ...] | None:
    """The client identities a TLS learner accepts (``None``: plaintext, no identity)."""
    if credentials is None:
        return None
    from colearning.network.tls import COORDINATOR

    return tuple(args.coordinator_names or (COORDINATOR,))


def _serve(args: argparse.Namespace, served: Any, credentials: Any) -> int:
    from colearning.network.processes import write_port_file
    from colearning.network.serving import serve
    from colearning.network.transfer import DEFAULT_MAX_BYTES

    port_file = args.port_file
    serve(
        served,
        host=args.host or ("0.0.0.0" if credentials is not None else "127.0.0.1"),
        port=args.port,
        credentials=credentials,
        max_bytes=args.max_bytes or DEFAULT_MAX_BYTES,
        share_cores=args.share_cores,
        quiet=args.quiet,
        coordinators=_coordinators(args, credentials),
        ready=(lambda port: write_port_file(port_file, port)) if port_file else None,
    )
    return exit_codes.OK


# -- colearn run --processes / --remote -------------------------------------------------------


def is_network_run(args: argparse.Namespace) -> bool:
    """Whether ``colearn run`` goes over learner servers (flags, or a stored --remote
    experiment being resumed)."""
    if args.processes or args.remote:
        return True
    if args.resume:
        from pathlib import Path

        from colearning.core.store import DB_NAME, opened

        if (Path(args.resume) / DB_NAME).exists():
            with opened(args.resume) as store:
                return "remote" in (store.get_meta("network") or {})
    return False


def _client_credentials(args: argparse.Namespace) -> Any:
    if not args.certs:
        return None
    from colearning.network import tls

    return tls.client_credentials(args.certs, args.cert_name)


def run_network(
    args: argparse.Namespace, settings: dict[str, Any], table: Any, on_start: Any
) -> Any:
    """Play ``colearn run`` over learner servers; returns the RunOutcome."""
    if args.processes and args.remote:
        raise ConfigError("give --processes (local learner servers) or --remote, not both")
    pipeline = False if args.no_pipeline else None
    if args.processes:
        return _run_processes(args, settings, table, on_start, pipeline)
    return _run_remote(args, settings, table, pipeline)


def _run_processes(
    args: argparse.Namespace, settings: dict[str, Any], table: Any, on_start: Any, pipeline: Any
) -> Any:
    import time

    from colearning.cli.config import to_run_config
    from colearning.network.runs import run_processes
    from colearning.tasks.runner import RunConfig

    if args.insecure:
        raise ConfigError("--insecure is for --remote; --processes serves on 127.0.0.1")
    creds = _client_credentials(args)
    credentials = (args.certs, creds) if creds is not None else None
    if args.resume:
        if args.config or args.out:
            raise ConfigError(
                "--resume DIR continues a stored experiment with its stored settings; "
                "drop the config file and --out (only --rounds may change)"
            )
        from colearning.core.store import opened

        with opened(args.resume) as store:
            stored = RunConfig.from_dict(store.config)
        args.experiment_dir = args.resume  # for the Ctrl-C message
        overrides = RunConfig.from_dict({**stored.to_dict(), **settings}) if settings else None
        return run_processes(
            stored,
            None,
            resume=args.resume,
            overrides=overrides,
            observers=[table],
            on_start=on_start,
            credentials=credentials,
            pipeline=pipeline,
        )
    config, out = to_run_config(settings)
    out = out or f"runs/{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    args.experiment_dir = out  # for the Ctrl-C message
    return run_processes(
        config,
        out,
        observers=[table],
        on_start=on_start,
        credentials=credentials,
        pipeline=pipeline,
    )


def _run_remote(
    args: argparse.Namespace, settings: dict[str, Any], table: Any, pipeline: Any
) -> Any:
    from colearning.network.pool import parse_endpoints
    from colearning.network.runs import resume_remote, run_remote

    if args.certs and args.insecure:
        raise ConfigError("give --certs DIR or --insecure, not both")
    if not args.certs and not args.insecure:
        raise ConfigError(
            "--remote needs --certs DIR (mutual TLS; see colearn certs) or, on a network you "
            "trust, an explicit --insecure"
        )
    if args.config:
        raise ConfigError("--remote takes its settings from flags; drop the config file")
    credentials = _client_credentials(args)
    text = args.format == "text"

    def on_start(pool: Any, config: dict[str, Any], first_round: int) -> None:
        table.bar.total = int(config["rounds"])
        table.bar.done = table.bar.first = first_round
        if text:
            where = ", ".join(f"{lid} at {pool.address(lid)}" for lid in pool.learner_ids)
            print(
                f"{config['task']}: {config['learners']} remote learners ({where}), "
                f"{config['rounds']} rounds, threshold {config['vote_threshold']}, seed "
                f"{config['seed']}, {'mutual TLS' if credentials else 'PLAINTEXT'}"
                + (f"; resuming at round {first_round}" if first_round else "")
            )
        table.bar.draw()

    flat = {k: v for k, v in settings.items() if k != "out"}
    if args.resume:
        if args.out:
            raise ConfigError("--resume DIR continues in DIR; drop --out")
        args.experiment_dir = args.resume  # for the Ctrl-C message
        return resume_remote(
            args.resume,
            flat,
            observers=[table],
            on_start=on_start,
            credentials=credentials,
            pipeline=pipeline,
            connect_timeout=args.connect_timeout,
        )
    if not args.out:
        raise ConfigError("--remote needs --out DIR, the experiment directory to create")
    args.experiment_dir = args.out  # for the Ctrl-C message
    return run_remote(
        parse_endpoints(args.remote),
        args.out,
        flat,
        observers=[table],
        on_start=on_start,
        credentials=credentials,
        pipeline=pipeline,
        connect_timeout=args.connect_timeout,
    )
