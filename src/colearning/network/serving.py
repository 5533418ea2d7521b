"""What ``colearn learner serve`` hosts: a task's learner on a share of its data (exactly
the share ``colearn run`` would give it), the task's learner on a party's own data, or
a user's own learner from a factory."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colearning.core.exceptions import ConfigError
from colearning.core.interface import MachineLearningInterface

if TYPE_CHECKING:
    from colearning.network.tls import ServerCredentials
    from colearning.tasks.runner import Setup


@dataclass(frozen=True)
class Served:
    """A learner ready to serve, with what its server says about it."""

    learner: MachineLearningInterface
    learner_id: str
    task: str
    metric: str
    higher_is_better: bool


def parse_share(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``: learner ``learner-I`` of ``N``."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ConfigError(
            f"--share takes INDEX/COUNT, e.g. 2/5 for learner-2 of 5 (indices from 0); got {text!r}"
        )
    i, n = int(index), int(count)
    if n < 1 or not 0 <= i < n:
        raise ConfigError(
            f"--share {text}: INDEX must be in 0..COUNT-1 (learner-0 is 0/{max(n, 1)}); got "
            f"index {i} of {n}"
        )
    return i, n


def task_setup(
    task_name: str,
    count: int,
    *,
    partition: str | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    params: Mapping[str, Any] | None = None,
    split: str | None = None,
) -> Setup:
    """A task's data set shared out ``count`` ways by ``partition`` and ``seed``, as
    ``colearn run --learners count`` shares it (no learner built yet)."""
    from colearning.data.partition import partition_dataset
    from colearning.tasks.registry import get_task
    from colearning.tasks.runner import RunConfig, Setup, require_task_extra

    config = RunConfig(
        task=task_name,
        learners=count,
        partition=partition,
        split=split,
        seed=seed,
        data_dir=data_dir,
        params=dict(params or {}),
    ).resolved()
    task = get_task(config.task)
    require_task_extra(task)
    dataset = task.load_dataset(Path(data_dir) if data_dir else None, config.params)
    parts = partition_dataset(dataset, count, str(config.partition), config.seed, config.fractions)
    return Setup(config, task, dataset, parts)


def served_from(setup: Setup, index: int, learner_id: str | None = None) -> Served:
    """Learner ``index`` of ``setup``, ready to serve."""
    task = setup.task
    return Served(
        setup.make_learner(setup.parts[index], index),
        learner_id or f"learner-{index}",
        task.name,
        task.metric,
        task.higher_is_better,
    )


def task_learner(
    task_name: str,
    *,
    share: tuple[int, int] | None = None,
    partition: str | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    params: Mapping[str, Any] | None = None,
    learner_id: str | None = None,
    split: str | None = None,
) -> Served:
    """A task's learner. With ``share=(i, n)`` it holds share ``i`` of the task's data set
    split ``n`` ways by ``partition`` and ``seed``, as ``colearn run --learners n`` builds
    learner ``i``; without, it holds the whole data set found in ``data_dir``."""
    index, count = share if share is not None else (0, 1)
    setup = task_setup(
        task_name,
        count,
        partition=partition,
        seed=seed,
        data_dir=data_dir,
        params=params,
        split=split,
    )
    return served_from(setup, index, learner_id)


def factory_learner(spec: str, learner_id: str) -> Served:
    """A user's learner: ``spec`` is ``package.module:callable``, called with no
    arguments, returning a :class:`MachineLearningInterface`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            "--factory takes package.module:callable (a function returning a learner); "
            f"got {spec!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"--factory {spec}: cannot import {module_name!r} ({exc}); is it installed or on "
            "PYTHONPATH?"
        ) from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)  # type: ignore[assignment]
        if fn is None:
            raise ConfigError(f"--factory {spec}: {module_name} has no attribute {attr!r}")
    if not callable(fn):
        raise ConfigError(f"--factory {spec}: {attr} is not callable")
    learner = fn()
    if not isinstance(learner, MachineLearningInterface):
        raise ConfigError(
            f"--factory {spec} returned {type(learner).__name__}; it must return a "
            "colearning.MachineLearningInterface"
        )
    return Served(learner, learner_id, f"factory:{spec}", "score", True)


def serve(
    served: Served,
    *,
    host: str,
    port: int,
    credentials: ServerCredentials | None,
    max_bytes: int,
    share_cores: bool,
    quiet: bool = False,
    coordinators: Sequence[str] | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Host ``served`` until SIGTERM or SIGINT: what ``colearn learner serve`` (and each
    server of ``colearn run --processes``) runs. ``ready(port)`` is called once the
    server listens and its health service says SERVING. With ``credentials``, only a
    client whose certificate names one of ``coordinators`` may call it."""
    import logging
    import signal
    import sys
    import threading

    from colearning.network.server import LearnerServer

    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s " + served.learner_id + ": %(message)s",
        stream=sys.stderr,
        force=True,
    )
    server = LearnerServer(
        served.learner,
        served.learner_id,
        host=host,
        port=port,
        credentials=credentials,
        task=served.task,
        metric=served.metric,
        higher_is_better=served.higher_is_better,
        max_bytes=max_bytes,
        share_cores=share_cores,
        coordinators=coordinators,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    if ready is not None:
        ready(server.port)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        logging.getLogger("colearning.network.server").info("stopping")
        server.stop(grace=1.0)
