"""``colearn ledger ...`` and ``colearn peer``: the ledger's commands.

- ``ledger verify DIR``: audit an experiment against its chain; exit 3 on a discrepancy.
- ``ledger show DIR``: the on-chain history as a table.
- ``ledger anvil``: run a local anvil node (the npm package ``@foundry-rs/anvil``).
- ``ledger keygen``: a new party key, as an encrypted keystore.
- ``ledger deploy``: deploy a contract for peers (peer mode).
- ``peer``: one party of a peer-mode experiment, no coordinator.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from colearning.cli import exit_codes
from colearning.core.exceptions import ConfigError


def add_parsers(sub: Any) -> None:
    """Add ``ledger`` and ``peer`` to the ``colearn`` subcommands."""
    ledger = sub.add_parser("ledger", help="audit and inspect experiments run on a ledger")
    lsub = ledger.add_subparsers(dest="ledger_command", metavar="LEDGER_COMMAND")

    verify = lsub.add_parser(
        "verify",
        help="check an experiment directory against its chain; exit 3 on any discrepancy",
    )
    verify.add_argument("directory", help="experiment directory (run with --ledger evm)")
    verify.add_argument("--chain-url", help="the chain's JSON-RPC URL (default: the recorded one)")
    verify.add_argument(
        "--replay",
        action="store_true",
        help="also replay the embedded chain's signed transactions and compare state roots",
    )
    verify.add_argument("--format", choices=["text", "json"], default="text")

    show = lsub.add_parser("show", help="print the on-chain history of an experiment")
    show.add_argument("directory", help="experiment directory (run with --ledger evm)")
    show.add_argument("--chain-url", help="the chain's JSON-RPC URL (default: the recorded one)")
    show.add_argument("--format", choices=["text", "json"], default="text")

    anvil = lsub.add_parser("anvil", help="run a local anvil node in the foreground")
    anvil.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    anvil.add_argument(
        "--state", help="file anvil loads its state from and saves it to (keeps the chain)"
    )

    keygen = lsub.add_parser("keygen", help="write a new party key as an encrypted keystore")
    keygen.add_argument("--out", required=True, help="keystore file to create")
    keygen.add_argument(
        "--password-file", help="file holding the password (default: COLEARN_KEY_PASSWORD)"
    )

    from colearning.cli import peer_cmds

    peer_cmds.add_parsers(sub, lsub)


def cmd_ledger(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "verify": cmd_verify,
        "show": cmd_show,
        "anvil": cmd_anvil,
        "keygen": cmd_keygen,
    }
    from colearning.cli import peer_cmds

    handlers["deploy"] = peer_cmds.cmd_deploy
    name = getattr(args, "ledger_command", None)
    if name is None:
        raise ConfigError("name a ledger command: verify, show, anvil, keygen or deploy")
    return handlers[name](args)


def cmd_verify(args: argparse.Namespace) -> int:
    from colearning.ledger.audit import verify

    report = verify(args.directory, args.chain_url, replay=args.replay)
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(
            f"{report.directory}: contract {report.contract} on {report.chain}; "
            f"{report.rounds_on_chain} rounds on chain ({report.accepted_on_chain} accepted), "
            f"{report.rounds_in_directory} in the directory"
        )
        for d in report.discrepancies:
            print(f"  DISCREPANCY {d}")
        if report.ok:
            print(
                "verified: every round's proposer, ballot, signature and tally, and every "
                "accepted weights blob, match the chain; final weights "
                f"{(report.final_weights_id or '')[:12]}"
            )
        else:
            print(f"{len(report.discrepancies)} discrepancies")
    return exit_codes.OK if report.ok else exit_codes.AUDIT_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    from eth_utils import to_checksum_address

    from colearning.ledger.audit import load_history
    from colearning.ledger.history import BALLOT_NAMES, SKIP_NAMES

    info, chain, _client, history = load_history(args.directory, args.chain_url)
    try:
        ids = list(info.learners)
        names = {bytes.fromhex(a[2:]): lid for lid, a in info.learners.items()}
        committee = int((history.opened or {}).get("committee") or 0)
        if args.format == "json":
            document = {
                "contract": info.contract,
                "chain": chain.where,
                "chain_id": chain.chain_id,
                "learners": info.learners,
                "committee": committee or None,
                "rounds": [
                    {
                        "round_index": r.round_index,
                        "proposer": names.get(r.proposer or b""),
                        "status": r.status,
                        "weights_id": None if r.weights is None else r.weights.hex(),
                        "skip_reason": None
                        if r.skip_reason is None
                        else SKIP_NAMES.get(r.skip_reason),
                        "ballots": {ids[i]: BALLOT_NAMES[c] for i, c in sorted(r.ballots.items())},
                        "approvals": r.approvals,
                        "eligible": r.eligible,
                        "blocks": r.blocks,
                    }
                    for r in history.rounds
                ],
                "anomalies": history.anomalies,
            }
            json.dump(document, sys.stdout, indent=1)
            sys.stdout.write("\n")
            return exit_codes.OK
        print(
            f"contract {info.contract} on {chain.where} (chain id {chain.chain_id}); "
            f"{len(ids)} learners, threshold "
            f"{(history.opened or {}).get('threshold_num')}/"
            f"{(history.opened or {}).get('threshold_den')}"
            + (f", a committee of {committee} drawn by the chain each round" if committee else "")
        )
        print("ballots: A approve, R reject, x abstain, . none, P proposer")
        print(f"{'round':>5}  {'proposer':<12} {'weights':<12}  {'ballots':<{max(7, len(ids))}}  "
              f"{'tally':>7}  outcome")  # fmt: skip
        for r in history.rounds:
            marks = []
            for i in range(len(ids)):
                if r.proposer is not None and names.get(r.proposer) == ids[i]:
                    marks.append("P")
                else:
                    marks.append({0: "R", 1: "A", 2: "x"}.get(r.ballots.get(i, -1), "."))
            tally = "" if r.approvals is None else f"{r.approvals}/{r.eligible}"
            outcome: str = r.status
            if r.status == "skipped" and r.skip_reason is not None:
                outcome += f" ({SKIP_NAMES.get(r.skip_reason)})"
            proposer = names.get(r.proposer or b"") or (
                to_checksum_address(r.proposer)[:12] if r.proposer else "-"
            )
            weights = "-" if r.weights is None else r.weights.hex()[:12]
            print(
                f"{r.round_index:>5}  {proposer:<12} {weights:<12}  "
                f"{''.join(marks):<{max(7, len(ids))}}  {tally:>7}  {outcome}"
            )
        for text in history.anomalies:
            print(f"ANOMALY {text}")
        return exit_codes.OK
    finally:
        chain.close()


def cmd_anvil(args: argparse.Namespace) -> int:
    from colearning.ledger.anvil import Anvil

    with Anvil(port=args.port or None, state=args.state, quiet=False) as node:
        saves = f" and saves its state to {args.state}" if args.state else ""
        print(f"anvil listening on {node.url}; Ctrl-C stops it{saves}", flush=True)
        node.wait()
    return exit_codes.OK


def cmd_keygen(args: argparse.Namespace) -> int:
    import os

    from colearning.ledger.keys import Key, write_keystore

    out = Path(args.out)
    if out.exists():
        raise ConfigError(f"{out} exists already; choose a new --out file")
    if args.password_file:
        password = Path(args.password_file).read_text().rstrip("\n")
    else:
        password = os.environ.get("COLEARN_KEY_PASSWORD", "")
    if not password:
        raise ConfigError(
            "a keystore needs a password: pass --password-file FILE or set COLEARN_KEY_PASSWORD"
        )
    key = Key.generate()
    write_keystore(out, key, password)
    print(f"{key.checksum}  written to {out} (encrypted keystore)")
    return exit_codes.OK
