"""Exporting an experiment's final model in its learners' exportable format (ONNX)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from colearning.core.codec import decode
from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import ColearnModel, MachineLearningInterface
from colearning.core.store import opened
from colearning.tasks.runner import RunConfig, build


def final_learner(
    directory: str | os.PathLike[str],
    *,
    data_dir: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> MachineLearningInterface:
    """A learner of the experiment's task holding the final accepted weights.

    It is rebuilt here, from the task (the weights come from the experiment directory,
    checked against their id; nothing is taken from a learner), so the experiment's
    task must be available here. An in-process or ``--processes`` run is rebuilt from
    its stored settings (learner 0's data and recipe). A ``--remote`` run stored only
    the task's name: its learner is built on the task's own data set, or on
    ``data_dir`` for tasks that read files, with ``params`` as the learners served
    them.
    """
    with opened(directory) as store:
        stored = dict(store.config)
        network = store.get_meta("network") or {}
        wid = store.current_weights_id()
        if wid is None:
            raise ConfigError(f"{directory} has no weights yet; run some rounds first")
        blob = store.get_blob(wid)
    if "remote" in network:
        task = str(stored.get("task", ""))
        if task.startswith("factory:"):
            raise ConfigError(
                f"the learners of {directory} served their own learner ({task[8:]}), which "
                "colearn cannot build; build it, give it the final weights (colearn export "
                "--format safetensors) and call its mli_get_current_model()"
            )
        config = RunConfig(
            task=task,
            learners=1,
            seed=int(stored.get("seed", 0)),
            data_dir=data_dir,
            params=dict(params or {}),
        )
    else:
        config = RunConfig.from_dict(stored)
        if data_dir is not None or params:
            config = dataclasses.replace(
                config,
                data_dir=data_dir if data_dir is not None else config.data_dir,
                params={**config.params, **(params or {})},
            )
    setup = build(config, learners=False)  # learner 0 alone, however many the run had
    learner = setup.make_learner(setup.parts[0], 0)
    try:
        weights = decode(blob, learner.mli_get_current_weights())
    except WeightsError as exc:
        raise ConfigError(
            f"the final weights of {directory} do not fit {config.task}'s model as built here "
            f"({exc}); if the learners served other task options, give them with "
            "-c params.KEY=VALUE"
        ) from None
    learner.mli_accept_weights(weights)
    return learner


def export_model(
    directory: str | os.PathLike[str],
    *,
    data_dir: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> ColearnModel:
    """The final accepted model of the experiment in ``directory``, as the task's
    learner exports it (``ModelFormat.ONNX`` for every bundled learner); see
    :func:`final_learner` for how the learner is rebuilt."""
    return final_learner(directory, data_dir=data_dir, params=params).mli_get_current_model()


def write_model(model: ColearnModel, output: str | os.PathLike[str]) -> Path:
    """Write an exported model's bytes to ``output``."""
    payload = model.model
    if not isinstance(payload, (bytes, bytearray)):
        raise ConfigError(
            f"the learner exported a {type(payload).__name__}, not bytes; its "
            "mli_get_current_model() must return the serialized model"
        )
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(payload))
    return path
