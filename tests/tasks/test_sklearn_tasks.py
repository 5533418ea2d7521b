"""The bundled scikit-learn tasks: registration, options, seeds, and real experiments."""

import subprocess
import sys

import numpy as np
import pytest

from colearning import Experiment, ExperimentStore
from colearning.core.exceptions import ConfigError
from colearning.data import partition_dataset, pool_data
from colearning.learners.sklearn import SKLearnLearner
from colearning.tasks.options import learner_seed
from colearning.tasks.registry import BuildContext, get_task, list_tasks
from colearning.testing import check_learner

NAMES = ["breast-cancer-sgd", "digits-mlp", "digits-sgd", "mnist-mlp", "wine-mlp"]
DATASETS = {
    "breast-cancer-sgd": "breast-cancer",
    "digits-mlp": "digits",
    "digits-sgd": "digits",
    "mnist-mlp": "mnist-small",
    "wine-mlp": "wine",
}


@pytest.fixture(scope="module")
def digits_task():
    task = get_task("digits-mlp")
    return task, task.load_dataset(None, {})


def build(task, dataset, parts, seed=0, params=None):
    params = params or {}
    learners = [
        task.make_learner(p, BuildContext(seed, i, dataset, params=params))
        for i, p in enumerate(parts)
    ]
    judge = task.make_learner(pool_data(parts), BuildContext(seed, -1, dataset, params=params))
    return learners, judge


def test_the_tasks_are_registered():
    names = {t.name for t in list_tasks()}
    assert set(NAMES) <= names
    for name in NAMES:
        task = get_task(name)
        assert task.extra == "sklearn"
        assert task.metric == "accuracy" and task.higher_is_better
        assert task.defaults == {
            "learners": 5,
            "rounds": 20,
            "partition": "dirichlet:0.5",
            "vote_threshold": 0.5,
        }
        assert "epochs" in task.params and "learning_rate" in task.params
        assert task.description


def test_importing_the_tasks_imports_no_ml_framework():
    code = (
        "import sys, colearning.tasks.registry as r; r.list_tasks(); "
        "bad = [m for m in ('sklearn', 'mlxtend', 'scipy', 'skl2onnx') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", NAMES)
def test_each_task_builds_learners_that_keep_the_contract(name):
    task = get_task(name)
    dataset = task.load_dataset(None, {})
    assert dataset.name == DATASETS[name]
    data = partition_dataset(dataset, 3, "iid", seed=0)[0]
    learner = task.make_learner(data, BuildContext(0, 0, dataset, params={"epochs": 1}))
    assert isinstance(learner, SKLearnLearner)  # votes on log loss, tests on accuracy
    assert (learner.vote_metric, learner.test_metric) == ("log_loss", "accuracy")
    check_learner(learner)


def test_votes_are_on_log_loss_and_test_scores_are_accuracy_by_default(digits_task):
    task, dataset = digits_task
    data = partition_dataset(dataset, 3, "iid", seed=0)[0]
    learner = task.make_learner(data, BuildContext(0, 0, dataset))
    assert learner.vote_metric == "log_loss" and task.params["vote_metric"] == "log_loss"
    learner.mli_set_round(0)
    verdict = learner.mli_test_weights(learner.mli_propose_weights())
    rows = len(data.test[1])
    assert verdict.test_score * rows == pytest.approx(round(verdict.test_score * rows))
    assert verdict.vote_score > 0  # a loss, not a share of rows right
    assert verdict.vote_score < learner.current_vote_score()  # one proposal lowers it
    assert verdict.vote is True


def test_vote_metric_accuracy_is_taken_and_a_typo_is_refused(digits_task):
    task, dataset = digits_task
    data = partition_dataset(dataset, 3, "iid", seed=0)[0]
    plain = task.make_learner(data, BuildContext(0, 0, dataset, params={"vote_metric": "accuracy"}))
    assert isinstance(plain, SKLearnLearner) and plain.vote_metric == "accuracy"
    with pytest.raises(ConfigError, match="vote_metric must be one of log_loss.*got 'rmse'"):
        task.make_learner(data, BuildContext(0, 0, dataset, params={"vote_metric": "rmse"}))


def test_vote_metric_calibrated_log_loss_is_taken_and_a_misspelling_named(digits_task):
    task, dataset = digits_task
    data = partition_dataset(dataset, 3, "iid", seed=0)[0]
    context = BuildContext(0, 0, dataset, params={"vote_metric": "calibrated_log_loss"})
    learner = task.make_learner(data, context)
    assert learner.vote_metric == "calibrated_log_loss" and not learner.higher_is_better
    plain = task.make_learner(data, BuildContext(0, 0, dataset))
    # the same model: the calibrated loss is the plain one at best
    assert 0 < learner.current_vote_score() <= plain.current_vote_score()
    learner.mli_set_round(0)
    assert learner.mli_test_weights(learner.mli_propose_weights()).vote is True
    with pytest.raises(ConfigError, match="calibrated_log_loss; got 'calibrated_logloss'"):
        task.make_learner(
            data, BuildContext(0, 0, dataset, params={"vote_metric": "calibrated_logloss"})
        )


