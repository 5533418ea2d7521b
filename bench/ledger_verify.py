"""``colearn ledger verify`` on a long experiment (1,000 rounds by default).

Builds the experiment once per chain (5 toy learners, the contract deciding every
round, on the embedded chain and on anvil), then times the audit: the command as a
user runs it (a fresh process, imports included) and :func:`verify` in process.

    .venv/bin/python bench/ledger_verify.py
    .venv/bin/python bench/ledger_verify.py --rounds 200 --chains embedded
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from colearning.core.experiment import Experiment
from colearning.core.store import ExperimentStore
from colearning.ledger import EvmDecider, Ledger
from colearning.ledger.anvil import Anvil
from colearning.ledger.audit import verify
from colearning.testing import QuadraticLearner


def build(directory: Path, rounds: int, learners: int, chain_url: str | None) -> float:
    ids = [f"learner-{i}" for i in range(learners)]
    store = ExperimentStore.create(directory, {"vote_threshold": 0.5}, ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ledger = Ledger.open(directory, ids, chain_url)
    decider = EvmDecider(ledger, 0.5)
    team = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(learners)]
    start = time.perf_counter()
    with Experiment(team, store=store, decider=decider) as experiment:
        decider.start(str(store.initial_weights_id))
        experiment.run(rounds)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chains", nargs="+", default=["embedded", "anvil"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Anvil() as node:
        for chain in args.chains:
            url = node.url if chain == "anvil" else None
            directory = Path(tmp) / chain
            built = build(directory, args.rounds, args.learners, url)
            command = [sys.executable, "-m", "colearning.cli.main", "ledger", "verify"]
            command += [str(directory)] + (["--chain-url", url] if url else [])
            cli, inproc = [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True)
                cli.append(time.perf_counter() - t)
                assert proc.returncode == 0, proc.stdout + proc.stderr
                t = time.perf_counter()
                report = verify(directory, url)
                inproc.append(time.perf_counter() - t)
                assert report.ok and report.rounds_on_chain == args.rounds
            print(
                f"{chain:<9} {args.rounds} rounds x {args.learners} learners (built in "
                f"{built:.0f} s): colearn ledger verify {statistics.median(cli):.2f} s "
                f"(median of {args.repeats}; in process {statistics.median(inproc):.2f} s)"
            )


if __name__ == "__main__":
    main()
