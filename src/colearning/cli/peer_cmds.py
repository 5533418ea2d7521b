"""``colearn ledger deploy`` and ``colearn peer``: peer mode, one party each, no
coordinator. Each party serves its own weights by id over gRPC (``--serve HOST:PORT``,
mutual TLS with ``--certs DIR``), or the parties share a directory
(``--exchange-dir``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from colearning.cli import exit_codes
from colearning.core.exceptions import ConfigError


def _task_options(p: Any) -> None:
    p.add_argument("--task", required=True, help="task name (see `colearn tasks`)")
    p.add_argument("--learners", type=int, help="number of parties (default: the task's)")
    p.add_argument("--partition", help="how the task's data is shared out (simulations)")
    p.add_argument(
        "--split",
        help="each learner's train, vote and test shares, TRAIN,VOTE,TEST (default 0.6,0.2,0.2)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of data and models (default 0)")
    p.add_argument("--data-dir", help="directory with data files, for tasks that read them")
    p.add_argument(
        "-c", dest="overrides", action="append", default=[], metavar="params.KEY=VALUE",
        help="a task option, e.g. -c params.epochs=2 (repeatable)",
    )  # fmt: skip
    p.add_argument("--chain-url", required=True, help="JSON-RPC URL of the chain")
    p.add_argument(
        "--exchange-dir",
        help="directory the parties share, where weights are published by id (instead of --serve)",
    )


def add_parsers(sub: Any, ledger_sub: Any) -> None:
    deploy = ledger_sub.add_parser(
        "deploy", help="deploy a ledger contract for a peer-mode experiment; prints its address"
    )
    _task_options(deploy)
    deploy.add_argument(
        "--addresses",
        required=True,
        help="file with each party's address, one a line, in learner order",
    )
    deploy.add_argument("--threshold", type=float, default=0.5, help="vote threshold (0.5)")
    deploy.add_argument(
        "--committee",
        type=int,
        default=0,
        help="voters the chain draws each round from the non-proposers (0: all of them)",
    )
    deploy.add_argument("--propose-period", type=int, default=600, help="seconds to propose")
    deploy.add_argument("--vote-period", type=int, default=600, help="seconds to vote")
    deploy.add_argument(
        "--fund", type=float, default=0.0, help="ether the operator sends each party for gas"
    )
    deploy.add_argument("--operator-key-file", help="key of the account paying for the deploy")

    peer = sub.add_parser("peer", help="run one party of a peer-mode experiment (no coordinator)")
    _task_options(peer)
    peer.add_argument("--contract", required=True, help="the contract's address (0x...)")
    peer.add_argument("--key-file", required=True, help="this party's key (keystore or hex)")
    peer.add_argument("--password-file", help="the keystore's password (or COLEARN_KEY_PASSWORD)")
    peer.add_argument("--rounds", type=int, required=True, help="take part until this many rounds")
    peer.add_argument("--poll", type=float, default=0.2, help="seconds between looks at the chain")
    peer.add_argument(
        "--linger",
        type=float,
        default=2.0,
        help="seconds to go on serving after the last round, for slower parties (2)",
    )
    peer.add_argument(
        "--serve",
        metavar="HOST:PORT",
        help="serve this party's weights by id over gRPC there (port 0: a free one); the "
        "others fetch them from the endpoint it announces on chain",
    )
    peer.add_argument(
        "--announce",
        metavar="HOST:PORT",
        help="the address the others reach this party's server at (default: --serve's)",
    )
    peer.add_argument(
        "--certs",
        help="directory with ca.pem and this party's learner-I.pem/.key: mutual TLS (I: its "
        "index in the contract)",
    )
    peer.add_argument(
        "--insecure", action="store_true", help="serve and fetch over plaintext (no --certs)"
    )
    peer.add_argument(
        "--out",
        help="directory where this party keeps its record (rounds, its ballots, adopted "
        "weights) for `colearn ledger verify DIR`",
    )


def _learner(args: argparse.Namespace, index: int) -> Any:
    from colearning.cli.config import apply_override
    from colearning.tasks.runner import RunConfig, build

    settings: dict[str, Any] = {}
    for text in args.overrides:
        apply_override(settings, text)
    config = RunConfig(
        task=args.task,
        learners=args.learners,
        partition=args.partition,
        split=args.split,
        seed=args.seed,
        data_dir=args.data_dir,
        params=settings.get("params", {}),
        baselines=False,
    )
    setup = build(config)
    if not 0 <= index < len(setup.learners):
        raise ConfigError(f"this party is learner {index}; the task has {len(setup.learners)}")
    return setup.learners[index], len(setup.learners)


def cmd_deploy(args: argparse.Namespace) -> int:
    import os

    from eth_utils import to_checksum_address

    from colearning.core.codec import encode, weights_id
    from colearning.core.tally import threshold_fraction
    from colearning.ledger.chain import RpcChain
    from colearning.ledger.client import LedgerClient, LedgerConfig
    from colearning.ledger.keys import operator_key
    from colearning.ledger.peer import DirectoryExchange

    lines = Path(args.addresses).read_text().split()
    try:
        learners = tuple(bytes.fromhex(a.removeprefix("0x")) for a in lines)
    except ValueError as exc:
        raise ConfigError(f"{args.addresses} must hold one 0x address a line") from exc
    first, n = _learner(args, 0)
    if n != len(learners):
        raise ConfigError(f"{args.addresses} lists {len(learners)} parties; the task has {n}")
    blob = encode(first.mli_get_current_weights())
    initial = weights_id(blob)
    if args.exchange_dir:  # with --serve, learner 0's peer serves the initial weights
        DirectoryExchange(args.exchange_dir).publish(initial, blob)
    chain = RpcChain(args.chain_url)
    try:
        operator = operator_key(chain.chain_id, args.operator_key_file, embedded=False)
        config = LedgerConfig(
            experiment=os.urandom(32),
            learners=learners,
            threshold=threshold_fraction(args.threshold),
            propose_period=args.propose_period,
            vote_period=args.vote_period,
            initial_weights=bytes.fromhex(initial),
            committee=args.committee,
        )
        client, receipt = LedgerClient.deploy(chain, operator, config)
        if args.fund > 0:
            client.fund(learners, int(args.fund * 10**18))
    finally:
        chain.close()
    document = {
        "contract": to_checksum_address(client.address),
        "chain_id": chain.chain_id,
        "deploy_block": receipt.block_number,
        "initial_weights_id": initial,
        "learners": [to_checksum_address(a) for a in learners],
    }
    print(json.dumps(document))
    return exit_codes.OK


def _host_port(option: str, text: str, *, any_port: bool) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    low = 0 if any_port else 1
    if not sep or not host or not port.isdigit() or not low <= int(port) <= 65535:
        raise ConfigError(
            f"{option} {text!r} must be HOST:PORT with a port in {low}-65535"
            f"{' (0: a free one)' if any_port else ''}; e.g. {option} 127.0.0.1:7001"
        )
    return host, int(port)


def _check_exchange(args: argparse.Namespace) -> tuple[str, int] | None:
    """Check the exchange options before anything starts; ``(host, port)`` for --serve."""
    if bool(args.serve) == bool(args.exchange_dir):
        raise ConfigError(
            "give exactly one of --serve HOST:PORT (serve weights over gRPC) and "
            f"--exchange-dir DIR (a shared directory); got {'both' if args.serve else 'neither'}"
        )
    if args.exchange_dir:
        for option in ("certs", "announce", "insecure"):
            if getattr(args, option):
                raise ConfigError(
                    f"--{option} goes with --serve, not --exchange-dir; drop it or use --serve"
                )
        return None
    host, port = _host_port("--serve", args.serve, any_port=True)
    if args.certs and args.insecure:
        raise ConfigError("--certs (mutual TLS) and --insecure (plaintext) exclude each other")
    if not args.certs and not args.insecure:
        raise ConfigError(
            f"--serve {args.serve} without --certs would serve plaintext; give --certs DIR "
            "(mutual TLS) or, on a network you trust, --insecure"
        )
    if args.announce:
        _host_port("--announce", args.announce, any_port=False)
    elif host in ("0.0.0.0", "::"):
        raise ConfigError(
            f"--serve {args.serve} listens on every address, which the others cannot dial; "
            "add --announce HOST:PORT, the address they reach this machine at"
        )
    return host, port


def _exchange(args: argparse.Namespace, index: int, serve: tuple[str, int] | None) -> Any:
    from colearning.ledger.peer import DirectoryExchange, GrpcExchange

    if serve is None:
        return DirectoryExchange(args.exchange_dir)
    host, port = serve
    return GrpcExchange(f"learner-{index}", host, port, certs=args.certs, announce=args.announce)


def cmd_peer(args: argparse.Namespace) -> int:
    from colearning.ledger.chain import RpcChain
    from colearning.ledger.client import LedgerClient
    from colearning.ledger.keys import Key, read_key_file
    from colearning.ledger.peer import Peer, print_round

    serve = _check_exchange(args)
    password = Path(args.password_file).read_text().rstrip("\n") if args.password_file else None
    key = read_key_file(args.key_file, password)
    chain = RpcChain(args.chain_url)
    exchange = None
    try:
        address = bytes.fromhex(args.contract.removeprefix("0x"))
        client = LedgerClient(chain, address, Key.generate())
        learners = client.config().learners
        if key.address not in learners:
            raise ConfigError(
                f"{key.checksum} is not a party of the contract {args.contract}; use the key "
                "registered at deployment"
            )
        index = learners.index(key.address)
        if serve is not None and args.certs:
            from colearning.network import tls

            tls.load(args.certs, f"learner-{index}")  # this party's files, named and checked
        exchange = _exchange(args, index, serve)
        learner, _ = _learner(args, index)
        if not args.linger >= 0:
            raise ConfigError(f"--linger must be a number of seconds >= 0; got {args.linger}")
        peer = Peer(
            client,
            key,
            learner,
            exchange,
            args.poll,
            print_round,
            record_dir=args.out,
            linger=args.linger,
        )
        result = peer.run(args.rounds)
    finally:
        if exchange is not None:
            exchange.close()
        chain.close()
    print(json.dumps({"final_weights_id": result.final_weights_id}), flush=True)
    print(f"peer {key.checksum}: {len(result.rounds)} rounds", file=sys.stderr)
    return exit_codes.OK
