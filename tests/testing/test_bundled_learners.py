"""Every bundled learner passes the conformance suite and declares the tags it should.

One test per (learner, applicable check), each on a new learner, on small data sets.
This module needs every extra (``pip install 'colearning[all]'``, as ``scripts/setup``
installs): a missing framework is a collection error here, not a skip.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable

import pytest
import torch
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from torch import nn

from colearning import LearnerTags, MachineLearningInterface
from colearning.data import Dataset, LearnerData, load_dataset, partition_dataset
from colearning.learners.forest import RandomForestLearner
from colearning.learners.keras import KerasLearner, keras
from colearning.learners.sklearn import SKLearnLearner
from colearning.learners.softmax import SoftmaxLearner
from colearning.learners.torch import TorchLearner
from colearning.learners.xgboost import XGBoostLearner
from colearning.privacy import DPConfig, DPTorchLearner
from colearning.testing import parametrize_with_checks
from colearning.testing.checks import check_no_self_approval

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")


@functools.cache
def dataset(name: str) -> Dataset:
    return load_dataset(name)


@functools.cache
def part(name: str) -> LearnerData:
    return partition_dataset(dataset(name), 3, "iid", seed=0)[0]


def digits_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def digits_cnn(seed: int = 0) -> nn.Module:
    """Conv + BatchNorm (buffers travel as weights) + dropout (draws random numbers)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(3 * 6 * 6, 10),
    )


def keras_mlp() -> KerasLearner:
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(
                16, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(0)
            ),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(
                10, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(1)
            ),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return KerasLearner(model, part("digits"), seed=0)


XGB_PARAMS = {"max_depth": 2, "eta": 0.3, "subsample": 0.8}

#: label -> (a factory building a new learner, the tags it must declare)
BUNDLED: dict[str, tuple[Callable[[], MachineLearningInterface], LearnerTags]] = {
    "SKLearnLearner(MLPClassifier)": (
        lambda: SKLearnLearner(
            MLPClassifier(hidden_layer_sizes=(16,), batch_size=32, learning_rate_init=0.01),
            part("digits"),
            classes=dataset("digits").classes,
            seed=0,
        ),
        LearnerTags(deterministic=True, exports_model=True),
    ),
    "SKLearnLearner(MLPRegressor)": (
        lambda: SKLearnLearner(MLPRegressor(hidden_layer_sizes=(8,)), part("diabetes"), seed=0),
        LearnerTags(deterministic=True, exports_model=True),
    ),
    "SKLearnLearner(SGDClassifier)": (
        lambda: SKLearnLearner(
            SGDClassifier(loss="log_loss"),
            part("digits"),
            classes=dataset("digits").classes,
            seed=0,
        ),
        LearnerTags(deterministic=True, exports_model=True),
    ),
    "SoftmaxLearner": (
        lambda: SoftmaxLearner(part("digits"), classes=dataset("digits").classes, seed=0),
        LearnerTags(deterministic=True, exports_model=True),
    ),
    "TorchLearner": (
        lambda: TorchLearner(digits_cnn(), part("digits"), batch_size=32),
        LearnerTags(deterministic=True, exports_model=True),
    ),
    "KerasLearner": (keras_mlp, LearnerTags(deterministic=True, exports_model=True)),
    "XGBoostLearner(classifier)": (
        lambda: XGBoostLearner(
            XGB_PARAMS,
            part("breast-cancer"),
            classes=dataset("breast-cancer").classes,
            rounds_per_proposal=3,
        ),
        LearnerTags(deterministic=True, exports_model=True, encoded_model=True),
    ),
    "XGBoostLearner(regressor)": (
        lambda: XGBoostLearner(XGB_PARAMS, part("diabetes"), rounds_per_proposal=2),
        LearnerTags(deterministic=True, exports_model=True, encoded_model=True),
    ),
    "RandomForestLearner": (
        lambda: RandomForestLearner(
            part("iris"), classes=dataset("iris").classes, trees_per_proposal=3, max_depth=3
        ),
        LearnerTags(deterministic=True, exports_model=True, encoded_model=True),
    ),
    "DPTorchLearner": (
        lambda: DPTorchLearner(
            digits_mlp(),
            part("digits"),
            privacy=DPConfig(target_epsilon=50.0, noise_multiplier=1.0, noise_seed=0),
            batch_size=32,
        ),
        # deterministic because its noise is seeded (noise_seed=0)
        LearnerTags(deterministic=True, exports_model=True, restores_progress=True, private=True),
    ),
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Two test workers share a small machine; torch's own thread pool on top of them
    # oversubscribes it.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@parametrize_with_checks({label: factory for label, (factory, _) in BUNDLED.items()})
def test_bundled_learner(learner, check):
    check(learner)


@pytest.mark.parametrize("label", list(BUNDLED))
def test_bundled_learner_declares_its_tags(label):
    factory, expected = BUNDLED[label]
    declared = factory().mli_tags()
    assert declared == expected, f"{label}.mli_tags() is {declared}; expected {expected}"


def bundled_learner_classes() -> set[str]:
    """Every concrete learner class defined in colearning.learners and colearning.privacy."""
    import colearning.learners
    import colearning.privacy

    found = set()
    for package in (colearning.learners, colearning.privacy):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for cls in vars(module).values():
                if (
                    inspect.isclass(cls)
                    and issubclass(cls, MachineLearningInterface)
                    and cls.__module__ == module.__name__
                    and not inspect.isabstract(cls)
                ):
                    found.add(cls.__name__)
    return found


def test_every_bundled_learner_class_is_covered():
    covered = {type(factory()).__name__ for factory, _ in BUNDLED.values()}
    assert covered == bundled_learner_classes()


@pytest.mark.parametrize("share", [0, 1, 2])
@pytest.mark.parametrize("hidden", [(8,), (16,), (32,), (64, 32)], ids=str)
def test_sklearn_mlp_regressors_never_approve_themselves(hidden, share):
    """The BLAS case: scoring the vote split alone and stacked with the test split
    runs matrix products of different sizes, whose sums can differ in the last bits;
    over a few widths and shares of the data some MLP regressors meet it."""
    data = partition_dataset(dataset("diabetes"), 3, "iid", seed=0)[share]
    learner = SKLearnLearner(MLPRegressor(hidden_layer_sizes=hidden), data, seed=0)
    check_no_self_approval(learner)
