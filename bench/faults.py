"""The coordinator SIGKILLed at every named point of the round, in every round mode and
with the ledger, in an accepted and in a rejected round, one kill per run, each run
resumed to the end; prints the table.

Every run must end with its mode's uninterrupted final weights id and pass
``colearn verify`` (and ``colearn ledger verify`` with ``--ledger evm``). The points,
the modes and the checks are ``tests/faults/harness.py``'s (``tests/cli/paused_run.py``
pauses the run at a point; nothing waits on a clock). ``tests/faults`` runs a few of
them in CI, several kills to a run.

A kill inside a round lands in the first round from round 1 on of the uninterrupted
run that reaches the point and has the outcome asked for (``--kill-in``): an accepted
round, and a rejected one at every point a rejected round reaches (not ``adopt``,
``blob-write``, ``commit``; in a screened round whose every proposal failed its
screening, no point from ``combine`` to ``decided`` either). The points outside rounds
(``create``, ``created``, ``initial-blob``, ``deploy``, ``summary``) are killed once, in
the accepted set. A mode whose uninterrupted run of ``--rounds`` rounds rejects none
plays its rejected kills in a longer run (``--rounds`` doubled until one is rejected,
at most ``MAX_ROUNDS``).

    .venv/bin/python bench/faults.py                        # every mode and point
    .venv/bin/python bench/faults.py --modes single evm --jobs 4
    .venv/bin/python bench/faults.py --anvil                # and the ledger on anvil
    .venv/bin/python bench/faults.py --kill-in rejected      # only in rejected rounds
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

MAX_ROUNDS = 48
KINDS = ("accepted", "rejected")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=list(harness.MODES), choices=harness.MODES)
    parser.add_argument("--points", nargs="+", help="only these points (default: all)")
    parser.add_argument("--rounds", type=int, default=harness.ROUNDS)
    parser.add_argument(
        "--kill-in",
        nargs="+",
        default=list(KINDS),
        choices=KINDS,
        help="kill inside accepted rounds, rejected rounds, or both (default)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--anvil", action="store_true", help="also the ledger on an anvil node")
    parser.add_argument("--json", help="write every outcome here too")
    args = parser.parse_args()

    node = None
    if args.anvil:
        from colearning.ledger.anvil import Anvil

        node = Anvil()
    work = Path(tempfile.mkdtemp(prefix="colearning-faults-"))
    # (mode, chain url, rounds of the run, point, round killed, the round's outcome)
    cases: list[tuple[str, str | None, int, str, int, str]] = []
    refs: dict[tuple[str, str | None, int], harness.Reference] = {}
    variants = [(m, None) for m in args.modes]
    if node is not None:
        variants.append(("evm", node.url))
    started = time.perf_counter()

    def ref_of(mode: str, url: str | None, rounds: int) -> harness.Reference:
        if (mode, url, rounds) not in refs:
            name = mode if url is None else "evm-anvil"
            refs[(mode, url, rounds)] = harness.reference(
                mode, work / f"whole-{name}-{rounds}" / "exp", rounds, chain_url=url
            )
        return refs[(mode, url, rounds)]

    def wanted(point: str) -> bool:
        return args.points is None or point in args.points

    for mode, url in variants:
        ref = ref_of(mode, url, args.rounds)
        if "accepted" in args.kill_in:
            for point in harness.points_for(mode, url):
                if wanted(point):
                    try:
                        at = harness.choose_round(point, ref, 0, status="accepted")
                    except AssertionError:  # no accepted round reaches it
                        continue
                    cases.append((mode, url, args.rounds, point, at, "accepted"))
        if "rejected" in args.kill_in:
            rounds = args.rounds
            while not any(r["status"] == "rejected" for r in ref.rounds[1:]):
                if rounds * 2 > MAX_ROUNDS:
                    break
                rounds *= 2
                ref = ref_of(mode, url, rounds)
            for point, at in harness.points_in(mode, ref, "rejected", url):
                if wanted(point):
                    cases.append((mode, url, rounds, point, at, "rejected"))

    def one(i: int) -> tuple[str, str, harness.Outcome]:
        mode, url, rounds, point, at, kind = cases[i]
        name = mode if url is None else "evm-anvil"
        try:
            outcome = harness.play(
                mode,
                [(point, at)],
                refs[(mode, url, rounds)],
                work / f"{i:03d}-{name}-{point}-{kind}",
                rounds=rounds,
                chain_url=url,
            )
        except AssertionError as exc:  # the point not reached, or rounds lost: a failure
            outcome = harness.Outcome(
                mode, [harness.Kill(point, at, -1, 0.0)], "", False, False, False, None, 0.0
            )
            lines = str(exc).strip().splitlines()  # what failed, and the run's last word
            outcome.notes.append(" / ".join(dict.fromkeys([lines[0], lines[-1]])))
        return name, kind, outcome

    print(f"{len(cases)} runs, toy-cli, 4 learners, seed 7\n")
    print(
        "| mode | round's outcome | point | round | rounds left | final id | verify | "
        "ledger verify | s |"
    )
    print("|---|---|---|---:|---:|---|---|---|---:|", flush=True)

    def row(name: str, kind: str, o: harness.Outcome) -> None:  # as each run ends: a
        k = o.kills[0]  # cut-short bench still shows what it did
        ledger = "-" if o.ledger_verify_ok is None else ("pass" if o.ledger_verify_ok else "FAIL")
        print(
            f"| {name} | {kind} | {k.point} | {k.round_index} | {k.committed} | "
            f"{'same' if o.same_final_id and o.same_rounds else 'DIFFERENT'} | "
            f"{'pass' if o.verify_ok else 'FAIL'} | {ledger} | {o.seconds:.1f} |",
            flush=True,
        )

    # SIGTERM (a timeout) ends the run through the finally, which stops anvil
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[tuple[str, str, harness.Outcome]] = []
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for name, kind, o in pool.map(one, range(len(cases))):
                row(name, kind, o)
                results.append((name, kind, o))
    finally:
        if node is not None:
            node.stop()
    wall = time.perf_counter() - started

    print("\n| mode | round's outcome | runs | same final id and rounds | verify | ledger verify |")
    print("|---|---|---:|---:|---:|---:|")
    names = [n for n, _, _ in results]
    groups = sorted({(n, k) for n, k, _ in results}, key=lambda g: (names.index(g[0]), g[1]))
    for group in [*groups, ("all", "")]:
        got = [o for n, k, o in results if group[0] == "all" or (n, k) == group]
        ledgers = [o for o in got if o.ledger_verify_ok is not None]
        print(
            f"| {group[0]} | {group[1]} | {len(got)} | "
            f"{sum(o.same_final_id and o.same_rounds for o in got)} | "
            f"{sum(o.verify_ok for o in got)} | "
            f"{sum(bool(o.ledger_verify_ok) for o in ledgers)}/{len(ledgers)} |"
        )
    print(f"\n{len(results)} runs killed and resumed in {wall:.0f} s with {args.jobs} jobs")
    for name, kind, o in results:
        for note in o.notes:
            print(f"{name} {kind} {o.kills[0].point}: {note}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        "mode": name,
                        "round_status": kind,
                        "rounds": cases[i][2],
                        "kills": [k.__dict__ for k in o.kills],
                        "final_weights_id": o.final_weights_id,
                        "same_final_id": o.same_final_id,
                        "same_rounds": o.same_rounds,
                        "verify_ok": o.verify_ok,
                        "ledger_verify_ok": o.ledger_verify_ok,
                        "seconds": round(o.seconds, 2),
                        "notes": o.notes,
                    }
                    for i, (name, kind, o) in enumerate(results)
                ]
            )
            + "\n"
        )
    return 0 if all(o.ok and not o.notes for _, _, o in results) else 1


if __name__ == "__main__":
    sys.exit(main())
