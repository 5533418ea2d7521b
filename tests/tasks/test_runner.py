"""The task runner: config checks, missing extras, baselines, resume rules."""

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colearning import ConfigError, MissingExtraError, StoreError
from colearning.data import Dataset, split_sizes
from colearning.tasks import RunConfig, Task, register_task, resume_task, run_task
from colearning.tasks.runner import MAX_LEARNERS, MAX_ROUNDS, MAX_SEED, MAX_TIMEOUT, build
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


def test_a_split_gives_each_learner_those_shares_and_is_kept_on_resume(tmp_path):
    config = RunConfig(task="toy-points", rounds=2, baselines=False, split="0.4,0.4,0.2")
    setup = build(config)
    for part in setup.parts:
        n = len(part.train[1]) + len(part.vote[1]) + len(part.test[1])
        assert (len(part.train[1]), len(part.vote[1]), len(part.test[1])) == split_sizes(
            n, (0.4, 0.4, 0.2)
        )
    default = build(RunConfig(task="toy-points", baselines=False))
    assert sum(len(p.vote[1]) for p in setup.parts) > sum(len(p.vote[1]) for p in default.parts)
    run_task(config, out=tmp_path / "e")
    with pytest.raises(StoreError, match="was run with split='0.4,0.4,0.2'; got split=None"):
        resume_task(tmp_path / "e", RunConfig(task="toy-points", rounds=3, baselines=False))
    kept = dataclasses.replace(config, rounds=3)
    assert [r.round_index for r in resume_task(tmp_path / "e", kept).result.rounds] == [0, 1, 2]


def test_resume_refuses_a_changed_setting_and_allows_more_rounds(tmp_path):
    run_task(RunConfig(task="toy-points", rounds=3, baselines=False), out=tmp_path / "e")
    with pytest.raises(StoreError, match="was run with seed=0; got seed=1"):
        resume_task(tmp_path / "e", RunConfig(task="toy-points", rounds=3, seed=1))
    outcome = resume_task(tmp_path / "e", RunConfig(task="toy-points", rounds=5, baselines=False))
    assert [r.round_index for r in outcome.result.rounds] == [0, 1, 2, 3, 4]


# -- every setting checked by type and range, before anything runs ------------------------

hostile = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 2, 3, -1, MAX_LEARNERS, MAX_LEARNERS + 1, MAX_SEED, MAX_SEED + 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.5, 1.0, 2.0, 1e-9, MAX_TIMEOUT, MAX_TIMEOUT * 2])
    | st.text(max_size=12)
    | st.sampled_from(["", " ", "iid", "dirichlet:0.5", "shards:2", "round-robin", "random", "no"])
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)
)


def whole(value, low, high):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def expected_valid(c):
    """The rules, written out apart from the code that enforces them."""
    partitions = {"iid", "dirichlet:0.5", "shards:2"}
    return (
        (c["learners"] is None or whole(c["learners"], 1, MAX_LEARNERS))
        and (c["rounds"] is None or whole(c["rounds"], 0, MAX_ROUNDS))
        and whole(c["seed"], 0, MAX_SEED)
        and (
            c["vote_threshold"] is None
            or (number(c["vote_threshold"]) and 0 <= c["vote_threshold"] <= 1)
        )
        and (
            c["partition"] is None
            or (isinstance(c["partition"], str) and c["partition"] in partitions)
        )
        and c["proposer"] in ("round-robin", "random")
        and (
            c["timeout"] is None
            or (
                number(c["timeout"])
                and math.isfinite(c["timeout"])
                and 0 < c["timeout"] <= MAX_TIMEOUT
            )
        )
        and (
            c["data_dir"] is None
            or (isinstance(c["data_dir"], str) and c["data_dir"].strip() != "")
        )
        and isinstance(c["baselines"], bool)
        and (c["split"] is None or valid_split(c["split"]))
    )


def valid_split(text):
    if not isinstance(text, str) or not text.strip():
        return False
    try:
        shares = [float(part) for part in text.split(",")]
    except ValueError:
        return False
    return (
        len(shares) == 3
        and all(math.isfinite(f) and f >= 0.01 for f in shares)
        and math.isclose(sum(shares), 1.0, abs_tol=1e-9)
    )


FIELDS = [
    "learners",
    "rounds",
    "seed",
    "vote_threshold",
    "partition",
    "proposer",
    "timeout",
    "data_dir",
    "baselines",
    "split",
]
VALID = {
    "learners": 3,
    "rounds": 4,
    "seed": 0,
    "vote_threshold": 0.5,
    "partition": "iid",
    "proposer": "round-robin",
    "timeout": None,
    "data_dir": None,
    "baselines": True,
    "split": None,
}


SPLITS = st.sampled_from(
    ["0.6,0.2,0.2", "0.4,0.4,0.2", " 0.5, 0.3, 0.2", "0.5,0.5,0.5", "1,0,0", "0.5,0.5",
     "0.98,0.01,0.01", "0.99,0.005,0.005", "a,b,c", "nan,0.5,0.5", "", " "]
) | hostile  # fmt: skip


