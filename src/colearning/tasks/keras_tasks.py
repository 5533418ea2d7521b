"""The bundled Keras task: a small convolutional network on 5,000 MNIST digits.

Nothing here imports Keras at module import; ``make_learner`` does, when called.
Learners vote on the loss of their vote set and report accuracy as the test score.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError
from colearning.core.interface import MachineLearningInterface
from colearning.data.types import Dataset, LearnerData
from colearning.tasks.options import int_option, learner_seed, positive_option, task_options
from colearning.tasks.registry import BuildContext, Task, register_task

_PARAMS: Mapping[str, Any] = {
    "model": "conv",
    "learning_rate": 0.002,
    "batch_size": 32,
    "epochs": 1,
}


def _load(data_dir: Path | None, params: Mapping[str, Any]) -> Dataset:
    from colearning.data.datasets import load_dataset

    return load_dataset("mnist-small", data_dir)


def build_mnist_model(kind: str = "conv", seed: int = 0) -> Any:
    """A small Keras model for 28x28 digits given as 784 floats in [0, 1].

    ``"conv"``: two 3x3 convolutions (8 and 16 filters, each followed by 2x2 max
    pooling) and a softmax layer, about 8,000 weights. ``"dense"``: one hidden layer of
    64 units. Initial weights are drawn from ``seed``.
    """
    from colearning.learners.keras import keras

    def init(i: int) -> Any:
        return keras.initializers.GlorotUniform(seed=seed + i)

    layers = keras.layers
    if kind == "conv":
        body = [
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(8, 3, activation="relu", kernel_initializer=init(1)),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, activation="relu", kernel_initializer=init(2)),
            layers.MaxPooling2D(2),
            layers.Flatten(),
        ]
    elif kind == "dense":
        body = [layers.Dense(64, activation="relu", kernel_initializer=init(1))]
    else:
        raise ConfigError(
            f"task 'mnist-keras' option model must be 'conv' or 'dense'; got {kind!r}"
        )
    head = layers.Dense(10, activation="softmax", kernel_initializer=init(3))
    return keras.Sequential([keras.Input((784,)), *body, head])


def _options(params: Mapping[str, Any]) -> dict[str, Any]:
    options = task_options("mnist-keras", _PARAMS, params)
    if options["model"] not in ("conv", "dense"):
        raise ConfigError(
            f"task 'mnist-keras' option model must be 'conv' or 'dense'; got {options['model']!r}"
        )
    return {
        "learning_rate": positive_option("mnist-keras", "learning_rate", options["learning_rate"]),
        "batch_size": int_option("mnist-keras", "batch_size", options["batch_size"]),
        "epochs": int_option("mnist-keras", "epochs", options["epochs"]),
        "model": options["model"],
    }


def _make_learner(data: LearnerData, context: BuildContext) -> MachineLearningInterface:
    o = _options(context.params)
    learning_rate, batch_size, epochs = o["learning_rate"], o["batch_size"], o["epochs"]
    from colearning.learners.keras import KerasLearner, keras

    seed = learner_seed(context)
    model = build_mnist_model(str(o["model"]), seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return KerasLearner(
        model,
        data,
        epochs=epochs,
        batch_size=batch_size,
        vote_metric="loss",
        test_metric="accuracy",
        seed=seed,
    )


TASK = register_task(
    Task(
        name="mnist-keras",
        description="5,000 MNIST digits (28x28, 10 classes), small convolutional network "
        "(Keras 3 on PyTorch)",
        extra="keras",
        load_dataset=_load,
        make_learner=_make_learner,
        metric="accuracy",
        higher_is_better=True,
        defaults={"learners": 5, "rounds": 20, "partition": "dirichlet:0.5", "vote_threshold": 0.5},
        params=dict(_PARAMS),
        check_options=_options,
    )
)
