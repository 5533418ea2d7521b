"""Gas per round of the ledger contract: propose + ballots + finalize.

One round = the proposer's signed proposal, a signed ballot from every other learner,
and the finalization (automatic once the last ballot is in). Two ways to send it:

- batched: one ``settle`` transaction carries the whole round (what a coordinator
  sends);
- one by one: the proposal, then one ``vote`` transaction per voter (what peers send);
  the last vote finalizes.

Gas is the receipts' ``gasUsed`` (base 21,000 per transaction and calldata included),
measured on the embedded chain and, with ``--anvil``, on a real anvil node as well;
half the ballots approve. The median over ``--rounds`` rounds is printed. With
``--committee K`` the contract draws K voters a round (the draw is paid by the call
that opens the next round, so it is in the figure) and only they cast ballots.

    .venv/bin/python bench/ledger_gas.py                 # 5, 20, 100 learners
    .venv/bin/python bench/ledger_gas.py --anvil --learners 5 100
    .venv/bin/python bench/ledger_gas.py --learners 100 255 --committee 0 10 50
"""

from __future__ import annotations

import argparse
import os
import statistics

from colearning.ledger.chain import Chain, EmbeddedChain, RpcChain
from colearning.ledger.client import Ballot, LedgerClient, LedgerConfig
from colearning.ledger.contract import APPROVE, REJECT
from colearning.ledger.keys import ANVIL_OPERATOR_KEY, EMBEDDED_OPERATOR_KEY, Key

FLOOR = {  # the minimal contract of this design (vyper 0.4.3, cancun)
    ("batched", 5): 164_821,
    ("batched", 20): 293_014,
    ("batched", 100): 976_463,
    ("one by one", 5): 269_597,
    ("one by one", 20): 963_483,
    ("one by one", 100): 4_664_163,
}


def round_gas(
    chain: Chain, operator: Key, n: int, rounds: int, batched: bool, committee: int = 0
) -> list[int]:
    keys = [Key.generate() for _ in range(n)]
    config = LedgerConfig(
        os.urandom(32), tuple(k.address for k in keys), (1, 2), 3600, 3600, os.urandom(32),
        committee,
    )  # fmt: skip
    client, _ = LedgerClient.deploy(chain, operator, config)
    gas = []
    for r in range(rounds):
        p = r % n
        w = os.urandom(32)
        proposal = client.sign_proposal(keys[p], r, w)
        codes = [APPROVE if i % 2 else REJECT for i in range(n)]
        members = client.state().members
        ballots = [
            Ballot(i, codes[i], client.sign_vote(keys[i], r, w, codes[i]))
            for i in range(n)
            if i != p and (members == 0 or (members >> i) & 1)
        ]
        if batched:
            gas.append(client.settle(r, w, proposal, ballots).gas_used)
        else:
            used = client.propose(r, w, proposal).gas_used
            gas.append(used + sum(client.vote(r, b).gas_used for b in ballots))
    return gas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--anvil", action="store_true", help="measure on anvil too")
    parser.add_argument(
        "--committee", type=int, nargs="+", default=[0], help="voters a round (0: everyone)"
    )
    args = parser.parse_args()
    chains: list[tuple[str, Chain, Key, object]] = [
        ("embedded", EmbeddedChain(), Key.from_hex(EMBEDDED_OPERATOR_KEY), None)
    ]
    if args.anvil:
        from colearning.ledger.anvil import Anvil

        node = Anvil()
        chains.append(("anvil", RpcChain(node.url), Key.from_hex(ANVIL_OPERATOR_KEY), node))
    print(f"gas per round (median of {args.rounds}; half the ballots approve)")
    print(
        f"{'chain':<9} {'mode':<11} {'learners':>8} {'K':>4} {'gas/round':>10} {'floor':>10} "
        f"{'ratio':>6}"
    )
    slopes: dict[str, list[tuple[int, float]]] = {}
    for name, chain, operator, node in chains:
        for mode in ("batched", "one by one"):
            for k in args.committee:
                for n in args.learners:
                    if k >= n:
                        continue
                    gas = statistics.median(
                        round_gas(chain, operator, n, args.rounds, mode == "batched", k)
                    )
                    floor = FLOOR.get((mode, n)) if k == 0 else None
                    ratio = f"{gas / floor:.2f}" if floor else "-"
                    print(
                        f"{name:<9} {mode:<11} {n:>8} {k or 'all':>4} {gas:>10,.0f} "
                        f"{floor or 0:>10,} {ratio:>6}"
                    )
                    if k == 0:
                        slopes.setdefault(f"{name} {mode}", []).append((n, gas))
        chain.close()
        if node is not None:
            node.stop()  # type: ignore[attr-defined]
    for label, points in slopes.items():
        if len(points) >= 2:
            (n0, g0), (n1, g1) = points[0], points[-1]
            print(f"{label}: {(g1 - g0) / (n1 - n0):,.0f} gas per extra learner ({n0} to {n1})")


if __name__ == "__main__":
    main()
