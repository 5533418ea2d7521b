"""The task runner: config checks, missing extras, baselines, resume rules."""

import numpy as np
import pytest

from colearning import ConfigError, MissingExtraError, StoreError
from colearning.data import Dataset
from colearning.tasks import RunConfig, Task, register_task, resume_task, run_task
from colearning.testing import QuadraticLearner


def _toy_dataset(data_dir, params):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300, 2)) + [3.0, -2.0]).astype(np.float32)
    return Dataset("toy-points", X, (X[:, 0] > 0).astype(np.int64))


def _toy_learner(part, ctx):
    # the learner's private optimum is the mean of its own train points
    return QuadraticLearner(target=part.train[0].mean(axis=0), seed=ctx.learner_index + 1)


TOY = register_task(
    Task(
        name="toy-points",
        description="QuadraticLearner on random points (tests only)",
        extra="numpy",
        load_dataset=_toy_dataset,
        make_learner=_toy_learner,
        metric="neg-mse",
        defaults={"learners": 3, "rounds": 4, "partition": "iid"},
        params={"unused": 1},
    ),
    replace=True,
)


def test_defaults_come_from_the_task():
    config = RunConfig(task="toy-points").resolved()
    assert (config.learners, config.rounds, config.partition) == (3, 4, "iid")
    assert config.params == {"unused": 1}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"learners": 0}, "learners must be a whole number >= 1; got 0"),
        ({"rounds": -1}, "rounds must be a whole number >= 0; got -1"),
        ({"seed": -3}, "seed must be a whole number >= 0; got -3"),
        ({"vote_threshold": 1.01}, "vote_threshold must be in [0, 1]; got 1.01"),
        ({"proposer": "loudest"}, "proposer must be 'round-robin' or 'random'"),
        ({"timeout": -1}, "timeout must be a number of seconds > 0"),
        ({"params": {"typo": 1}}, "has no option 'typo'; its options are: unused"),
        ({"task": "nope"}, "unknown task 'nope'"),
    ],
)
def test_bad_settings_name_the_value(changes, message):
    with pytest.raises(ConfigError) as err:
        RunConfig(**{"task": "toy-points", **changes}).resolved()
    assert message in str(err.value)


def test_unknown_setting_in_a_config_dict():
    with pytest.raises(ConfigError, match="unknown setting 'roundz'"):
        RunConfig.from_dict({"task": "toy-points", "roundz": 3})


def test_missing_extra_names_the_pip_command():
    register_task(
        Task("needs-extra", "x", "definitely_not_installed_pkg", _toy_dataset, _toy_learner),
        replace=True,
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'colearning\[definitely_not"):
        run_task(RunConfig(task="needs-extra"))


def test_summary_has_the_baselines(tmp_path):
    outcome = run_task(RunConfig(task="toy-points", rounds=6), out=tmp_path / "e")
    s = outcome.summary
    assert set(s["individual"]) == {"learner-0", "learner-1", "learner-2"}
    assert s["best_individual"]["score"] == max(s["individual"].values())
    assert s["pooled"]["score"] is not None
    assert s["collective"]["score"] > s["initial"]["score"]
    assert s["rounds"] == 6 and s["accepted"] + s["rejected"] + s["skipped"] == 6


def test_resume_refuses_a_changed_setting_and_allows_more_rounds(tmp_path):
    run_task(RunConfig(task="toy-points", rounds=3, baselines=False), out=tmp_path / "e")
    with pytest.raises(StoreError, match="was run with seed=0; got seed=1"):
        resume_task(tmp_path / "e", RunConfig(task="toy-points", rounds=3, seed=1))
    outcome = resume_task(tmp_path / "e", RunConfig(task="toy-points", rounds=5, baselines=False))
    assert [r.round_index for r in outcome.result.rounds] == [0, 1, 2, 3, 4]
