"""Rounds per second of the ledger contract alone: the client's whole loop.

Each round signs the proposal and every ballot (EIP-712, the learners' keys), signs
the transaction, sends it and waits for the mined receipt, then reads the decision
from its events: everything the EvmDecider does, without learners. Batched (one
``settle`` a round) and, with ``--one-by-one``, one transaction per ballot.

The embedded chain and anvil take turns, ``--repeats`` blocks of ``--rounds`` rounds
each, in one run on the same machine; the median block's rounds/s is printed with the
range, so the figures compare side by side on a shared machine.

    .venv/bin/python bench/ledger_speed.py                # 5 and 100 learners
    .venv/bin/python bench/ledger_speed.py --learners 5 --rounds 50 --one-by-one
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from colearning.ledger.anvil import Anvil
from colearning.ledger.chain import Chain, EmbeddedChain, RpcChain
from colearning.ledger.client import Ballot, LedgerClient, LedgerConfig, decode_events
from colearning.ledger.contract import APPROVE
from colearning.ledger.keys import ANVIL_OPERATOR_KEY, EMBEDDED_OPERATOR_KEY, Key


class Loop:
    def __init__(self, chain: Chain, operator: Key, n: int, batched: bool) -> None:
        self.keys = [Key.generate() for _ in range(n)]
        config = LedgerConfig(
            os.urandom(32), tuple(k.address for k in self.keys), (1, 2), 10**6, 10**6,
            os.urandom(32),
        )  # fmt: skip
        self.client, _ = LedgerClient.deploy(chain, operator, config)
        self.n, self.batched, self.round = n, batched, 0

    def play(self, rounds: int) -> float:
        """Seconds for ``rounds`` rounds."""
        c = self.client
        start = time.perf_counter()
        for _ in range(rounds):
            r, p = self.round, self.round % self.n
            w = os.urandom(32)
            proposal = c.sign_proposal(self.keys[p], r, w)
            ballots = [
                Ballot(i, APPROVE, c.sign_vote(self.keys[i], r, w, APPROVE))
                for i in range(self.n)
                if i != p
            ]
            if self.batched:
                receipts = [c.settle(r, w, proposal, ballots)]
            else:
                receipts = [c.propose(r, w, proposal)] + [c.vote(r, b) for b in ballots]
            events = [e for rec in receipts for e in decode_events(c.contract, rec.logs)]
            assert any(e.name == "Finalized" for e in events)
            self.round += 1
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[5, 100])
    parser.add_argument("--rounds", type=int, default=20, help="rounds per block")
    parser.add_argument("--repeats", type=int, default=5, help="blocks per chain")
    parser.add_argument("--one-by-one", action="store_true", help="also one tx per ballot")
    args = parser.parse_args()
    modes = [True, False] if args.one_by_one else [True]
    with tempfile.TemporaryDirectory() as tmp, Anvil() as node:
        chains = {
            # the embedded chain as `colearn run` keeps it: its database on disk
            "embedded": (EmbeddedChain(Path(tmp) / "chain.sqlite"), EMBEDDED_OPERATOR_KEY),
            "anvil": (RpcChain(node.url), ANVIL_OPERATOR_KEY),
        }
        print(f"rounds/s of the contract alone ({args.rounds} rounds a block, "
              f"{args.repeats} blocks a chain, taking turns): median [min, max]")  # fmt: skip
        for n in args.learners:
            for batched in modes:
                rounds = max(3, args.rounds // (5 if n >= 100 else 1))
                loops = {
                    name: Loop(chain, Key.from_hex(key), n, batched)
                    for name, (chain, key) in chains.items()
                }
                for loop in loops.values():
                    loop.play(2)  # warm up
                rates: dict[str, list[float]] = {name: [] for name in loops}
                for _ in range(args.repeats):
                    for name, loop in loops.items():
                        rates[name].append(rounds / loop.play(rounds))
                mode = "batched" if batched else "one by one"
                line = "  ".join(
                    f"{name} {statistics.median(v):6.1f} [{min(v):.1f}, {max(v):.1f}]"
                    for name, v in rates.items()
                )
                ratio = statistics.median(rates["anvil"]) / statistics.median(rates["embedded"])
                print(f"{n:>4} learners, {mode:<10}: {line}  (anvil/embedded {ratio:.2f})")
        for chain, _ in chains.values():
            chain.close()


if __name__ == "__main__":
    main()
