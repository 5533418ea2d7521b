"""The suite's machinery: which checks a learner's tags select, and parametrize_with_checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from colearning import LearnerTags, LearnerWrapper
from colearning.core.exceptions import ConfigTypeError
from colearning.testing import (
    LearnerContractError,
    QuadraticLearner,
    learner_checks,
    parametrize_with_checks,
)
from colearning.testing import checks as checks_module

ALWAYS = [
    "check_current_weights",
    "check_propose_keeps_current",
    "check_proposal_fits",
    "check_test_keeps_current",
    "check_verdict",
    "check_no_self_approval",
    "check_accept_installs_weights",
    "check_test_refuses_garbage",
    "check_accept_refuses_garbage",
]


class Declares(QuadraticLearner):
    def __init__(self, tags: LearnerTags, **kw):
        super().__init__(target=[1.0, 2.0], **kw)
        self.tags = tags

    def mli_tags(self):
        return self.tags


@pytest.mark.parametrize(
    ("tags", "added"),
    [
        (LearnerTags(), []),
        (LearnerTags(encoded_model=True), ["check_encoded_model"]),
        (
            LearnerTags(deterministic=True),
            ["check_proposals_are_deterministic", "check_proposals_depend_on_round"],
        ),
        (LearnerTags(exports_model=True), ["check_exports_model"]),
        (LearnerTags(restores_progress=True), ["check_restores_progress"]),
        (LearnerTags(private=True), ["check_privacy_budget"]),
    ],
    ids=["none", "encoded_model", "deterministic", "exports_model", "restores_progress", "private"],
)
def test_each_tag_selects_its_checks(tags, added):
    names = [name for name, _ in learner_checks(Declares(tags))]
    assert sorted(names) == sorted(ALWAYS + added)


def test_all_tags_select_every_check_once_in_a_fixed_order():
    every = LearnerTags(True, True, True, True, True)
    names = [name for name, _ in learner_checks(Declares(every))]
    public = [n for n in checks_module.__all__ if n.startswith("check_")]
    assert sorted(names) == sorted(public) and len(set(names)) == len(names)
    # the checks that feed a learner bad weights come last: it may not recover
    assert names[-2:] == ["check_test_refuses_garbage", "check_accept_refuses_garbage"]
    for name, check in learner_checks(Declares(every)):
        assert check is getattr(checks_module, name)


def test_a_wrapper_declares_the_inner_learners_tags():
    tags = LearnerTags(private=True)
    assert (
        dict(learner_checks(LearnerWrapper(Declares(tags)))).keys()
        == dict(learner_checks(Declares(tags))).keys()
    )


def test_the_checks_given_for_a_round_index_propose_at_it():
    class Records(QuadraticLearner):
        rounds: list[int]

        def mli_set_round(self, round_index):
            self.rounds = [*getattr(self, "rounds", []), round_index]
            super().mli_set_round(round_index)

    checks = dict(learner_checks(Records(target=[1.0]), round_index=4))
    learner = Records(target=[1.0])
    checks["check_proposals_depend_on_round"](learner)
    assert learner.rounds == [4, 5]


def test_tags_that_are_not_learner_tags_are_refused():
    with pytest.raises(LearnerContractError, match="mli_tags\\(\\) returned str"):
        list(learner_checks(Declares("deterministic")))  # type: ignore[arg-type]


# -- parametrize_with_checks ----------------------------------------------------------------

BUILT: list[QuadraticLearner] = []


def counted() -> QuadraticLearner:
    learner = QuadraticLearner(target=[1.0, 2.0])
    BUILT.append(learner)
    return learner


@parametrize_with_checks(
    {
        "QuadraticLearner": lambda: QuadraticLearner(target=[1.0, 2.0]),
        "Wrapped": lambda: LearnerWrapper(QuadraticLearner(target=[3.0], seed=1)),
        "Declares": lambda: Declares(LearnerTags(deterministic=True, exports_model=True)),
    }
)
def test_reference_learners_pass_every_check(learner, check):
    check(learner)


@parametrize_with_checks([counted], round_index=2)
def test_each_check_gets_a_new_learner(learner, check):
    assert learner is BUILT[-1]  # built for this test, just now
    assert BUILT.count(learner) == 1
    check(learner)


def ids_of(test) -> list[str]:
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return [param.id for param in mark.args[1]]


def test_ids_read_label_then_check():
    @parametrize_with_checks({"Mine": lambda: Declares(LearnerTags(private=True))})
    def test_mine(learner, check):
        check(learner)

    assert ids_of(test_mine) == [f"Mine-{name}" for name in ALWAYS[:7]] + [
        "Mine-check_privacy_budget",
        "Mine-check_test_refuses_garbage",
        "Mine-check_accept_refuses_garbage",
    ]


def test_without_labels_the_class_name_is_the_label_and_repeats_are_numbered():
    @parametrize_with_checks(
        [lambda: QuadraticLearner(target=[1.0]), lambda: QuadraticLearner(target=[2.0])]
    )
    def test_two(learner, check):
        check(learner)

    ids = ids_of(test_two)
    assert "QuadraticLearner-check_propose_keeps_current" in ids
    assert "QuadraticLearner_2-check_propose_keeps_current" in ids
    assert len(ids) == len(set(ids)) == 2 * 12


def test_the_test_still_runs_its_own_body_with_a_new_learner():
    seen = []

    @parametrize_with_checks({"Q": lambda: QuadraticLearner(target=[1.0])})
    def test_body(learner, check):
        seen.append((learner, check))

    mark = test_body.pytestmark[0]
    fresh, check = mark.args[1][0].values
    test_body(learner=fresh, check=check)
    test_body(learner=fresh, check=check)
    assert isinstance(seen[0][0], QuadraticLearner) and seen[0][0] is not seen[1][0]
    assert seen[0][1] is checks_module.check_current_weights


def test_a_learner_instead_of_a_factory_is_refused_with_the_fix():
    with pytest.raises(ConfigTypeError, match="pass e.g. lambda: MyLearner"):
        parametrize_with_checks([QuadraticLearner(target=[1.0])])  # type: ignore[list-item]


def test_a_factory_that_builds_something_else_is_refused():
    with pytest.raises(ConfigTypeError, match="a learner factory returned str"):
        parametrize_with_checks([lambda: "not a learner"])  # type: ignore[list-item]


def test_a_test_without_learner_and_check_is_refused():
    decorate = parametrize_with_checks([lambda: QuadraticLearner(target=[1.0])])
    with pytest.raises(
        ConfigTypeError, match="takes \\(learner, check\\); test_x takes \\(l, c\\)"
    ):

        @decorate
        def test_x(l, c):  # noqa: E741
            pass


def test_colearning_testing_imports_without_pytest():
    code = (
        "import sys; sys.modules['pytest'] = None\n"  # import pytest now fails
        "import colearning.testing, colearning.testing.checks\n"
        "from colearning.testing import QuadraticLearner, check_learner\n"
        "check_learner(QuadraticLearner(target=[1.0]))\n"
        "try:\n"
        "    colearning.testing.parametrize_with_checks([])\n"
        "except ImportError:\n"
        "    print('needs pytest only when called')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "needs pytest only when called"
