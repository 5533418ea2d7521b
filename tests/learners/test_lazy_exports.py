"""``colearning.learners`` imports no framework; each learner, asked for by name,
imports its own framework and not the others' (each in a fresh interpreter)."""

import subprocess
import sys

import pytest

FRAMEWORKS = ("torch", "sklearn", "xgboost", "keras", "skops", "opacus", "tensorflow")


def loaded_after(statement: str) -> set[str]:
    code = (
        f"import sys; {statement}; print(','.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(filter(None, out.stdout.strip().split(",")))


def test_the_package_and_its_light_modules_import_no_framework():
    statement = (
        "import colearning.learners, colearning.learners.metrics, "
        "colearning.learners._base, colearning.learners._formats"
    )
    assert loaded_after(statement) == set()


@pytest.mark.parametrize(
    ("name", "needs", "never"),
    [
        # scikit-learn itself is imported when a learner is built
        ("SKLearnLearner", set(), {"torch", "xgboost", "keras", "skops"}),
        ("TorchLearner", {"torch"}, {"sklearn", "xgboost", "keras", "skops"}),
        ("KerasLearner", {"keras", "torch"}, {"xgboost", "skops"}),
        ("XGBoostLearner", {"xgboost"}, {"torch", "keras", "skops"}),
        # skops walks scikit-learn's modules to list its types, which may import torch
        ("RandomForestLearner", {"sklearn", "skops"}, {"xgboost", "keras"}),
        ("LearnerBase", set(), set(FRAMEWORKS)),
        ("METRICS", set(), set(FRAMEWORKS)),
    ],
)
def test_each_learner_imports_its_own_framework_only(name, needs, never):
    loaded = loaded_after(f"from colearning.learners import {name}; assert {name} is not None")
    assert needs <= loaded
    assert not (never & loaded)


def test_an_unknown_name_is_an_attribute_error():
    import colearning.learners as learners

    with pytest.raises(AttributeError, match="has no attribute 'SVMLearner'"):
        learners.SVMLearner  # noqa: B018
    assert set(learners.__all__) <= set(dir(learners))


def test_the_lazy_names_are_the_modules_classes():
    import colearning.learners as learners
    from colearning.learners.sklearn import SKLearnLearner

    assert learners.SKLearnLearner is SKLearnLearner
