"""Where a round of a torch task spends its time: propose, validate, accept, the rest.

Builds the task's learners as ``colearn run`` does (``colearning.tasks.runner.build``),
plays a few warm-up rounds, then times the measured rounds. For each round it prints
the driver's phase timings and:

- ``1 val``: one validation, the median time of a single learner's ``mli_test_weights``
  call (validators run in parallel, so the validate phase is at least this);
- ``beyond``: the share of the round's wall time beyond "the proposer's training plus
  one validation", i.e. what parallel validation, accepting, encoding and the driver add
  on top of the unavoidable critical path.

Examples::

    .venv/bin/python bench/torch_round_split.py --task mnist-cnn --partition iid
    .venv/bin/python bench/torch_round_split.py --task cifar10-resnet18 --fake-cifar 12000 \\
        --device cuda --rounds 5
    .venv/bin/python bench/torch_round_split.py --task mnist-cnn -p epochs=1 -p batch_size=128

``--fake-cifar N`` writes N random CIFAR-shaped images in the real binary format to a
temporary folder and uses it as the data directory (timings only: nothing to learn).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from colearning import Experiment, RoundRecord
from colearning.data.cifar import write_cifar_batches
from colearning.tasks.runner import RunConfig, build


def parse_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"-p takes NAME=VALUE; got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def one_validation(record: RoundRecord) -> float:
    times = [v.seconds for v in record.votes if v.learner_id != record.proposer_id and v.seconds]
    return statistics.median(times) if times else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist-cnn")
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=1, help="rounds played first, not shown")
    parser.add_argument("--partition", default="iid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="sets the task option device")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--fake-cifar",
        type=int,
        default=0,
        metavar="N",
        help="write N random CIFAR-10-format images and use them as data",
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        type=parse_param,
        default=[],
        help="a task option, NAME=VALUE (repeatable)",
    )
    args = parser.parse_args(argv)

    import colearning.tasks.torch_tasks  # noqa: F401 - registers the torch tasks

    params = dict(args.param)
    if args.device:
        params["device"] = args.device
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if args.fake_cifar:
            rng = np.random.default_rng(args.seed)
            images = rng.integers(0, 256, size=(args.fake_cifar, 3, 32, 32), dtype=np.uint8)
            data_dir = str(
                write_cifar_batches(Path(tmp), images, rng.integers(0, 10, args.fake_cifar))
            )
        config = RunConfig(
            task=args.task,
            learners=args.learners,
            rounds=args.warmup + args.rounds,
            partition=args.partition,
            seed=args.seed,
            data_dir=data_dir,
            params=params,
        )
        t0 = time.perf_counter()
        setup = build(config)
        sizes = [part.sizes for part in setup.parts]
        print(
            f"task {args.task}: {args.learners} learners, rows (train, vote, test) per learner "
            f"{sizes[0]}..{sizes[-1]}, options {dict(setup.config.params)}"
        )
        print(f"built in {time.perf_counter() - t0:.2f} s")

        walls: list[float] = []
        last = [time.perf_counter()]

        def tick(_record: RoundRecord) -> None:
            now = time.perf_counter()
            walls.append(now - last[0])
            last[0] = now

        with Experiment(setup.learners, seed=args.seed, observers=[tick]) as experiment:
            last[0] = time.perf_counter()
            result = experiment.run(args.warmup + args.rounds)
            # one validation with nothing else running: the floor's second term
            probe = setup.learners[1 % len(setup.learners)]
            alone = []
            for _ in range(3):
                start = time.perf_counter()
                probe.mli_test_weights(result.final_weights)
                alone.append(time.perf_counter() - start)
            one_alone = statistics.median(alone)
    measured = list(zip(result.rounds, walls, strict=True))[args.warmup :]
    if not measured:
        print("no measured rounds")
        return 1

    head = (
        "round",
        "proposer",
        "status",
        "propose",
        "validate",
        "accept",
        "other",
        "wall",
        "1 val",
        "beyond",
    )
    print(" ".join(f"{h:>9}" for h in head))
    rows = []
    for record, wall in measured:
        t = record.timings
        other = wall - t.propose - t.validate - t.accept
        one = one_validation(record)
        beyond = (wall - t.propose - one) / wall if wall else 0.0
        rows.append((t.propose, t.validate, t.accept, other, wall, one, beyond))
        print(
            f"{record.round_index:>9} {record.proposer_id[-9:]:>9} {record.status:>9} "
            + " ".join(f"{x:>9.3f}" for x in rows[-1][:-1])
            + f" {100 * beyond:>8.1f}%"
        )
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(
        f"{'median':>9} {'':>9} {'':>9} "
        + " ".join(f"{x:>9.3f}" for x in med[:-1])
        + f" {100 * med[-1]:>8.1f}%"
    )
    print(
        "seconds; 'other' = wall - propose - validate - accept (driver, encoding, commit); "
        "'beyond' = (wall - propose - 1 val) / wall, with '1 val' the median duration of "
        "one validation call inside the parallel phase"
    )
    wall, propose = med[4], med[0]
    print(
        f"one validation alone: {one_alone:.3f} s; floor (proposer training + one validation "
        f"alone) {propose + one_alone:.3f} s; beyond the floor: "
        f"{100 * (wall - propose - one_alone) / wall:.1f}% of the median round"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
