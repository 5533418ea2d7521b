"""The bundled torch tasks: registration, data, models, learners that learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colearning import ConfigError, DataError, Experiment
from colearning.data.cifar import write_cifar_batches
from colearning.data.idx import write_idx
from colearning.data.partition import partition_dataset
from colearning.data.types import Dataset, LearnerData
from colearning.learners.torch import TorchLearner
from colearning.tasks import torch_tasks
from colearning.tasks.registry import BuildContext, get_task

NAMES = ("mnist-cnn", "mnist-cnn-dp", "cifar10-cnn", "cifar10-resnet18")


def context(dataset: Dataset, index: int = 0, seed: int = 0, **params) -> BuildContext:
    return BuildContext(seed=seed, learner_index=index, dataset=dataset, params=params)


def fake_cifar(path, n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    return write_cifar_batches(path, X, rng.integers(0, 10, n))


def test_tasks_are_registered_with_their_extras_and_defaults():
    for name in NAMES:
        task = get_task(name)
        assert task.extra == ("privacy" if name.endswith("-dp") else "torch")
        assert task.metric == "accuracy" and task.higher_is_better
        assert task.defaults["learners"] == 5 and task.defaults["rounds"] == 20
        assert task.defaults["partition"] == "dirichlet:0.5"
        assert {"epochs", "batch_size", "lr", "device", "num_batches"} <= set(task.params)
    assert {"epsilon", "delta", "max_grad_norm", "noise_multiplier"} <= set(
        get_task("mnist-cnn-dp").params
    )
    assert get_task("mnist-cnn-dp").params["epsilon"] == 8.0


# -- data ----------------------------------------------------------------------------------


def test_mnist_is_the_bundled_digits_as_images():
    ds = get_task("mnist-cnn").load_dataset(None, {})
    assert ds.X.shape == (5000, 1, 28, 28) and ds.X.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.classes.tolist() == list(range(10))


def test_mnist_from_idx_files_in_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (7, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(7, dtype=np.uint8))
    ds = get_task("mnist-cnn").load_dataset(tmp_path, {})
    assert ds.X.shape == (7, 1, 28, 28) and ds.y.tolist() == list(range(7))
    with pytest.raises(DataError, match="t10k|train-images"):
        get_task("mnist-cnn").load_dataset(tmp_path / "missing", {})


def test_cifar_tasks_need_a_data_dir(tmp_path):
    for name in ("cifar10-cnn", "cifar10-resnet18"):
        with pytest.raises(DataError, match="--data-dir"):
            get_task(name).load_dataset(None, {})
        with pytest.raises(DataError, match="no CIFAR-10 batch files"):
            get_task(name).load_dataset(tmp_path, {})
    fake_cifar(tmp_path / "cifar-10-batches-bin")
    ds = get_task("cifar10-cnn").load_dataset(tmp_path, {})
    assert ds.X.shape == (60, 3, 32, 32) and ds.X.max() <= 1.0


# -- models ----------------------------------------------------------------------------------


def test_resnet18_shape_size_and_weights():
    model = torch_tasks.resnet18().eval()
    n_params = sum(p.numel() for p in model.parameters())
    assert 11_100_000 < n_params < 11_200_000
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    names = list(model.state_dict())
    assert "bn1.running_mean" in names and "layer2.0.shortcut.0.weight" in names
    assert not any("normalize" in n for n in names)  # fixed constants are not weights


def test_cnns_take_their_inputs():
    with torch.no_grad():
        assert torch_tasks.mnist_cnn()(torch.rand(3, 1, 28, 28)).shape == (3, 10)
        assert torch_tasks.cifar10_cnn()(torch.rand(3, 3, 32, 32)).shape == (3, 10)


# -- learners --------------------------------------------------------------------------------


def _mnist_parts(n_learners: int = 2, rows: int = 1000) -> tuple[Dataset, list[LearnerData]]:
    full = get_task("mnist-cnn").load_dataset(None, {})
    pick = np.random.default_rng(0).permutation(len(full))[:rows]
    ds = Dataset("mnist", full.X[pick], full.y[pick], classes=full.classes)
    return ds, partition_dataset(ds, n_learners, "iid", seed=0)


def test_learners_share_the_initial_model_and_not_their_seeds():
    ds, parts = _mnist_parts()
    make = get_task("mnist-cnn").make_learner
    a, b = make(parts[0], context(ds, 0)), make(parts[1], context(ds, 1))
    again = make(parts[0], context(ds, 0))
    assert isinstance(a, TorchLearner)
    assert a.mli_get_current_weights() == b.mli_get_current_weights()
    assert a.seed != b.seed and a.seed == again.seed
    a.mli_set_round(1)
    again.mli_set_round(1)
    assert a.mli_propose_weights() == again.mli_propose_weights()
    other_run = make(parts[0], context(ds, 0, seed=1))
    assert other_run.mli_get_current_weights() != a.mli_get_current_weights()


def test_mnist_cnn_learner_improves_test_accuracy():
    ds, parts = _mnist_parts(n_learners=1, rows=1000)
    learner = get_task("mnist-cnn").make_learner(parts[0], context(ds))
    initial = learner.mli_get_current_weights()
    before = learner.mli_test_weights(initial).test_score
    with Experiment([learner]) as alone:
        final = alone.run(rounds=3).final_weights
    after = learner.mli_test_weights(final).test_score
    assert before < 0.2 and after > 0.75


def test_dp_task_builds_private_learners():
    from colearning.privacy import DPTorchLearner

    ds, parts = _mnist_parts(rows=1000)
    make = get_task("mnist-cnn-dp").make_learner
    learner = make(parts[0], context(ds, epsilon=5.0, secret_noise=False, num_batches=2))
    assert isinstance(learner, DPTorchLearner)
    assert learner.privacy.target_epsilon == 5.0 and learner.steps_per_proposal == 2
    summary = learner.mli_propose_weights().training_summary
    assert 0 < summary.dp_budget.consumed_epsilon <= 5.0
    twin = make(parts[0], context(ds, epsilon=5.0, secret_noise=False, num_batches=2))
    learner.mli_set_round(5)
    twin.mli_set_round(5)
    assert twin.mli_propose_weights() == learner.mli_propose_weights()  # noise_seed given
    secret = make(parts[0], context(ds, num_batches=2))
    assert secret.privacy.noise_seed is None


def test_dp_task_planned_proposals_derive_the_noise():
    ds, parts = _mnist_parts(rows=1000)
    make = get_task("mnist-cnn-dp").make_learner
    fixed = make(parts[0], context(ds, epsilon=2.0))
    planned = make(parts[0], context(ds, epsilon=2.0, planned_proposals=3))
    assert fixed.budget.affordable_proposals() < 3  # the default noise is too little
    assert planned.budget.affordable_proposals() == 3
    assert planned.noise_multiplier > fixed.noise_multiplier


def test_resnet18_learner_proposes_and_votes(tmp_path):
    ds = get_task("cifar10-resnet18").load_dataset(fake_cifar(tmp_path, n=30), {})
    parts = partition_dataset(ds, 1, "iid", seed=0)
    learner = get_task("cifar10-resnet18").make_learner(
        parts[0], context(ds, batch_size=4, num_batches=1)
    )
    proposal = learner.mli_propose_weights()
    assert "layer4.1.bn2.running_var" in proposal.arrays
    verdict = learner.mli_test_weights(proposal)
    assert isinstance(verdict.vote, bool) and verdict.test_score is not None


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"lr": -1}, "lr must be a number > 0"),
        ({"device": 3}, "device must be 'cpu' or 'cuda'"),
        ({"colour": "red"}, "has no option 'colour'"),
        ({"vote_metric": "f1"}, "vote_metric must be"),
    ],
)
def test_bad_task_options_are_config_errors(params, match):
    ds = Dataset("toy", np.zeros((30, 1, 28, 28), np.float32), np.arange(30) % 10)
    parts = partition_dataset(ds, 1, "iid", seed=0)
    with pytest.raises(ConfigError, match=match):
        get_task("mnist-cnn").make_learner(parts[0], context(ds, **params))


def test_dp_task_option_errors():
    ds = Dataset("toy", np.zeros((30, 1, 28, 28), np.float32), np.arange(30) % 10)
    parts = partition_dataset(ds, 1, "iid", seed=0)
    make = get_task("mnist-cnn-dp").make_learner
    with pytest.raises(ConfigError, match="secret_noise must be true or false"):
        make(parts[0], context(ds, secret_noise="no"))
    with pytest.raises(ConfigError, match="epsilon must be a number > 0"):
        make(parts[0], context(ds, epsilon=0))
    with pytest.raises(ConfigError, match=r"option delta must be a number in \(0, 1\)"):
        make(parts[0], context(ds, delta=2.0))
