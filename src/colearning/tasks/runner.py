"""A whole run from a task name: data shared out, learners built, rounds played and
committed, then the collective model compared with learners alone and with pooled data.

This is what ``colearn run`` calls; it is as usable from Python::

    from colearning.tasks import RunConfig, run_task
    outcome = run_task(RunConfig(task="digits-mlp", learners=5, rounds=20), out="runs/x")
    print(outcome.summary["collective"])
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colearning.core.combiners import Combiner
from colearning.core.exceptions import ConfigError, ConfigTypeError, StoreError, require_extra
from colearning.core.experiment import Experiment, ExperimentResult, ObserverLike
from colearning.core.interface import MachineLearningInterface, Weights
from colearning.core.pipeline import PipelinedPool
from colearning.core.plans import planner_for_mode
from colearning.core.pool import MAX_TIMEOUT, LearnerPool
from colearning.core.records import RoundRecord
from colearning.core.store import ExperimentStore
from colearning.core.tally import threshold_fraction
from colearning.core.weights_ref import WeightsRef
from colearning.data.types import Dataset, LearnerData, Shares, pool_data
from colearning.tasks.registry import BuildContext, Task, get_task

# Settings that may differ when an experiment is resumed: they do not change what the
# rounds compute.
_RESUMABLE_CHANGES = frozenset({"rounds", "baselines", "chain_url"})
#: ``ledger`` values: ``"evm"`` puts the rounds on an Ethereum chain (colearning.ledger).
LEDGERS = ("evm",)

#: Limits refused before anything runs (every learner is a model in this process; a
#: seed is a 63-bit integer everywhere it travels; MAX_TIMEOUT, a year, is the pool's).
MAX_LEARNERS = 10_000
MAX_ROUNDS = 10_000_000
MAX_SEED = 2**63 - 1


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigTypeError(
            f"{name} must be a whole number in [{low}, {high}]; got {_shown(value)} "
            f"({type(value).__name__})"
        )
    if value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}; got {_shown(value)}")
    if value > high:
        raise ConfigError(
            f"{name} must be at most {high}; got {_shown(value)}"
            + (" (each learner is a model held in this process)" if name == "learners" else "")
        )


def _text(name: str, value: Any, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str):
        raise ConfigTypeError(
            f"{name} must be a string; got {_shown(value)} ({type(value).__name__})"
        )
    if not value.strip():
        raise ConfigError(f"{name} must not be empty; got {value!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. Unset fields take the task's defaults.

    ``params`` holds the task's own options (see ``colearn tasks``). ``ledger="evm"``
    has a smart contract decide every round, on the embedded chain or the node at
    ``chain_url`` (see ``docs/ledger.md``). ``mode``, ``combiner``, ``server_lr``,
    ``server_momentum`` and ``proposers`` choose the round mode (``docs/modes.md``).
    ``committee``, if set, is the number of voters drawn each round (default: everyone
    votes). ``split`` is each learner's train, vote and test shares, ``"TRAIN,VOTE,TEST"``
    (default ``"0.6,0.2,0.2"``): a larger vote share gives each vote more rows.
    """

    task: str
    learners: int | None = None
    rounds: int | None = None
    vote_threshold: float | None = None
    partition: str | None = None
    #: each learner's train, vote and test shares, "TRAIN,VOTE,TEST" (None: 0.6,0.2,0.2)
    split: str | None = None
    seed: int = 0
    proposer: str = "round-robin"
    timeout: float | None = None
    data_dir: str | None = None
    baselines: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    ledger: str | None = None
    chain_url: str | None = None
    mode: str = "single"
    combiner: str = "mean"
    #: the server step of an aggregate or screened round (docs/modes.md): the candidate
    #: is current + server_lr * (combined - current) + server_momentum * last adopted step
    server_lr: float = 1.0
    server_momentum: float = 0.0
    proposers: int | None = None
    committee: int | None = None
    # -- attacks (colearning.attacks; docs/robustness.md): the last ``malicious``
    # learners are wrapped by ``attack`` ("NAME" or "NAME:OPTION=VALUE,...")
    malicious: int = 0
    attack: str | None = None

    def combiner_of(self, sizes: Mapping[str, float] | None = None) -> Combiner:
        """The :class:`~colearning.core.combiners.Combiner` of ``combiner``, the server
        step and, for the weighted mean, the learners' train rows ``sizes``."""
        _text("combiner", self.combiner)
        return Combiner.parse(
            self.combiner,
            sizes,
            server_lr=self.server_lr,
            server_momentum=self.server_momentum,
        )

    @property
    def fractions(self) -> tuple[float, float, float]:
        """The train, vote and test shares of ``split`` (the default when unset)."""
        from colearning.data.partition import DEFAULT_FRACTIONS, parse_split

        return DEFAULT_FRACTIONS if self.split is None else parse_split(self.split)

    def resolved(self) -> RunConfig:
        """This config with the task's defaults filled in and every value checked (by
        type and range, before any data is loaded)."""
        _text("task", self.task)
        if not isinstance(self.params, Mapping):
            raise ConfigTypeError(
                f"params must be a table of task options (e.g. [params] in TOML, or "
                f"-c params.NAME=VALUE); got {_shown(self.params)}"
            )
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
            partition=(
                self.partition if self.partition is not None else str(d.get("partition", "iid"))
            ),
            params={**task.params, **dict(self.params)},
        )
        config._check(task)
        return config

    def _check(self, task: Task) -> None:
        _whole("learners", self.learners, 1, MAX_LEARNERS)
        _whole("rounds", self.rounds, 0, MAX_ROUNDS)
        _whole("seed", self.seed, 0, MAX_SEED)
        threshold_fraction(self.vote_threshold)  # type: ignore[arg-type]
        _text("proposer", self.proposer)
        if self.proposer not in ("round-robin", "random"):
            raise ConfigError(
                f"proposer must be 'round-robin' or 'random'; got {_shown(self.proposer)}"
            )
        planner_for_mode(
            self.mode, self.proposer, self.seed, self.combiner_of(), self.proposers, self.committee
        )
        if self.committee is not None:
            from colearning.core.plans import check_committee_size

            check_committee_size(self.committee, self.learners)
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)):
                raise ConfigTypeError(
                    f"timeout must be a number of seconds > 0; got {_shown(self.timeout)} "
                    f"({type(self.timeout).__name__})"
                )
            if not (math.isfinite(self.timeout) and self.timeout > 0):
                raise ConfigError(
                    f"timeout must be a number of seconds > 0; got {_shown(self.timeout)}"
                )
            if self.timeout > MAX_TIMEOUT:
                raise ConfigError(
                    f"timeout must be at most {MAX_TIMEOUT:.0f} seconds (a year); got "
                    f"{_shown(self.timeout)} (leave it out for no timeout)"
                )
        _text("data_dir", self.data_dir, optional=True)
        if not isinstance(self.baselines, bool):
            raise ConfigTypeError(
                f"baselines must be true or false; got {_shown(self.baselines)} "
                f"({type(self.baselines).__name__})"
            )
        _text("partition", self.partition)
        bad_names = [k for k in self.params if not isinstance(k, str) or not k]
        if bad_names:
            raise ConfigTypeError(f"task option names must be strings; got {bad_names[0]!r}")
        for name, value in self.params.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ConfigTypeError(
                    f"task option {name} must be a number, a string, a boolean, or a list or "
                    f"table of them (finite numbers, no dates); got {_shown(value)} ({exc}); "
                    f"set params.{name} to such a value"
                ) from None
        unknown = sorted(set(self.params) - set(task.params))
        if unknown:
            known = ", ".join(sorted(task.params)) or "none"
            raise ConfigError(
                f"task {task.name!r} has no option {unknown[0]!r}; its options are: {known}"
            )
        if task.check_options is not None:
            task.check_options(self.params)  # before any data set is loaded
        from colearning.data.partition import parse_partition

        parse_partition(str(self.partition))
        if self.split is not None:
            _text("split", self.split)
        self.fractions  # noqa: B018 (checked)
        self._check_ledger()
        self._check_attack()

    def _check_attack(self) -> None:
        if self.malicious == 0 and self.attack is None:
            return
        from colearning.attacks.registry import AttackSpec, check_count

        check_count(self.malicious, int(self.learners or 0))
        if self.attack is None:
            raise ConfigError(
                f"--malicious {self.malicious} needs an attack: add --attack NAME "
                "(see `colearn attacks`)"
            )
        if self.malicious == 0:
            raise ConfigError(
                f"--attack {self.attack} needs --malicious N, the number of learners "
                "that attack (the last N)"
            )
        AttackSpec.parse(self.attack)

    def _check_ledger(self) -> None:
        if self.ledger is None:
            if self.chain_url is not None:
                raise ConfigError("--chain-url needs --ledger evm")
            return
        if self.ledger not in LEDGERS:
            raise ConfigError(f"ledger must be one of {', '.join(LEDGERS)}; got {self.ledger!r}")
        if self.proposer != "round-robin":
            raise ConfigError(
                "the ledger contract chooses proposers round-robin (round_index % n); "
                f"drop --proposer {self.proposer} or the ledger"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["params"] = dict(self.params)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        if not isinstance(data, Mapping):
            raise ConfigTypeError(f"settings must be a table; got {_shown(data)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(data) - names)
        if unknown:
            key = unknown[0]
            hint = ""
            task_name = data.get("task")
            if isinstance(task_name, str):
                try:
                    options = get_task(task_name).params
                except ConfigError:
                    options = {}
                if key in options:
                    hint = (
                        f"; {key!r} is an option of task {task_name!r}: set it as "
                        f"params.{key} (-c params.{key}=VALUE, or under [params] in TOML)"
                    )
            raise ConfigError(
                f"unknown setting {key!r}{hint or '; settings are: ' + ', '.join(sorted(names))}"
            )
        if "task" not in data or data["task"] is None:
            raise ConfigError("no task given; pass --task NAME (see `colearn tasks`)")
        params = data.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise ConfigTypeError(
                f"params must be a table of task options (e.g. [params] in TOML, or "
                f"-c params.NAME=VALUE); got {_shown(params)}"
            )
        return cls(**{**data, "params": dict(params or {})})


@dataclass
class Setup:
    """A run's parts before any round: the task, its data shared out, the learners.

    The learners are built when first asked for: a run over learner servers
    (``--processes``) or Ray actors never builds them here, its servers do.
    ``shares`` holds every learner's rows in one buffer (``parts`` are views into it),
    for pools that ship the data elsewhere once.
    """

    config: RunConfig
    task: Task
    dataset: Dataset
    parts: list[LearnerData]
    built: list[MachineLearningInterface] | None = None

    @property
    def learners(self) -> list[MachineLearningInterface]:
        if self.built is None:
            self.built = [self.make_learner(part, i) for i, part in enumerate(self.parts)]
            if self.config.malicious:
                from colearning.attacks.registry import make_malicious

                self.built = make_malicious(
                    self.built, self.config.malicious, str(self.config.attack)
                )
        return self.built

    shares: Shares | None = None

    @property
    def learner_ids(self) -> list[str]:
        return [f"learner-{i}" for i in range(len(self.parts))]

    @property
    def train_rows(self) -> list[int]:
        """Each learner's train rows, in learner order."""
        return [p.sizes[0] for p in self.parts]

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

    def learner_builder(self) -> TaskLearners:
        """What builds this run's learners in another process, from ``(dataset, shares)``
        (a Ray actor: :meth:`colearning.scale.RayPool.for_setup`)."""
        return TaskLearners(self.config, self.task)


@dataclass(frozen=True)
class TaskLearners:
    """Builds a task run's learners wherever it is unpickled, from the run's data set
    and its :class:`~colearning.data.types.Shares` (views, not copies)."""

    config: RunConfig
    task: Task

    def build(
        self, indices: Sequence[int], shared: tuple[Dataset, Shares]
    ) -> list[MachineLearningInterface]:
        dataset, shares = shared
        setup = Setup(self.config, self.task, dataset, [], None, shares)
        return [setup.make_learner(shares.part(i), i) for i in indices]


def build(config: RunConfig, *, learners: bool = True) -> Setup:
    """Load the task's data and share it out; build one learner per share now, or
    (``learners`` false) when :attr:`Setup.learners` is first read (never, when another
    process builds them)."""
    from colearning.data.partition import share_dataset

    config = config.resolved()
    task = get_task(config.task)
    require_task_extra(task)
    data_dir = Path(config.data_dir) if config.data_dir else None
    dataset = task.load_dataset(data_dir, config.params)
    _check_fits(config, dataset)
    shares = share_dataset(
        dataset, int(config.learners or 0), str(config.partition), config.seed, config.fractions
    )
    parts = shares.parts()
    setup = Setup(config, task, dataset, parts, None, shares)
    if learners:
        setup.learners  # noqa: B018 (built now)
    return setup


def require_task_extra(task: Task) -> None:
    """Fail with the ``pip install`` to run if ``task``'s extra is missing."""
    if task.extra is not None:
        require_extra(_module_of_extra(task.extra), task.extra, f"task {task.name!r}")


def _check_fits(config: RunConfig, dataset: Dataset) -> None:
    """Refuse, before sharing the data out, what cannot fit: more learners than the
    data set has rows for, or more shards than rows."""
    from colearning.data.partition import DEFAULT_MIN_ROWS, min_rows_for, parse_partition

    rows = len(dataset.y)
    learners = int(config.learners or 0)
    need = max(DEFAULT_MIN_ROWS, min_rows_for(config.fractions))
    if learners * need > rows:
        raise ConfigError(
            f"{learners} learners need at least {learners * need} rows "
            f"({need} each), but {dataset.name} has {rows}; use at most "
            f"{rows // need} learners"
        )
    spec = parse_partition(str(config.partition))
    if spec.kind == "shards" and learners * int(spec.shards or 0) > rows:
        raise ConfigError(
            f"partition {spec} cuts {dataset.name}'s {rows} rows into {learners} x "
            f"{spec.shards} shards, more than it has rows; use shards:K with K <= "
            f"{max(1, rows // learners)}"
        )


def _module_of_extra(extra: str) -> str:
    return {
        "sklearn": "sklearn",
        "torch": "torch",
        "privacy": "opacus",
        "keras": "keras",
        "xgboost": "xgboost",
    }.get(extra, extra)


#: Makes the pool a run is played over from its setup (``colearn run --processes``).
PoolFactory = Callable[[Setup], LearnerPool]


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
    pool_factory: PoolFactory | None = None,
) -> RunOutcome:
    """Run ``config`` to the end, committing every round to ``out`` (if given).

    ``on_start(setup, first_round)`` is called once the learners are built.
    ``pool_factory(setup)``, if given, makes the pool the rounds are played over (learner
    servers, say) instead of the setup's in-process learners; the summary is computed
    here either way.
    """
    config = config.resolved()
    if out is not None:
        ExperimentStore.check_new(out)  # before the data loads
    setup = build(config, learners=pool_factory is None)
    if config.ledger is not None and config.chain_url:
        from colearning.ledger.chain import RpcChain

        RpcChain(config.chain_url).close()  # unreachable: refuse before creating `out`
    store = None
    if out is not None:
        store = ExperimentStore.create(
            out, _stored(config), setup.learner_ids, mutable_keys=_RESUMABLE_CHANGES
        )
    return _play(setup, store, observers, on_start, pool_factory)


def resume_task(
    directory: str | Path,
    overrides: RunConfig | Mapping[str, Any] | None = None,
    *,
    observers: Sequence[ObserverLike] = (),
    on_start: Callable[[Setup, int], None] | None = None,
    pool_factory: PoolFactory | None = None,
) -> RunOutcome:
    """Continue the experiment in ``directory`` from its last committed round.

    ``overrides`` (a whole :class:`RunConfig`, or only the settings given, as a
    mapping) may raise ``rounds`` (never below the rounds already committed) or turn
    off baselines; any other difference from the stored config is refused, naming
    the setting, since the rounds already committed were computed with it.
    """
    store = ExperimentStore.open(directory)
    try:
        path = Path(directory)
        stored = _stored_run_config(store, path)
        config = stored
        if isinstance(overrides, Mapping):
            config = _merge_settings(stored, overrides, path)
        elif overrides is not None:
            config = _merge_resume(stored, overrides.resolved(), path)
        committed = len(store.rounds())
        if int(config.rounds or 0) < committed:
            raise ConfigError(
                f"{directory} already holds {committed} committed rounds; to resume it "
                f"rounds must be at least {committed}; got {config.rounds}. Nothing was "
                "changed"
            )
        setup = build(config, learners=pool_factory is None)
        if config.rounds != stored.rounds or config.baselines != stored.baselines:
            store.update_config(_stored(config))
    except BaseException:
        store.close()
        raise
    return _play(setup, store, observers, on_start, pool_factory)


def _stored_run_config(store: ExperimentStore, directory: Path) -> RunConfig:
    """The stored settings, checked as given ones are (a damaged config is named)."""
    try:
        return RunConfig.from_dict(store.config).resolved()
    except ConfigError as exc:
        raise StoreError(
            f"the settings stored in {directory} cannot be used: {exc}. The experiment "
            "was written by another version or its config was edited; `colearn verify "
            f"{directory}` says more"
        ) from None


def _comparable(value: Any) -> Any:
    """A value as JSON stores it: a tuple and a list of the same items are equal."""
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        return repr(value)


def _changed(directory: Path, key: str, was: Any, got: Any) -> StoreError:
    return StoreError(
        f"{directory} was run with {key}={was!r}; got {key}={got!r}. Resume with the same "
        "settings (only rounds may change, and baselines be turned off), or start a new "
        "experiment in another directory (--out, or run_task(config, out=...))"
    )


def _merge_settings(stored: RunConfig, given: Mapping[str, Any], directory: Path) -> RunConfig:
    """The stored config with ``given`` settings, refusing any that change the rounds."""
    names = {f.name for f in dataclasses.fields(RunConfig)}
    was = stored.to_dict()
    for key, value in given.items():
        if key not in names:
            raise ConfigError(f"unknown setting {key!r}; settings are: {', '.join(sorted(names))}")
        if key in _RESUMABLE_CHANGES:
            continue
        if key == "params":
            if not isinstance(value, Mapping):
                raise ConfigTypeError(f"params must be a table of task options; got {value!r}")
            for option, got in value.items():
                if option in was["params"] and _comparable(was["params"][option]) != _comparable(
                    got
                ):
                    raise _changed(directory, f"params.{option}", was["params"][option], got)
            continue
        if _comparable(was[key]) != _comparable(value):
            raise _changed(directory, key, was[key], value)
    merged = {**was, **{k: v for k, v in given.items() if k != "params"}}
    merged["params"] = {**was["params"], **dict(given.get("params") or {})}
    return RunConfig.from_dict(merged).resolved()


def _merge_resume(stored: RunConfig, given: RunConfig, directory: Path) -> RunConfig:
    a, b = stored.to_dict(), given.to_dict()
    for key in a:
        if key not in _RESUMABLE_CHANGES and _comparable(a[key]) != _comparable(b[key]):
            raise _changed(directory, key, a[key], b[key])
    return dataclasses.replace(
        stored, rounds=given.rounds, baselines=given.baselines, chain_url=given.chain_url
    )


def _stored(config: RunConfig) -> dict[str, Any]:
    data = config.to_dict()
    data["params"] = dict(sorted(data["params"].items()))
    return data


def _play(
    setup: Setup,
    store: ExperimentStore | None,
    observers: Sequence[ObserverLike],
    on_start: Callable[[Setup, int], None] | None,
    pool_factory: PoolFactory | None = None,
) -> RunOutcome:
    c = setup.config
    try:
        decider = _ledger_decider(c, store, setup.learner_ids)
    except BaseException:
        if store is not None:
            store.close()
        raise
    members: list[MachineLearningInterface] | LearnerPool
    try:
        members = setup.learners if pool_factory is None else pool_factory(setup)
    except BaseException:
        if decider is not None:
            decider.close()
        if store is not None:
            store.close()
        raise
    try:
        experiment = Experiment(
            members,
            vote_threshold=float(c.vote_threshold or 0.0),
            proposer=c.proposer,
            seed=c.seed,
            timeout=c.timeout,
            store=store,
            learner_ids=setup.learner_ids,
            observers=observers,
            decider=decider,
            mode=c.mode,
            # the weighted mean weighs each proposal by its learner's train rows
            combiner=c.combiner_of(dict(zip(setup.learner_ids, setup.train_rows, strict=True))),
            proposers=c.proposers,
            committee=c.committee,
        )
    except BaseException:
        # the pool may hold processes (learner servers, Ray actors): end them here
        if not isinstance(members, list):
            members.close()
        if decider is not None:
            decider.close()
        if store is not None:
            store.close()
        raise
    with experiment:
        if decider is not None:
            initial_id = store.initial_weights_id if store else None
            decider.start(initial_id or experiment.current_weights_id)
        if on_start is not None:
            on_start(setup, experiment.next_round)
        initial = _initial_weights(experiment, store)
        result = experiment.run(int(c.rounds or 0))
        summary = summarize(setup, result, initial, experiment)
        if decider is not None:
            summary["ledger"] = decider.describe()
        if store is not None:
            store.put_meta("summary", summary)
    return RunOutcome(c, result, summary, store.directory if store else None)


def _ledger_decider(c: RunConfig, store: ExperimentStore | None, learner_ids: Sequence[str]) -> Any:
    """The contract as the decider (``--ledger evm``), or ``None`` for the Python tally."""
    if c.ledger is None:
        return None
    from colearning.ledger import EvmDecider, Ledger

    ledger = Ledger.open(store.directory if store else None, learner_ids, c.chain_url)
    return EvmDecider(ledger, float(c.vote_threshold or 0.0), committee=c.committee)


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
        "learners": len(setup.parts),
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
        "committee": c.committee,
    }
    if isinstance(experiment.pool, PipelinedPool):
        summary["pipeline"] = experiment.pool.stats.as_dict()
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
