"""Whole runs over learner servers: local subprocesses (``colearn run --processes``) or
learners on other machines (``colearn run --remote``).

``--processes`` is a :func:`~colearning.tasks.runner.run_task` whose rounds are played
over learner-server subprocesses: the coordinator builds the same setup (the data shared
out the same way), so the summary (the judge, each learner alone, pooled data) is the
in-process run's, and the final weights id is the same. ``--remote`` has no data on the
coordinator: the learners say what task they serve, and the summary scores the models
on each learner's own test data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colearning.core.exceptions import ConfigError, StoreError
from colearning.core.experiment import Experiment, ObserverLike
from colearning.core.pipeline import PipelinedPool
from colearning.core.plans import planner_for
from colearning.core.pool import LearnerPool
from colearning.core.store import ExperimentStore
from colearning.core.weights_ref import WeightsRef
from colearning.network.launcher import ForkedLearners, launch_spec
from colearning.network.tls import ClientCredentials
from colearning.tasks.runner import RunConfig, RunOutcome, Setup, resume_task, run_task

if TYPE_CHECKING:
    from colearning.network.pool import GrpcPool

#: Settings a remote experiment stores (and may not change on resume, but rounds).
REMOTE_SETTINGS = ("rounds", "vote_threshold", "proposer", "seed", "timeout")


def pipelined(
    pool: GrpcPool, proposer: str, seed: int, rounds: int, pipeline: bool | None
) -> LearnerPool:
    """``pool`` with pipelined rounds, unless turned off (``pipeline=False``) or no
    learner may train early (see :mod:`colearning.core.pipeline`)."""
    if pipeline is False:
        return pool
    wrapped = PipelinedPool(pool, planner_for(proposer, seed), rounds=rounds)
    if not any(wrapped._eligible.values()):
        return pool
    return wrapped


def pipeline_stats(experiment: Experiment) -> dict[str, Any] | None:
    pool = experiment.pool
    return pool.stats.as_dict() if isinstance(pool, PipelinedPool) else None


# -- --processes ------------------------------------------------------------------------------


def run_processes(
    config: RunConfig,
    out: str | Path | None,
    *,
    resume: str | Path | None = None,
    overrides: RunConfig | None = None,
    observers: Sequence[ObserverLike] = (),
    on_start: Callable[[Setup, int], None] | None = None,
    credentials: tuple[str, ClientCredentials] | None = None,
    pipeline: bool | None = None,
    log_dir: str | Path | None = None,
    ready_timeout: float = 120.0,
) -> RunOutcome:
    """Play ``config`` (or resume ``resume``) over one learner-server subprocess per
    learner on 127.0.0.1; the servers are gone when this returns or raises."""
    if resume is not None:
        from colearning.core.store import opened

        with opened(resume) as store:
            stored = RunConfig.from_dict(store.config)
        config = stored if overrides is None else overrides
    config = config.resolved()
    n = int(config.learners or 0)
    certs_dir = credentials[0] if credentials else None
    if certs_dir is not None:  # a missing certificate is one line here, not a server's log
        from colearning.network.tls import server_credentials

        for i in range(n):
            server_credentials(certs_dir, f"learner-{i}")
    spec = launch_spec(
        config.task,
        n,
        partition=str(config.partition),
        split=config.split,
        seed=config.seed,
        data_dir=config.data_dir,
        params=config.params,
        certs=certs_dir,
        coordinator=credentials[1].name if credentials else None,
    )
    # the servers start (one launcher, forking them) while the coordinator builds its
    # own setup: the two run side by side
    procs = ForkedLearners(spec, log_dir).start()

    def factory(setup: Setup) -> LearnerPool:
        from colearning.network.pool import GrpcPool  # gRPC loads while the servers start

        ports = procs.wait_ready(ready_timeout)
        pool = GrpcPool(
            [(f"learner-{i}", f"127.0.0.1:{p}") for i, p in enumerate(ports)],
            credentials=credentials[1] if credentials else None,
        )
        c = setup.config
        return pipelined(pool, c.proposer, c.seed, int(c.rounds or 0), pipeline)

    try:
        if resume is not None:
            outcome = resume_task(
                resume, overrides, observers=observers, on_start=on_start, pool_factory=factory
            )
        else:
            outcome = run_task(
                config, out, observers=observers, on_start=on_start, pool_factory=factory
            )
    finally:
        procs.stop()
        procs.cleanup()
    return outcome  # the summary holds the pipeline's figures (tasks.runner.summarize)


# -- --remote ---------------------------------------------------------------------------------


def run_remote(
    endpoints: Sequence[tuple[str, str]],
    out: str | Path,
    settings: dict[str, Any],
    *,
    observers: Sequence[ObserverLike] = (),
    on_start: Callable[[GrpcPool, dict[str, Any], int], None] | None = None,
    credentials: ClientCredentials | None = None,
    pipeline: bool | None = None,
    connect_timeout: float = 30.0,
) -> RunOutcome:
    """Drive learner servers at ``endpoints`` for ``settings`` (rounds, vote_threshold,
    proposer, seed, timeout), committing every round to ``out``."""
    from colearning.network.pool import GrpcPool

    _check_remote_settings(settings)
    pool = GrpcPool(endpoints, credentials=credentials, connect_timeout=connect_timeout)
    try:
        config = _remote_config(pool, settings)
        store = ExperimentStore.create(out, config, list(pool.learner_ids))
        store.put_meta(
            "network", {"remote": [list(e) for e in endpoints], "tls": bool(credentials)}
        )
    except BaseException:
        pool.close()
        raise
    return _play_remote(pool, store, config, observers, on_start, pipeline)


def resume_remote(
    directory: str | Path,
    settings: dict[str, Any],
    *,
    observers: Sequence[ObserverLike] = (),
    on_start: Callable[[GrpcPool, dict[str, Any], int], None] | None = None,
    credentials: ClientCredentials | None = None,
    pipeline: bool | None = None,
    connect_timeout: float = 30.0,
) -> RunOutcome:
    """Continue a ``--remote`` experiment against the learners it was run with (only
    ``rounds`` may change)."""
    from colearning.network.pool import GrpcPool

    store = ExperimentStore.open(directory)
    try:
        network = store.get_meta("network") or {}
        if "remote" not in network:
            raise StoreError(
                f"{directory} is not a --remote experiment; resume it without --remote"
            )
        if network.get("tls") and credentials is None:
            raise ConfigError(
                f"{directory} was run with mutual TLS; resume it with --certs DIR as well"
            )
        config = dict(store.config)
        for key, value in settings.items():
            if key == "rounds":
                config["rounds"] = value
            elif value is not None and config.get(key) != value:
                raise StoreError(
                    f"{directory} was run with {key}={config.get(key)!r}; got {key}={value!r}. "
                    "Resume with the same settings (only rounds may change)"
                )
        endpoints = [(str(a), str(b)) for a, b in network["remote"]]
        pool = GrpcPool(endpoints, credentials=credentials, connect_timeout=connect_timeout)
    except BaseException:
        store.close()
        raise
    if config["rounds"] != store.config.get("rounds"):
        store.put_meta("config", config)
    return _play_remote(pool, store, config, observers, on_start, pipeline)


def _check_remote_settings(settings: dict[str, Any]) -> None:
    unknown = sorted(set(settings) - set(REMOTE_SETTINGS) - {"task"})
    if unknown:
        raise ConfigError(
            f"with --remote the learners hold the data and the model; {unknown[0]!r} cannot be "
            f"set here (settings with --remote: {', '.join(REMOTE_SETTINGS)})"
        )


def _remote_config(pool: GrpcPool, settings: dict[str, Any]) -> dict[str, Any]:
    first = pool.description(pool.learner_ids[0])
    tasks = {pool.description(lid).task for lid in pool.learner_ids}
    if len(tasks) > 1:
        raise ConfigError(f"the learners serve different tasks {sorted(tasks)}; serve one task")
    want = settings.get("task")
    if want is not None and want != first.task:
        raise ConfigError(f"--task {want} was given, but the learners serve {first.task!r}")
    _check_remote_settings(settings)
    rounds = settings.get("rounds", 20)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ConfigError(f"rounds must be a whole number >= 0; got {rounds!r}")
    return {
        "task": first.task,
        "learners": len(pool.learner_ids),
        "rounds": rounds,
        "vote_threshold": settings.get("vote_threshold", 0.5),
        "proposer": settings.get("proposer", "round-robin"),
        "seed": settings.get("seed", 0),
        "timeout": settings.get("timeout"),
        "metric": first.metric,
        "higher_is_better": first.higher_is_better,
    }


def _play_remote(
    pool: GrpcPool,
    store: ExperimentStore,
    config: dict[str, Any],
    observers: Sequence[ObserverLike],
    on_start: Callable[[GrpcPool, dict[str, Any], int], None] | None,
    pipeline: bool | None,
) -> RunOutcome:
    from colearning.core.codec import decode

    rounds = int(config["rounds"])
    members = pipelined(pool, config["proposer"], int(config["seed"]), rounds, pipeline)
    try:
        experiment = Experiment(
            members,
            vote_threshold=float(config["vote_threshold"]),
            proposer=config["proposer"],
            seed=int(config["seed"]),
            timeout=config["timeout"],
            store=store,
            observers=observers,
        )
    except BaseException:
        members.close()
        store.close()
        raise
    with experiment:
        if on_start is not None:
            on_start(pool, config, experiment.next_round)
        initial_id = str(store.initial_weights_id)
        initial = decode(store.get_blob(initial_id))
        result = experiment.run(rounds)
        ids = list(pool.learner_ids)
        timeout = config["timeout"]

        def own_scores(ref: WeightsRef) -> dict[str, float | None]:
            got = experiment.pool.test(ids, ref, timeout)
            return {
                lid: (o.value.test_score if o.ok and o.value is not None else None)
                for lid, o in got.items()
            }

        final = own_scores(WeightsRef.of(result.final_weights, result.final_weights_id))
        start = own_scores(WeightsRef.of(initial, initial_id))
        summary: dict[str, Any] = {
            "task": config["task"],
            "metric": config["metric"],
            "higher_is_better": config["higher_is_better"],
            "scored_by": "the mean of each learner's score on its own test data",
            "learners": len(ids),
            "rounds": len(result.rounds),
            "accepted": sum(r.accepted for r in result.rounds),
            "rejected": sum(r.status == "rejected" for r in result.rounds),
            "skipped": sum(r.status == "skipped" for r in result.rounds),
            "stopped_early": result.stopped_early,
            "final_weights_id": result.final_weights_id,
            "initial": {"score": _mean(start.values())},
            "collective": {"score": _mean(final.values()), "own_test_scores": final},
            "dp_budgets": {},
        }
        stats = pipeline_stats(experiment)
        if stats is not None:
            summary["pipeline"] = stats
        store.put_meta("summary", summary)
    run_config = RunConfig(
        task=str(config["task"]),
        learners=len(ids),
        rounds=rounds,
        vote_threshold=float(config["vote_threshold"]),
        seed=int(config["seed"]),
        proposer=str(config["proposer"]),
        timeout=config["timeout"],
        baselines=False,
    )
    return RunOutcome(dataclasses.replace(run_config), result, summary, store.directory)


def _mean(values: Any) -> float | None:
    got = [float(v) for v in values if v is not None]
    return sum(got) / len(got) if got else None