PARTITIONS = st.sampled_from(
    ["iid", "dirichlet:0.5", "shards:2", "", " ", "zipf:2", "shards:0", "dirichlet:-1"]
) | hostile.filter(lambda v: not isinstance(v, str))


@settings(max_examples=600, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), hostile, min_size=1, max_size=3),
    partition=PARTITIONS,
    split=SPLITS,
)
def test_every_setting_is_checked_by_type_and_range(changes, partition, split):
    c = {**VALID, **changes}
    if "partition" in changes:
        c["partition"] = partition
    if "split" in changes:
        c["split"] = split
    try:
        config = RunConfig(task="toy-points", **c).resolved()
    except ConfigError as exc:
        assert not expected_valid(c), exc
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert expected_valid(c), c
    json.dumps(config.to_dict(), allow_nan=False)  # storable as it is


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"learners": 10**12}, "learners must be at most 10000; got 1000000000000"),
        ({"timeout": True}, "timeout must be a number of seconds > 0; got True (bool)"),
        ({"baselines": "no"}, "baselines must be true or false; got 'no' (str)"),
        ({"task": ["digits-mlp"]}, "task must be a string; got ['digits-mlp'] (list)"),
        ({"data_dir": 5}, "data_dir must be a string; got 5 (int)"),
        ({"params": 5}, "params must be a table of task options"),
        ({"partition": ""}, "partition must not be empty"),
        ({"seed": 2**64}, "seed must be at most 9223372036854775807"),
        ({"timeout": 1e300}, "timeout must be at most 31536000 seconds"),
        ({"params": {"unused": float("nan")}}, "task option unused must be a number"),
    ],
)
def test_the_settings_the_issue_found_are_refused_naming_the_value(changes, message):
    with pytest.raises(ConfigError) as err:
        RunConfig(**{"task": "toy-points", **changes}).resolved()
    assert message in str(err.value)


def test_more_learners_than_rows_are_refused_before_sharing_out(monkeypatch):
    import importlib

    partition = importlib.import_module("colearning.data.partition")

    def never(*args, **kwargs):
        raise AssertionError("the data set was shared out")

    monkeypatch.setattr(partition, "partition_dataset", never)
    with pytest.raises(
        ConfigError, match="31 learners need at least 310 rows .* has 300; use at most 30"
    ):
        run_task(RunConfig(task="toy-points", learners=31))
    with pytest.raises(
        ConfigError, match=r"3 x 101 shards, more than it has rows; use shards:K with K <= 100"
    ):
        run_task(RunConfig(task="toy-points", partition="shards:101"))


def test_a_bad_out_is_refused_before_the_data_loads(tmp_path):
    loaded = []

    def dataset(data_dir, params):
        loaded.append(1)
        return _toy_dataset(data_dir, params)

    register_task(
        Task("toy-counted", "x", "numpy", dataset, _toy_learner, defaults={"learners": 3}),
        replace=True,
    )
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "e", tmp_path / ("x" * 300), tmp_path / "file"):
        with pytest.raises(StoreError):
            run_task(RunConfig(task="toy-counted", rounds=1), out=out)
    assert loaded == []


# -- resuming ------------------------------------------------------------------------------

register_task(
    Task(
        name="toy-layers",
        description="QuadraticLearner with a tuple option (tests only)",
        extra="numpy",
        load_dataset=_toy_dataset,
        make_learner=_toy_learner,
        defaults={"learners": 3, "rounds": 2, "partition": "iid"},
        params={"hidden": (8, 4), "epochs": 5},
    ),
    replace=True,
)


def test_resume_compares_settings_as_stored(tmp_path):
    run_task(RunConfig(task="toy-layers", baselines=False), out=tmp_path / "e")
    # the stored values, given again: a tuple and the list JSON keeps are the same
    outcome = resume_task(tmp_path / "e", {"params": {"epochs": 5, "hidden": [8, 4]}})
    assert len(outcome.result.rounds) == 2
    outcome = resume_task(tmp_path / "e", RunConfig(task="toy-layers", rounds=3, baselines=False))
    assert len(outcome.result.rounds) == 3
    with pytest.raises(StoreError, match="was run with params.epochs=5; got params.epochs=6"):
        resume_task(tmp_path / "e", {"params": {"epochs": 6}})
    with pytest.raises(StoreError, match="was run with task='toy-layers'; got task='toy-points'"):
        resume_task(tmp_path / "e", {"task": "toy-points"})


def test_resume_refuses_fewer_rounds_than_committed_and_changes_nothing(tmp_path):
    run_task(RunConfig(task="toy-layers", baselines=False), out=tmp_path / "e")
    from colearning.core.store import opened

    with opened(tmp_path / "e") as store:
        before = store.to_json()
    with pytest.raises(ConfigError, match="already holds 2 committed rounds; .* at least 2; got 1"):
        resume_task(tmp_path / "e", {"rounds": 1})
    with opened(tmp_path / "e") as store:
        assert store.to_json() == before
