"""A whole run from a task name: data shared out, learners built, rounds played and
committed, then the collective model compared with learners alone and with pooled data.

This is what ``colearn run`` calls; it is as usable from Python::

    from colearning.tasks import RunConfig, run_task
    outcome = run_task(RunConfig(task="digits-mlp", learners=5, rounds=20), out="runs/x")
    print(outcome.summary["collective"])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError, StoreError, require_extra
from colearning.core.experiment import Experiment, ExperimentResult, ObserverLike
from colearning.core.interface import MachineLearningInterface, Weights
from colearning.core.records import RoundRecord
from colearning.core.store import ExperimentStore
from colearning.core.tally import threshold_fraction
from colearning.core.weights_ref import WeightsRef
from colearning.data.types import Dataset, LearnerData, pool_data
from colearning.tasks.registry import BuildContext, Task, get_task

# Settings that may differ when an experiment is resumed: they do not change what the
# rounds compute.
_RESUMABLE_CHANGES = frozenset({"rounds", "baselines"})


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. Unset fields take the task's defaults.

    ``params`` holds the task's own options (see ``colearn tasks``).
    """

    task: str
    learners: int | None = None
    rounds: int | None = None
    vote_threshold: float | None = None
    partition: str | None = None
    seed: int = 0
    proposer: str = "round-robin"
    timeout: float | None = None
    data_dir: str | None = None
    baselines: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    def resolved(self) -> RunConfig:
        """This config with the task's defaults filled in and every value checked."""
        task = get_task(self.task)
        d = task.defaults
        config = dataclasses.replace(
            self,
            learners=self.learners if self.learners is not None else int(d.get("learners", 5)),
            rounds=self.rounds if self.rounds is not None else int(d.get("rounds", 20)),
            vote_threshold=(
                self.vote_threshold
                if self.vote_threshold is not None
                else float(d.get("vote_threshold", 0.5))
            ),
            partition=self.partition or str(d.get("partition", "iid")),
            params={**task.params, **dict(self.params)},
        )
        config._check(task)
        return config

    def _check(self, task: Task) -> None:
        if (
            not isinstance(self.learners, int)
            or isinstance(self.learners, bool)
            or self.learners < 1
        ):
            raise ConfigError(f"learners must be a whole number >= 1; got {self.learners!r}")
        if not isinstance(self.rounds, int) or isinstance(self.rounds, bool) or self.rounds < 0:
            raise ConfigError(f"rounds must be a whole number >= 0; got {self.rounds!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be a whole number >= 0; got {self.seed!r}")
        threshold_fraction(self.vote_threshold)  # type: ignore[arg-type]
        if self.proposer not in ("round-robin", "random"):
            raise ConfigError(f"proposer must be 'round-robin' or 'random'; got {self.proposer!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, (int, float))
            and math.isfinite(self.timeout)
            and self.timeout > 0
        ):
            raise ConfigError(f"timeout must be a number of seconds > 0; got {self.timeout!r}")
        unknown = sorted(set(self.params) - set(task.params))
        if unknown:
            known = ", ".join(sorted(task.params)) or "none"
            raise ConfigError(
                f"task {task.name!r} has no option {unknown[0]!r}; its options are: {known}"
            )
        from colearning.data.partition import parse_partition

        parse_partition(str(self.partition))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["params"] = dict(self.params)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]!r}; settings are: {', '.join(sorted(names))}"
            )
        if "task" not in data:
            raise ConfigError("no task given; pass --task NAME (see `colearn tasks`)")
        return cls(**{**data, "params": dict(data.get("params") or {})})


