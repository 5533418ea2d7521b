"""Exporting an experiment's final model in its learners' exportable format (ONNX)."""

from __future__ import annotations

import os
from pathlib import Path

from colearning.core.codec import decode
from colearning.core.exceptions import ConfigError
from colearning.core.interface import ColearnModel, MachineLearningInterface
from colearning.core.store import opened
from colearning.tasks.runner import RunConfig, build


def final_learner(directory: str | os.PathLike[str]) -> MachineLearningInterface:
    """A learner of the experiment's task holding the final accepted weights.

    It is rebuilt from the stored settings (learner 0's data and recipe), so the
    experiment's task must be available here.
    """
    with opened(directory) as store:
        config = RunConfig.from_dict(store.config)
        wid = store.current_weights_id()
        if wid is None:
            raise ConfigError(f"{directory} has no weights yet; run some rounds first")
        blob = store.get_blob(wid)
    setup = build(config, learners=False)  # learner 0 alone, however many the run had
    learner = setup.make_learner(setup.parts[0], 0)
    learner.mli_accept_weights(decode(blob, learner.mli_get_current_weights()))
    return learner


def export_model(directory: str | os.PathLike[str]) -> ColearnModel:
    """The final accepted model of the experiment in ``directory``, as the task's
    learner exports it (``ModelFormat.ONNX`` for every bundled learner)."""
    return final_learner(directory).mli_get_current_model()


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
