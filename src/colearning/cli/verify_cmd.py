"""``colearn verify DIR``: check a whole experiment directory and say what is wrong."""

from __future__ import annotations

import argparse
import json
import sys

from colearning.cli import exit_codes


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify",
        help="check an experiment directory: the chain of rounds, every record and blob",
        description="Check every round's record and its link to the round before, the "
        "SQL rows against the records, every weights blob against its id, and the "
        "summary. Reads only (a read-only copy works). Exit 0: intact; "
        f"{exit_codes.DAMAGED}: damaged (each problem is listed).",
    )
    verify.add_argument("directory", help="experiment directory")
    verify.add_argument("--format", choices=["text", "json"], default="text")
    verify.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from colearning.core.verify import verify

    report = verify(args.directory)
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return exit_codes.OK if report.ok else exit_codes.DAMAGED
    head = report.head.record_hash if report.head is not None else None
    chain = f"chain head {head}" if head else "no chain"
    if report.ok:
        print(
            f"{report.directory}: intact: {report.rounds} rounds, {report.blobs_checked} "
            f"weight blobs checked, {chain}"
        )
    else:
        n = len(report.damage)
        print(f"{report.directory}: DAMAGED: {n} problem{'s' if n != 1 else ''} found")
        for damage in report.damage:
            print(f"  {damage}")
        print(
            f"Restore the directory from a copy, or start a new experiment; {report.rounds} "
            f"rounds, {report.blobs_checked} weight blobs checked, {chain}"
        )
    for note in report.notes:
        print(f"note: {note}")
    return exit_codes.OK if report.ok else exit_codes.DAMAGED
