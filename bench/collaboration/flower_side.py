"""Flower's side of ``colearn bench collaboration``: FedAvg in Flower's own simulation
engine (Ray), run in the benchmark environment (``.venv-bench``, made by
``bench/collaboration/setup.sh``), never in colearning's.

    .venv-bench/bin/python bench/collaboration/flower_side.py JOB.json RESULT.json

``JOB.json`` says what to run:

- ``{"kind": "speed", "learners": N, "rounds": R}``: FedAvg over N clients that do no
  work (they return the arrays they were sent, as ``colearning.testing.InstantLearner``
  does); records each round's wall time and when the first round ended.
- ``{"kind": "accuracy", "task": ..., "partition_file": ..., "rounds": R, ...}``:
  FedAvg over the learners of a partition file written by colearning (row indices of
  train, vote and test splits), each client training with the very learner colearning's
  task builds (same model, optimizer, local epochs); the global model is scored after
  every round by the same judge (a learner on the union of every learner's test split).

Clients get one CPU each (``client_resources = {"num_cpus": 1}``), so two run at once
on two cores; Flower's default (two CPUs a client) would run one at a time. Telemetry
is off (``FLWR_TELEMETRY_ENABLED=0``, set before flwr is imported).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

BACKEND = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}


def _simulate(client: ClientApp, n: int, rounds: int, initial: list[Any], on_round: Any) -> None:
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(
            fraction_train=1.0,
            fraction_evaluate=1.0,
            min_train_nodes=n,
            min_evaluate_nodes=n,
            min_available_nodes=n,
        )
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(initial),
            num_rounds=rounds,
            evaluate_fn=on_round,
        )

    run_simulation(server, client, num_supernodes=n, backend_config=BACKEND)


def speed(job: dict[str, Any], started: float) -> dict[str, Any]:
    """Per-round wall time of FedAvg over clients that do no work."""
    client = ClientApp()

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        arrays = msg.content["arrays"]
        metrics = MetricRecord({"num-examples": 1})
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    @client.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        metrics = MetricRecord({"num-examples": 1, "accuracy": 1.0})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    ends: list[float] = []

    def on_round(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        ends.append(time.time())
        return None

    n, rounds = int(job["learners"]), int(job["rounds"])
    _simulate(client, n, rounds, [np.zeros(4)], on_round)
    # ends[0] is the evaluation before round 1; ends[r] the end of round r
    return {
        "round_seconds": [b - a for a, b in itertools.pairwise(ends)],
        "first_round_end": ends[1] - started if len(ends) > 1 else None,
    }


def accuracy(job: dict[str, Any], started: float) -> dict[str, Any]:
    """FedAvg on the partition file's learners, the global model judged every round."""
    from colearning.bench.partitions import (
        build_learners,
        epochs_per_proposal,
        judge_score,
        no_vote,
        read_partition,
    )

    spec = read_partition(job["partition_file"])
    quiet = no_vote(spec)  # Flower's clients only train; the judge only tests
    n = len(spec.parts)
    rounds = int(job["rounds"])
    made: dict[int, Any] = {}  # one learner per client, kept for the actor's lifetime

    def learner(index: int) -> Any:
        if index not in made:
            made[index] = build_learners(spec, [index], quiet)[0]
        return made[index]

    client = ClientApp()

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        index = int(context.node_config["partition-id"])
        me = learner(index)
        names = list(me.mli_get_current_weights().arrays)
        sent = msg.content["arrays"].to_numpy_ndarrays()
        from colearning import Weights

        me.mli_accept_weights(Weights(dict(zip(names, sent, strict=True))))
        me.mli_set_round(int(msg.content["config"].get("server-round", 1)) - 1)
        proposal = me.mli_propose_weights()
        arrays = ArrayRecord([np.asarray(a) for a in proposal.arrays.values()])
        metrics = MetricRecord({"num-examples": int(spec.parts[index]["train_rows"])})
        return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    @client.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        metrics = MetricRecord({"num-examples": 1})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    judge = build_learners(spec, [-1], quiet)[0]
    names = list(judge.mli_get_current_weights().arrays)
    initial = build_learners(spec, [0], quiet)[0].mli_get_current_weights()
    scores: list[float] = []

    def on_round(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        from colearning import Weights

        weights = Weights(dict(zip(names, arrays.to_numpy_ndarrays(), strict=True)))
        scores.append(judge_score(judge, weights))
        return None

    t0 = time.perf_counter()
    _simulate(client, n, rounds, [np.asarray(a) for a in initial.arrays.values()], on_round)
    return {
        "scores": scores,  # scores[0]: the initial model; scores[r]: after round r
        "epochs_per_round": n * epochs_per_proposal(spec),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    started = time.time()
    job_path, result_path = sys.argv[1], sys.argv[2]
    job = json.loads(Path(job_path).read_text())
    started = float(job.get("launched", started))
    logging.getLogger("flwr").setLevel(logging.WARNING)
    result = speed(job, started) if job["kind"] == "speed" else accuracy(job, started)
    import flwr

    result["flwr_version"] = flwr.__version__
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