def test_learner_seeds_follow_seed_and_index(digits_task):
    task, dataset = digits_task
    ctx = [BuildContext(s, i, dataset) for s, i in [(0, 0), (0, 0), (0, 1), (1, 0), (0, -1)]]
    seeds = [learner_seed(c) for c in ctx]
    assert seeds[0] == seeds[1]
    assert len(set(seeds[1:])) == 4
    data = partition_dataset(dataset, 2, "iid", seed=0)[0]
    weights = [task.make_learner(data, c).mli_get_current_weights() for c in ctx[:3]]
    assert weights[0] == weights[1]
    assert weights[0] != weights[2]
    with pytest.raises(ConfigError, match="seed must be an integer >= 0; got -1"):
        learner_seed(BuildContext(-1, 0, dataset))


@pytest.mark.parametrize(
    ("params", "shapes"),
    [
        ({"hidden": 32}, [(64, 32), (32, 10)]),
        ({"hidden": [32, 16]}, [(64, 32), (32, 16), (16, 10)]),
        ({"hidden": "24, 12"}, [(64, 24), (24, 12), (12, 10)]),
    ],
)
def test_hidden_layers_option(digits_task, params, shapes):
    task, dataset = digits_task
    data = partition_dataset(dataset, 2, "iid", seed=0)[0]
    learner = task.make_learner(data, BuildContext(0, 0, dataset, params=params))
    arrays = learner.mli_get_current_weights().arrays
    assert [a.shape for k, a in arrays.items() if k.startswith("coefs_")] == shapes


def test_epochs_and_learning_rate_options_change_the_proposal(digits_task):
    task, dataset = digits_task
    data = partition_dataset(dataset, 2, "iid", seed=0)[0]

    def proposal(**params):
        learner = task.make_learner(data, BuildContext(0, 0, dataset, params=params))
        assert learner.epochs == params.get("epochs", 5)
        learner.mli_set_round(0)
        return learner.mli_propose_weights()

    base = proposal()
    assert base == proposal()
    assert base != proposal(epochs=2)
    assert base != proposal(learning_rate=0.02)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"epoch": 2}, "task 'digits-mlp' has no option 'epoch'; its options are alpha, "),
        ({"epochs": 0}, "option epochs must be an integer >= 1; got 0"),
        ({"epochs": 1.5}, "option epochs must be an integer >= 1; got 1.5"),
        ({"learning_rate": -1}, "option learning_rate must be a number > 0; got -1"),
        ({"learning_rate": "fast"}, "option learning_rate must be a number > 0; got 'fast'"),
        ({"hidden": [0]}, "option hidden must be an integer >= 1"),
        ({"hidden": "big"}, "option hidden must be 1 to 64 layer sizes >= 1"),
    ],
)
def test_bad_options_are_config_errors(digits_task, params, match):
    task, dataset = digits_task
    data = partition_dataset(dataset, 2, "iid", seed=0)[0]
    with pytest.raises(ConfigError, match=match):
        task.make_learner(data, BuildContext(0, 0, dataset, params=params))


def test_sgd_task_options(digits_task):
    task = get_task("digits-sgd")
    _, dataset = digits_task
    data = partition_dataset(dataset, 2, "iid", seed=0)[0]
    with pytest.raises(ConfigError, match="has no option 'hidden'"):
        task.make_learner(data, BuildContext(0, 0, dataset, params={"hidden": 8}))
    learner = task.make_learner(data, BuildContext(0, 0, dataset, params={"epochs": 2}))
    assert list(learner.mli_get_current_weights()) == ["coef_", "intercept_"]


def test_a_short_experiment_improves_the_model(digits_task):
    task, dataset = digits_task
    parts = partition_dataset(dataset, 3, "iid", seed=0)
    learners, judge = build(task, dataset, parts)
    with Experiment(learners) as experiment:
        initial = judge.mli_test_weights(experiment.current_weights).test_score
        result = experiment.run(rounds=3)
    final = judge.mli_test_weights(result.final_weights).test_score
    assert any(r.accepted for r in result.rounds)
    assert initial < 0.3  # an untrained 10-class model
    assert final > initial + 0.3
    # every learner ended with the shared model
    assert all(lr.mli_get_current_weights() == result.final_weights for lr in learners)


def test_a_resumed_experiment_ends_with_the_uninterrupted_model(digits_task, tmp_path):
    task, dataset = digits_task
    parts = partition_dataset(dataset, 3, "dirichlet:0.5", seed=1)
    ids = [f"learner-{i}" for i in range(3)]
    params = {"epochs": 2}

    def experiment(store):
        return Experiment(build(task, dataset, parts, params=params)[0], store=store)

    with experiment(ExperimentStore.create(tmp_path / "full", {}, ids)) as full:
        expected = full.run(rounds=6)
    with experiment(ExperimentStore.create(tmp_path / "cut", {}, ids)) as first:
        first.run(rounds=3)
    # fresh learners, as in a new process after a crash
    with experiment(ExperimentStore.open(tmp_path / "cut")) as resumed:
        assert resumed.next_round == 3
        result = resumed.run(rounds=6)
    assert sum(r.accepted for r in expected.rounds) >= 2
    assert [r.status for r in result.rounds] == [r.status for r in expected.rounds]
    assert result.final_weights_id == expected.final_weights_id


def test_the_experiment_is_reproducible(digits_task):
    task, dataset = digits_task
    parts = partition_dataset(dataset, 3, "iid", seed=2)
    runs = []
    for _ in range(2):
        with Experiment(build(task, dataset, parts, seed=2)[0]) as experiment:
            runs.append(experiment.run(rounds=3).final_weights_id)
    assert runs[0] == runs[1]
    assert np.unique(runs).size == 1
