"""Every task's options are checked before its data set loads."""

import dataclasses

import pytest

from colearning import ConfigError
from colearning.tasks import registry
from colearning.tasks.runner import RunConfig, build

# one bad value per kind of option, for the tasks that have it
BAD = {
    "epochs": [0, -1, 2.5, "two", True, 10**12, 10**400],
    "batch_size": [0, "x", 10**10],
    "learning_rate": [0, -0.1, "fast", float("inf")],
    "lr": [0, float("nan")],
    "hidden": [0, "abc", [64, "x"], 10**11, [1] * 65],
    "alpha": [-1],
    "max_depth": [0, 65],
    "eta": [0],
    "trees_per_proposal": [0, 10**9],
    "rounds_per_proposal": [0],
    "epsilon": [0, -1],
    "delta": [0, 1, "small"],
    "secret_noise": ["no"],
    "planned_proposals": [-1],
    "num_batches": [-1],
    "model": ["resnet"],
}


def cases():
    for task in registry.list_tasks():
        for option, values in BAD.items():
            if option in task.params:
                for value in values:
                    yield pytest.param(
                        task.name, option, value, id=f"{task.name}-{option}={value!r}"
                    )


@pytest.mark.parametrize("task, option, value", list(cases()))
def test_a_bad_option_is_refused_before_the_data_set_loads(monkeypatch, task, option, value):
    original = registry.get_task(task)

    def must_not_load(*args, **kw):
        raise AssertionError(f"{task}: the data set was loaded before its options were checked")

    monkeypatch.setitem(
        registry._TASKS, task, dataclasses.replace(original, load_dataset=must_not_load)
    )
    with pytest.raises(ConfigError, match=f"option {option}"):
        build(RunConfig(task=task, params={option: value}))


def test_every_bundled_task_checks_its_options_early():
    bundled = [
        t for t in registry.list_tasks() if t.make_learner.__module__.startswith("colearning.")
    ]
    assert len(bundled) >= 13
    assert [t.name for t in bundled if t.check_options is None] == []


def test_a_task_option_given_as_a_setting_names_params():
    with pytest.raises(ConfigError, match=r"set it as params\.epochs"):
        RunConfig.from_dict({"task": "digits-mlp", "epochs": 2})
    with pytest.raises(ConfigError, match="settings are:"):
        RunConfig.from_dict({"task": "digits-mlp", "epochz": 2})
