"""The coordinator SIGKILLed at every named point of the round, in every round mode and
with the ledger, one kill per run, each run resumed to the end; prints the table.

Every run must end with its mode's uninterrupted final weights id and pass
``colearn verify`` (and ``colearn ledger verify`` with ``--ledger evm``). The points,
the modes and the checks are ``tests/faults/harness.py``'s (``tests/cli/paused_run.py``
pauses the run at a point; nothing waits on a clock). ``tests/faults`` runs a few of
them in CI, several kills to a run.

    .venv/bin/python bench/faults.py                        # every mode and point
    .venv/bin/python bench/faults.py --modes single evm --jobs 4
    .venv/bin/python bench/faults.py --anvil                # and the ledger on anvil
    .venv/bin/python bench/faults.py --json runs/faults.json
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "faults"))
import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(harness.MODES), choices=harness.MODES)
    parser.add_argument("--points", nargs="+", help="only these points (default: all)")
    parser.add_argument("--rounds", type=int, default=harness.ROUNDS)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--anvil", action="store_true", help="also the ledger on an anvil node")
    parser.add_argument("--json", help="write every outcome here too")
    args = parser.parse_args()

    node = None
    if args.anvil:
        from colearning.ledger.anvil import Anvil

        node = Anvil()
    work = Path(tempfile.mkdtemp(prefix="colearning-faults-"))
    cases: list[tuple[str, str | None, str]] = []  # (mode, chain url, point)
    refs: dict[tuple[str, str | None], harness.Reference] = {}
    variants = [(m, None) for m in args.modes]
    if node is not None:
        variants.append(("evm", node.url))
    started = time.perf_counter()
    for mode, url in variants:
        name = mode if url is None else "evm-anvil"
        refs[(mode, url)] = harness.reference(
            mode, work / f"whole-{name}" / "exp", args.rounds, chain_url=url
        )
        for point in harness.points_for(mode):
            if args.points is None or point in args.points:
                cases.append((mode, url, point))

    def one(i: int) -> tuple[str, harness.Outcome]:
        mode, url, point = cases[i]
        name = mode if url is None else "evm-anvil"
        try:
            outcome = harness.play(
                mode,
                [point],
                refs[(mode, url)],
                work / f"{i:03d}-{name}-{point}",
                rounds=args.rounds,
                chain_url=url,
            )
        except AssertionError as exc:  # the point not reached, or rounds lost: a failure
            outcome = harness.Outcome(
                mode, [harness.Kill(point, -1, -1, 0.0)], "", False, False, False, None, 0.0
            )
            outcome.notes.append(str(exc).splitlines()[0])
        return name, outcome

    print(f"{len(cases)} runs, {args.rounds} rounds each, toy-cli, 4 learners, seed 7\n")
    print("| mode | point | round | rounds left | final id | verify | ledger verify | s |")
    print("|---|---|---:|---:|---|---|---|---:|", flush=True)

    def row(name: str, o: harness.Outcome) -> None:  # as each run ends: a cut-short
        k = o.kills[0]  # bench still shows what it did
        ledger = "-" if o.ledger_verify_ok is None else ("pass" if o.ledger_verify_ok else "FAIL")
        print(
            f"| {name} | {k.point} | {k.round_index} | {k.committed} | "
            f"{'same' if o.same_final_id and o.same_rounds else 'DIFFERENT'} | "
            f"{'pass' if o.verify_ok else 'FAIL'} | {ledger} | {o.seconds:.1f} |",
            flush=True,
        )

    # SIGTERM (a timeout) ends the run through the finally, which stops anvil
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for name, o in pool.map(one, range(len(cases))):
                row(name, o)
                results.append((name, o))
    finally:
        if node is not None:
            node.stop()
    wall = time.perf_counter() - started
    same = sum(o.same_final_id and o.same_rounds for _, o in results)
    verified = sum(o.verify_ok for _, o in results)
    ledgers = [o for _, o in results if o.ledger_verify_ok is not None]
    print(
        f"\n{len(results)} runs killed and resumed: {same} ended with the uninterrupted "
        f"final weights id, {verified} passed colearn verify, "
        f"{sum(bool(o.ledger_verify_ok) for o in ledgers)}/{len(ledgers)} passed "
        f"colearn ledger verify; {wall:.0f} s with {args.jobs} jobs"
    )
    for name, o in results:
        for note in o.notes:
            print(f"{name} {o.kills[0].point}: {note}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "mode": name,
                        "kills": [k.__dict__ for k in o.kills],
                        "final_weights_id": o.final_weights_id,
                        "same_final_id": o.same_final_id,
                        "same_rounds": o.same_rounds,
                        "verify_ok": o.verify_ok,
                        "ledger_verify_ok": o.ledger_verify_ok,
                        "seconds": o.seconds,
                        "notes": o.notes,
                    }
                    for name, o in results
                ],
                indent=2,
            )
        )
    return 0 if all(o.ok and not o.notes for _, o in results) else 1


if __name__ == "__main__":
    sys.exit(main())
