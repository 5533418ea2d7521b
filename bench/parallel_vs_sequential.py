"""A round of this driver against a plain sequential round, same learners, same data.

The sequential round is written the way the earlier Colearn driver ran one: the
proposer trains, then every learner, the proposer too, tests the proposal one after
another, then (if accepted) every learner accepts, one after another. It is measured
twice: with the same learners as this driver (whose accept reuses the vote score), and
with an accept that scores the vote set again, as Colearn's own learners did. This
driver validates in parallel on worker threads, has the proposer score its own
proposal without voting, and encodes and hashes the proposal meanwhile.

Configuration: mnist-small (5,000 real MNIST digits), 5 learners, IID shares split
30/35/35 into train/vote/test, an MLPClassifier with one hidden layer of --hidden units
(default 1,024), one epoch of partial_fit per proposal. Each BLAS call runs on one
thread (threadpoolctl), as in `colearn run`; the learners release the GIL inside BLAS,
so two cores validate two proposals at once.

    .venv/bin/python bench/parallel_vs_sequential.py
    .venv/bin/python bench/parallel_vs_sequential.py --rounds 30 --hidden 256

The three drivers take turns round by round in one process. Prints per-phase medians,
the ratios, and the share of the plain sequential round spent validating.
"""

from __future__ import annotations

import argparse
import statistics
import time

from threadpoolctl import threadpool_limits

from colearning.core.codec import WeightsSpec
from colearning.core.decider import TallyDecider
from colearning.core.driver import play_round
from colearning.core.plans import RoundRobin
from colearning.core.pool import LocalPool
from colearning.core.tally import tally
from colearning.data import load_dataset, partition_dataset
from colearning.learners.sklearn import SKLearnLearner


def make_learners(
    hidden: int, n: int, seed: int, fractions: tuple[float, float, float], batch_size: int
) -> list[SKLearnLearner]:
    from sklearn.neural_network import MLPClassifier

    dataset = load_dataset("mnist-small")
    # a larger vote and test share than the default 60/20/20, so that validation is over
    # a third of the sequential round (the configuration the issue asks to measure)
    parts = partition_dataset(dataset, n, "iid", seed, fractions=fractions)
    learners = [
        SKLearnLearner(
            MLPClassifier(
                hidden_layer_sizes=(hidden,), learning_rate_init=1e-3, batch_size=batch_size
            ),
            part,
            classes=dataset.classes,
            seed=i,
        )
        for i, part in enumerate(parts)
    ]
    start = learners[0].mli_get_current_weights()
    for learner in learners[1:]:
        learner.mli_accept_weights(start)
    return learners


def sequential_round(
    learners: list[SKLearnLearner], round_index: int, retest_on_accept: bool
) -> dict[str, float]:
    """Colearn's way. With ``retest_on_accept`` each accept also scores the vote set
    again, as Colearn's own learners did in ``mli_accept_weights``."""
    t0 = time.perf_counter()
    proposer = round_index % len(learners)
    learners[proposer].mli_set_round(round_index)
    weights = learners[proposer].mli_propose_weights()
    t1 = time.perf_counter()
    verdicts = [learner.mli_test_weights(weights) for learner in learners]
    t2 = time.perf_counter()
    accepted, _, _ = tally([v.vote for v in verdicts], proposer, 0.5)
    if accepted:
        for learner in learners:
            if retest_on_accept:
                learner.mli_test_weights(weights)
            learner.mli_accept_weights(weights)
    t3 = time.perf_counter()
    return {"total": t3 - t0, "propose": t1 - t0, "validate": t2 - t1, "accept": t3 - t2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument(
        "--fractions",
        type=float,
        nargs=3,
        default=[0.3, 0.35, 0.35],
        help="train/vote/test shares of each learner's rows",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    fractions = tuple(args.fractions)

    def learners() -> list[SKLearnLearner]:
        return make_learners(args.hidden, args.learners, 0, fractions, args.batch_size)

    plain, faithful, ours = learners(), learners(), learners()
    pool = LocalPool(ours)
    planner, decider = RoundRobin(), TallyDecider(0.5)
    spec = WeightsSpec.of(ours[0].mli_get_current_weights())
    times: dict[str, list[dict[str, float]]] = {"plain": [], "colearn": [], "ours": []}
    with threadpool_limits(limits=1):
        for r in range(args.rounds + 2):
            # the three drivers take turns, so background noise hits them alike
            a = sequential_round(plain, r, retest_on_accept=False)
            b = sequential_round(faithful, r, retest_on_accept=True)
            plan = planner.plan(r, pool.learner_ids)
            t = play_round(pool, plan, current_weights_id="", decider=decider, expected=spec)
            if r >= 2:  # the first rounds warm caches and threads
                times["plain"].append(a)
                times["colearn"].append(b)
                timings = t.record.timings
                times["ours"].append(
                    {
                        "total": timings.total,
                        "propose": timings.propose,
                        "validate": timings.validate,
                        "accept": timings.accept,
                    }
                )
    pool.close()

    def med(name: str, phase: str) -> float:
        return statistics.median(x[phase] for x in times[name])

    print(
        f"{args.learners} learners, mnist-small, MLP hidden={args.hidden}, {args.rounds} "
        f"rounds each, train/vote/test {fractions}, batch {args.batch_size}, BLAS 1 thread"
    )
    print(f"{'driver':<44}{'round':>8}{'propose':>9}{'validate':>9}{'accept':>8}  (median ms)")
    labels = {
        "plain": "sequential, same learners",
        "colearn": "sequential, accept re-scores (as Colearn's)",
        "ours": "this driver (parallel validation)",
    }
    for name, label in labels.items():
        print(
            f"{label:<44}{1e3 * med(name, 'total'):>8.1f}{1e3 * med(name, 'propose'):>9.1f}"
            f"{1e3 * med(name, 'validate'):>9.1f}{1e3 * med(name, 'accept'):>8.1f}"
        )
    share = med("plain", "validate") / med("plain", "total")
    print(f"validation share of the plain sequential round: {100 * share:.0f}%")
    for name in ("plain", "colearn"):
        print(
            f"ratio this driver / {labels[name]}: {med('ours', 'total') / med(name, 'total'):.2f}"
        )


if __name__ == "__main__":
    main()