@dataclass
class Setup:
    """A run's parts before any round: the task, its data shared out, the learners."""

    config: RunConfig
    task: Task
    dataset: Dataset
    parts: list[LearnerData]
    learners: list[MachineLearningInterface]

    @property
    def learner_ids(self) -> list[str]:
        return [f"learner-{i}" for i in range(len(self.learners))]

    def context(self, learner_index: int) -> BuildContext:
        c = self.config
        return BuildContext(
            seed=c.seed,
            learner_index=learner_index,
            dataset=self.dataset,
            data_dir=Path(c.data_dir) if c.data_dir else None,
            params=c.params,
        )

    def make_learner(self, data: LearnerData, learner_index: int) -> MachineLearningInterface:
        return self.task.make_learner(data, self.context(learner_index))


def build(config: RunConfig) -> Setup:
    """Load the task's data, share it out and build one learner per share."""
    from colearning.data.partition import partition_dataset

    config = config.resolved()
    task = get_task(config.task)
    require_extra(_module_of_extra(task.extra), task.extra, f"task {task.name!r}")
    data_dir = Path(config.data_dir) if config.data_dir else None
    dataset = task.load_dataset(data_dir, config.params)
    parts = partition_dataset(
        dataset, int(config.learners or 0), str(config.partition), config.seed
    )
    setup = Setup(config, task, dataset, parts, [])
    setup.learners = [setup.make_learner(part, i) for i, part in enumerate(parts)]
    return setup


def _module_of_extra(extra: str) -> str:
    return {
        "sklearn": "sklearn",
        "torch": "torch",
        "privacy": "opacus",
        "keras": "keras",
        "xgboost": "xgboost",
    }.get(extra, extra)


@dataclass
class RunOutcome:
    """What :func:`run_task` returns."""

    config: RunConfig
    result: ExperimentResult
    summary: dict[str, Any]
    directory: Path | None


def run_task(
    config: RunConfig,
    out: str | Path | None = None,
    *,
    observers: Sequence[ObserverLike] = (),
    on_start: Callable[[Setup, int], None] | None = None,
) -> RunOutcome:
    """Run ``config`` to the end, committing every round to ``out`` (if given).

    ``on_start(setup, first_round)`` is called once the learners are built.
    """
    config = config.resolved()
    setup = build(config)
    store = None
    if out is not None:
        store = ExperimentStore.create(out, _stored(config), setup.learner_ids)
    return _play(setup, store, observers, on_start)


def resume_task(
    directory: str | Path,
    overrides: RunConfig | None = None,
    *,
    observers: Sequence[ObserverLike] = (),
    on_start: Callable[[Setup, int], None] | None = None,
) -> RunOutcome:
    """Continue the experiment in ``directory`` from its last committed round.

    ``overrides`` may raise ``rounds`` (or turn off baselines); any other difference
    from the stored config is refused, since the rounds already committed were
    computed with it.
    """
    store = ExperimentStore.open(directory)
    try:
        stored = RunConfig.from_dict(store.config)
        config = stored
        if overrides is not None:
            config = _merge_resume(stored.resolved(), overrides.resolved(), Path(directory))
        setup = build(config)
        if config.rounds != stored.rounds or config.baselines != stored.baselines:
            store.update_config(_stored(config))
    except BaseException:
        store.close()
        raise
    return _play(setup, store, observers, on_start)


def _merge_resume(stored: RunConfig, given: RunConfig, directory: Path) -> RunConfig:
    a, b = stored.to_dict(), given.to_dict()
    for key in a:
        if key not in _RESUMABLE_CHANGES and a[key] != b[key]:
            raise StoreError(
                f"{directory} was run with {key}={a[key]!r}; got {key}={b[key]!r}. "
                "Resume with the same settings (only rounds may change), or start a "
                "new experiment in another directory (--out, or run_task(config, out=...))"
            )
    return dataclasses.replace(stored, rounds=given.rounds, baselines=given.baselines)


def _stored(config: RunConfig) -> dict[str, Any]:
    data = config.to_dict()
    data["params"] = dict(sorted(data["params"].items()))
    return data


