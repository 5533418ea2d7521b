"""The ledger's share of a round's time, for real tasks (5 learners by default).

The same experiment runs without a ledger, with the embedded chain and with anvil,
taking turns, and each round is timed from one commit to the next. The ledger's own
time is what the EvmDecider spends in its hooks (signing every ballot and the
proposal, the transaction, reading the decision); its share is that over the round's
time. The plain run's round time is printed beside it for comparison.

    .venv/bin/python bench/ledger_overhead.py                          # digits-mlp, mnist-cnn
    .venv/bin/python bench/ledger_overhead.py --tasks digits-mlp --rounds 30
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from colearning.ledger.anvil import Anvil
from colearning.ledger.decider import EvmDecider
from colearning.tasks.runner import RunConfig, run_task

_spent = [0.0]


def _timed(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kw)
        finally:
            _spent[0] += time.perf_counter() - start

    return wrapper


for _name in ("begin", "sign_votes", "proposed", "decide"):
    setattr(EvmDecider, _name, _timed(getattr(EvmDecider, _name)))


def one_run(
    task: str, learners: int, rounds: int, chain_url: str | None, ledger: bool
) -> tuple[list[float], list[float]]:
    round_s: list[float] = []
    ledger_s: list[float] = []
    mark = [time.perf_counter(), 0.0]

    def committed(_record: object) -> None:
        now = time.perf_counter()
        round_s.append(now - mark[0])
        ledger_s.append(_spent[0] - mark[1])
        mark[0], mark[1] = now, _spent[0]

    config = RunConfig(
        task=task, learners=learners, rounds=rounds, partition="iid", baselines=False,
        ledger="evm" if ledger else None, chain_url=chain_url if ledger else None,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:

        def started(_setup: object, _first: int) -> None:
            mark[0], mark[1] = time.perf_counter(), _spent[0]

        run_task(config, Path(tmp) / "e", observers=[committed], on_start=started)
    return round_s[1:], ledger_s[1:]  # the first round warms caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["digits-mlp", "mnist-cnn"])
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore")  # the simulation-keys warning, once per run
    with Anvil() as node:
        setups = [("no ledger", None, False), ("embedded", None, True), ("anvil", node.url, True)]
        print(f"{args.learners} learners, {args.rounds} rounds a run, {args.repeats} runs each, "
              "taking turns; medians over rounds")  # fmt: skip
        for task in args.tasks:
            rounds: dict[str, list[float]] = {name: [] for name, _, _ in setups}
            spent: dict[str, list[float]] = {name: [] for name, _, _ in setups}
            for _ in range(args.repeats):
                for name, url, ledger in setups:
                    r, s = one_run(task, args.learners, args.rounds, url, ledger)
                    rounds[name] += r
                    spent[name] += s
            plain = statistics.median(rounds["no ledger"])
            print(f"{task}: round {plain * 1000:.0f} ms without a ledger")
            for name, _, _ in setups[1:]:
                total = statistics.median(rounds[name])
                share = [s / t for s, t in zip(spent[name], rounds[name], strict=True)]
                print(
                    f"  {name:<9} round {total * 1000:6.0f} ms, ledger "
                    f"{statistics.median(spent[name]) * 1000:5.1f} ms = "
                    f"{statistics.median(share):5.1%} of the round "
                    f"(round time vs no ledger: {total / plain:.2f}x)"
                )


if __name__ == "__main__":
    main()
