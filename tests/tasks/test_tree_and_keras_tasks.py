"""The tree and Keras tasks: registration, options, and short real runs."""

import importlib
import subprocess
import sys

import numpy as np
import pytest

from colearning.core.exceptions import ConfigError
from colearning.data import partition_dataset
from colearning.tasks.registry import BuildContext, Task, get_task, list_tasks
from colearning.testing import check_learner

# The lead lists these modules in registry._BUILTIN_MODULES; importing them here keeps
# the tests independent of that list.
importlib.import_module("colearning.tasks.tree_tasks")

TREE_TASKS = {
    "breast-cancer-xgb": ("xgboost", "accuracy", True),
    "diabetes-xgb": ("xgboost", "rmse", False),
    "iris-forest": ("sklearn", "accuracy", True),
}


def test_tree_tasks_are_registered_with_their_metrics():
    names = {t.name for t in list_tasks()}
    assert set(TREE_TASKS) <= names
    for name, (extra, metric, higher) in TREE_TASKS.items():
        task = get_task(name)
        assert isinstance(task, Task)
        assert (task.extra, task.metric, task.higher_is_better) == (extra, metric, higher)
        assert task.defaults["rounds"] == 10
    assert get_task("iris-forest").defaults["learners"] == 3


def test_task_modules_do_not_import_frameworks():
    code = (
        "import sys; import colearning.tasks.tree_tasks, colearning.tasks.keras_tasks; "
        "bad = [m for m in ('xgboost', 'sklearn', 'keras', 'torch', 'skops') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_unknown_option_is_refused():
    task = get_task("breast-cancer-xgb")
    dataset = task.load_dataset(None, {})
    part = partition_dataset(dataset, 2, "iid", seed=0)[0]
    with pytest.raises(ConfigError, match="max_dpth"):
        task.make_learner(part, BuildContext(0, 0, dataset, params={"max_dpth": 3}))


@pytest.mark.parametrize("name", sorted(TREE_TASKS))
def test_tree_task_runs_and_improves(name):
    from colearning import Experiment

    task = get_task(name)
    dataset = task.load_dataset(None, {})
    parts = partition_dataset(dataset, 3, "iid", seed=0)
    learners = [task.make_learner(p, BuildContext(0, i, dataset)) for i, p in enumerate(parts)]
    check_learner(learners[0])
    with Experiment(learners) as experiment:
        initial = experiment.current_weights
        result = experiment.run(rounds=3)
    assert sum(r.accepted for r in result.rounds) >= 1
    judge = task.make_learner(parts[0], BuildContext(0, -1, dataset))
    before = judge.mli_test_weights(initial).test_score
    after = judge.mli_test_weights(result.final_weights).test_score
    assert after is not None and before is not None
    assert after <= before if not task.higher_is_better else after >= before


def test_learners_of_one_task_get_different_seeds():
    task = get_task("breast-cancer-xgb")
    dataset = task.load_dataset(None, {})
    part = partition_dataset(dataset, 2, "iid", seed=0)[0]
    a = task.make_learner(part, BuildContext(0, 0, dataset))
    b = task.make_learner(part, BuildContext(0, 1, dataset))
    c = task.make_learner(part, BuildContext(0, 0, dataset))
    assert a.seed != b.seed and a.seed == c.seed


def test_mnist_keras_task():
    import torch

    importlib.import_module("colearning.tasks.keras_tasks")
    task = get_task("mnist-keras")
    assert (task.extra, task.metric, task.defaults["rounds"]) == ("keras", "accuracy", 20)
    dataset = task.load_dataset(None, {})
    # a small share keeps this quick: 500 rows
    part = partition_dataset(dataset, 10, "iid", seed=0)[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        learner = task.make_learner(part, BuildContext(0, 0, dataset, params={"model": "dense"}))
        assert learner.vote_metric == "loss" and learner.test_metric == "accuracy"
        check_learner(learner)
        verdict = learner.mli_test_weights(learner.mli_propose_weights())
        assert verdict.vote is True and 0.0 <= verdict.test_score <= 1.0
        conv = task.make_learner(part, BuildContext(0, 1, dataset))
        assert any("conv2d" in n for n in conv.names)
        with pytest.raises(ConfigError, match="model"):
            task.make_learner(part, BuildContext(0, 0, dataset, params={"model": "rnn"}))
    finally:
        torch.set_num_threads(threads)
    assert np.isfinite(verdict.vote_score)