def _play(
    setup: Setup,
    store: ExperimentStore | None,
    observers: Sequence[ObserverLike],
    on_start: Callable[[Setup, int], None] | None,
) -> RunOutcome:
    c = setup.config
    experiment = Experiment(
        setup.learners,
        vote_threshold=float(c.vote_threshold or 0.0),
        proposer=c.proposer,
        seed=c.seed,
        timeout=c.timeout,
        store=store,
        learner_ids=setup.learner_ids,
        observers=observers,
    )
    with experiment:
        if on_start is not None:
            on_start(setup, experiment.next_round)
        initial = _initial_weights(experiment, store)
        result = experiment.run(int(c.rounds or 0))
        summary = summarize(setup, result, initial, experiment)
        if store is not None:
            store.put_meta("summary", summary)
    return RunOutcome(c, result, summary, store.directory if store else None)


def _initial_weights(experiment: Experiment, store: ExperimentStore | None) -> Weights:
    from colearning.core.codec import decode

    if store is not None and store.initial_weights_id:
        return decode(store.get_blob(store.initial_weights_id))
    return experiment.current_weights  # called before the first round


def summarize(
    setup: Setup, result: ExperimentResult, initial: Weights, experiment: Experiment
) -> dict[str, Any]:
    """The collective model against each learner alone and against pooled data.

    Every model is scored by one *judge*, a learner holding the union of all learners'
    test splits, so the numbers are comparable. A learner alone trains for as many
    proposals as the collective model had rounds, on its own data only; the pooled
    reference trains as many proposals on everyone's data together. Both start from
    the collective's initial weights.
    """
    c = setup.config
    task = setup.task
    pooled = pool_data(setup.parts)
    judge = setup.make_learner(pooled, -1)

    def judged(weights: Weights) -> float | None:
        judge.mli_accept_weights(weights)
        score = judge.mli_test_weights(weights).test_score
        return None if score is None else float(score)

    own = experiment.pool.test(
        setup.learner_ids, WeightsRef.of(result.final_weights, result.final_weights_id), c.timeout
    )
    summary: dict[str, Any] = {
        "task": task.name,
        "metric": task.metric,
        "higher_is_better": task.higher_is_better,
        "learners": len(setup.learners),
        "rounds": len(result.rounds),
        "accepted": sum(r.accepted for r in result.rounds),
        "rejected": sum(r.status == "rejected" for r in result.rounds),
        "skipped": sum(r.status == "skipped" for r in result.rounds),
        "stopped_early": result.stopped_early,
        "final_weights_id": result.final_weights_id,
        "initial": {"score": judged(initial)},
        "collective": {
            "score": judged(result.final_weights),
            "own_test_scores": {
                lid: (o.value.test_score if o.ok and o.value is not None else None)
                for lid, o in own.items()
            },
        },
        "dp_budgets": _dp_budgets(result.rounds),
    }
    if c.baselines:
        steps = len(result.rounds)
        alone = {
            lid: judged(_train_alone(setup.make_learner(part, i), initial, steps))
            for i, (lid, part) in enumerate(zip(setup.learner_ids, setup.parts, strict=True))
        }
        summary["individual"] = alone
        scores = [s for s in alone.values() if s is not None]
        best = max(scores) if task.higher_is_better else min(scores)
        summary["best_individual"] = {"score": best if scores else None}
        summary["pooled"] = {
            "score": judged(_train_alone(setup.make_learner(pooled, -1), initial, steps))
        }
    return summary


def _train_alone(learner: MachineLearningInterface, initial: Weights, steps: int) -> Weights:
    """``steps`` proposals on the learner's own data, each kept (a learner alone
    accepts every proposal of its own, as the protocol does for n = 1)."""
    learner.mli_accept_weights(initial)
    with Experiment([learner]) as alone:
        return alone.run(steps).final_weights


def _dp_budgets(rounds: Sequence[RoundRecord]) -> dict[str, dict[str, float]]:
    latest: dict[str, dict[str, float]] = {}
    for r in rounds:
        if r.dp_budget is not None:
            latest[r.proposer_id] = dataclasses.asdict(r.dp_budget)
    return latest
