"""Every rule of the conformance suite fires on a learner that breaks it, and says the fix.

Each broken learner below is a :class:`QuadraticLearner` (or a wrapper of one) that
breaks one rule; ``CASES`` pairs it with the check that must catch it and the words the
message must hold. A test keeps ``CASES`` covering every check.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from colearning import (
    ColearningError,
    ColearnModel,
    DiffPrivBudget,
    ErrorCodes,
    LearnerTags,
    LearnerWrapper,
    MachineLearningInterface,
    ModelFormat,
    ProposedWeights,
    TrainingSummary,
    Weights,
    WeightsError,
    check_weights,
    id_of,
)
from colearning.testing import LearnerContractError, QuadraticLearner, check_learner
from colearning.testing import checks as checks_module

TARGET = [1.0, 2.0]


def tagged(**tags: bool) -> LearnerTags:
    return LearnerTags(**{"deterministic": True, "exports_model": True, **tags})


# -- learners that keep the contract --------------------------------------------------------


class PrivateQuadratic(QuadraticLearner):
    """Spends ``per_proposal`` of an epsilon budget of 1 per proposal; refuses to overspend
    (unless ``overspend``); rebuilds its count on restore."""

    def __init__(self, *args, per_proposal: float = 0.01, overspend: bool = False, **kw):
        super().__init__(*args, **kw)
        self.per_proposal, self.overspend, self.made = per_proposal, overspend, 0

    def budget(self, made: int) -> DiffPrivBudget:
        return DiffPrivBudget(1.0, 1e-5, self.per_proposal * made, 1e-6 * min(made, 1))

    def mli_propose_weights(self):
        if not self.overspend and self.per_proposal * (self.made + 1) > 1.0:
            summary = TrainingSummary(self.budget(self.made), ErrorCodes.DP_BUDGET_EXCEEDED)
            return Weights(self.mli_get_current_weights().arrays, summary)
        self.made += 1
        return Weights(
            super().mli_propose_weights().arrays, TrainingSummary(self.budget(self.made))
        )

    def mli_restore_progress(self, proposals_made):
        self.made = proposals_made

    def mli_tags(self):
        return tagged(restores_progress=True, private=True)


class JSONQuadratic(QuadraticLearner):
    """Its model travels encoded: the vector as JSON text in one uint8 array, whose
    length changes with the numbers. Decoding checks what it reads."""

    def __init__(self, *args, tags: LearnerTags | None = None, **kw):
        super().__init__(*args, **kw)
        self.tags = tags or tagged(encoded_model=True)
        self._weights = self.encode(self._weights.arrays["w"])

    @staticmethod
    def encode(w) -> Weights:
        return Weights({"model": np.frombuffer(json.dumps(list(map(float, w))).encode(), np.uint8)})

    def decode(self, weights: Weights) -> Weights:
        check_weights(weights, self._weights)
        try:
            w = np.array(json.loads(weights.arrays["model"].tobytes()), dtype=float)
        except ValueError as exc:
            raise WeightsError(f"the model bytes are not a JSON list: {exc}") from exc
        if w.shape != self.target.shape or not np.isfinite(w).all():
            raise WeightsError(f"the model must be {len(self.target)} finite numbers")
        return Weights({"w": w})

    def _evaluate(self, weights):
        inner = weights if "w" in weights.arrays else self.decode(weights)
        return super()._evaluate(inner)

    def mli_propose_weights(self):
        current = self.decode(self._weights)
        rng = np.random.default_rng([self.seed, self._round])
        w = current.arrays["w"]
        return self.encode(
            w + self.step * (self.target - w) + self.noise * rng.normal(size=w.shape)
        )

    def mli_test_weights(self, weights):
        score = self._evaluate(self.decode(weights))
        return ProposedWeights(weights, score, score, score > self._score)

    def mli_accept_weights(self, weights):
        self._score = self._evaluate(self.decode(weights))
        self._weights = weights

    def mli_tags(self):
        return self.tags


def lenient(cls: type[QuadraticLearner]) -> type[QuadraticLearner]:
    """``cls`` without QuadraticLearner's checks of incoming weights."""

    class Lenient(cls):  # type: ignore[valid-type,misc]
        def mli_test_weights(self, weights):
            score = self._evaluate(weights)
            return ProposedWeights(weights, score, score, score > self._score)

        def mli_accept_weights(self, weights):
            self._weights = weights
            self._score = self._evaluate(weights)

    Lenient.__name__ = f"Lenient{cls.__name__}"
    return Lenient


# -- learners that break one rule each ------------------------------------------------------

# current weights


class GivesADict(QuadraticLearner):
    def mli_get_current_weights(self):
        return dict(self._weights.arrays)


class HoldsNothing(QuadraticLearner):
    def mli_get_current_weights(self):
        return Weights({})


class BigEndian(QuadraticLearner):
    def mli_get_current_weights(self):
        return Weights({"w": self._weights.arrays["w"].astype(">f8")})


class Complex128(QuadraticLearner):
    def mli_get_current_weights(self):
        return Weights({"w": self._weights.arrays["w"].astype(np.complex128)})


class Drifts(QuadraticLearner):
    calls = 0

    def mli_get_current_weights(self):
        self.calls += 1
        return Weights({"w": self._weights.arrays["w"] + 1e-9 * self.calls})


# propose, test, accept


class TrainsInPlace(QuadraticLearner):
    def mli_propose_weights(self):
        self._weights = super().mli_propose_weights()
        return self._weights


class GrowsAnArray(QuadraticLearner):
    def mli_propose_weights(self):
        return Weights({"w": np.zeros(len(self.target) + 1)})


class ProposesFloat32(QuadraticLearner):
    def mli_propose_weights(self):
        return Weights({"w": super().mli_propose_weights().arrays["w"].astype(np.float32)})


class EvaluatesInPlace(QuadraticLearner):
    def mli_test_weights(self, weights):
        self._weights = weights
        return super().mli_test_weights(weights)


class VotesWithStrings(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, v.vote_score, v.test_score, "yes")


class VotesWithNumpyBools(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, v.vote_score, v.test_score, np.bool_(v.vote))


class NaNScores(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, float("nan"), v.test_score, v.vote)


class NoVoteScore(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, None, v.test_score, v.vote)


class AnswersATuple(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return (v.vote, v.vote_score)


class ApprovesItself(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, v.vote_score, v.test_score, True)


class ApprovesCopies(QuadraticLearner):
    """Treats any weights but the very object it holds as new, and better."""

    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, v.vote_score, v.test_score, weights is not self._weights)


class SumsInAnotherOrder(QuadraticLearner):
    """The BLAS bug in small: the cached baseline (at start and on accept) sums the
    squared errors with NumPy's pairwise sum, a candidate's score adds them one by one,
    as a kernel given a batch of another size would. Equal weights then score a few
    units in the last place apart, here in the candidate's favour."""

    def candidate_score(self, weights: Weights) -> float:
        squared = ((weights.arrays["w"] - self.target) ** 2).tolist()
        total = 0.0
        for value in squared:
            total += value
        return -total / len(squared)

    def mli_test_weights(self, weights):
        check_weights(weights, self._weights)
        score = self.candidate_score(weights)
        return ProposedWeights(weights, score, score, score > self._score)


BLAS_TARGET = [0.1, 0.2, 0.3, 0.7, 1.1, 1.3, 1.7, 2.9, 3.1]


class IgnoresAccept(QuadraticLearner):
    def mli_accept_weights(self, weights):
        check_weights(weights, self._weights)


class MergesOnAccept(QuadraticLearner):
    def mli_accept_weights(self, weights):
        check_weights(weights, self._weights)
        merged = (self._weights.arrays["w"] + weights.arrays["w"]) / 2
        super().mli_accept_weights(Weights({"w": merged}))


class RoundsOnAccept(QuadraticLearner):
    def mli_accept_weights(self, weights):
        check_weights(weights, self._weights)
        rounded = weights.arrays["w"].astype(np.float32).astype(np.float64)
        super().mli_accept_weights(Weights({"w": rounded}))


class ScoresByInstalling(QuadraticLearner):
    """Installs the weights to score them, and on a bad array raises before restoring."""

    def mli_test_weights(self, weights):
        previous = self._weights
        self._weights = weights
        check_weights(weights, previous)
        self._weights = previous
        return super().mli_test_weights(weights)


class AcceptsThenChecks(QuadraticLearner):
    def mli_accept_weights(self, weights):
        previous, self._weights = self._weights, weights
        check_weights(weights, previous)
        self._score = self._evaluate(weights)


class DeclaresEncodedModel(QuadraticLearner):
    def mli_tags(self):
        return tagged(encoded_model=True)


# determinism


class Unseeded(QuadraticLearner):
    def mli_propose_weights(self):
        w = self._weights.arrays["w"]
        return Weights({"w": w + np.random.default_rng().normal(size=w.shape)})


class KeepsMomentum(QuadraticLearner):
    """Adds the last accepted step to its proposals: state beyond the weights."""

    momentum = 0.0

    def mli_propose_weights(self):
        proposal = super().mli_propose_weights()
        return Weights({"w": proposal.arrays["w"] + 0.5 * self.momentum})

    def mli_accept_weights(self, weights):
        step = weights.arrays["w"] - self._weights.arrays["w"] if len(weights) == 1 else 0.0
        super().mli_accept_weights(weights)
        self.momentum = step


class OutOfBudget(QuadraticLearner):
    def mli_propose_weights(self):
        summary = TrainingSummary(error_code=ErrorCodes.DP_BUDGET_EXCEEDED)
        return Weights(self._weights.arrays, summary)


# exporting, progress, privacy


class ExportsBytes(QuadraticLearner):
    def mli_get_current_model(self):
        return b"raw bytes"


class ExportsNothing(QuadraticLearner):
    mli_get_current_model = MachineLearningInterface.mli_get_current_model


class ExportsAnEmptyModel(QuadraticLearner):
    def mli_get_current_model(self):
        return ColearnModel(ModelFormat.ONNX)


class CannotRestore(PrivateQuadratic):
    def mli_restore_progress(self, proposals_made):
        if proposals_made:
            raise NotImplementedError("no accountant to rebuild")
        super().mli_restore_progress(proposals_made)


class ForgetsTheShapeOnRestore(PrivateQuadratic):
    def mli_restore_progress(self, proposals_made):
        super().mli_restore_progress(proposals_made)
        if proposals_made:
            self.target = np.append(self.target, 0.0)  # proposals now have one more value

    def mli_propose_weights(self):
        w = self._weights.arrays["w"]
        if len(self.target) != len(w):
            return Weights({"w": np.resize(w, len(self.target))})
        return super().mli_propose_weights()


class SilentAboutPrivacy(PrivateQuadratic):
    def mli_propose_weights(self):
        return Weights(super().mli_propose_weights().arrays)


class Regains(PrivateQuadratic):
    def budget(self, made):
        return DiffPrivBudget(1.0, 1e-5, 0.5 / made if made else 0.0, 0.0)


class OverspendsDelta(PrivateQuadratic):
    def budget(self, made):
        return DiffPrivBudget(1.0, 1e-5, 0.01 * made, 1e-3)


def wrapped_approving() -> LearnerWrapper:
    class AlwaysApprove(LearnerWrapper):
        def mli_test_weights(self, weights):
            v = self.inner.mli_test_weights(weights)
            return ProposedWeights(weights, v.vote_score, v.test_score, True)

    return AlwaysApprove(QuadraticLearner(target=TARGET))


def with_tags(inner: MachineLearningInterface, tags: LearnerTags) -> LearnerWrapper:
    class Declares(LearnerWrapper):
        def mli_tags(self):
            return tags

    return Declares(inner)


# -- the table: (check, broken learner, words its message must hold) ------------------------

CASES = [
    (
        "check_current_weights",
        lambda: GivesADict(TARGET),
        "returned dict; return colearning.Weights",
    ),
    ("check_current_weights", lambda: HoldsNothing(TARGET), "returned Weights with no arrays"),
    ("check_current_weights", lambda: QuadraticLearner(TARGET, start=[np.nan, 0.0]), "holds 1 NaN"),
    ("check_current_weights", lambda: BigEndian(TARGET), "change when encoded and decoded"),
    ("check_current_weights", lambda: Complex128(TARGET), "cannot be encoded"),
    ("check_current_weights", lambda: Drifts(TARGET), "different weights when asked twice"),
    ("check_propose_keeps_current", lambda: TrainsInPlace(TARGET), "train a copy of the model"),
    (
        "check_proposal_fits",
        lambda: GrowsAnArray(TARGET),
        "weight 'w' has shape (3,); expected (2,)",
    ),
    ("check_proposal_fits", lambda: ProposesFloat32(TARGET), "has dtype float32; expected float64"),
    (
        "check_proposal_fits",
        lambda: JSONQuadratic(TARGET, tags=tagged()),
        "mli_tags() does not declare encoded_model",
    ),
    ("check_test_keeps_current", lambda: EvaluatesInPlace(TARGET), "evaluate a copy of the model"),
    ("check_verdict", lambda: VotesWithStrings(TARGET), "vote is 'yes' (str); vote True or False"),
    ("check_verdict", lambda: VotesWithNumpyBools(TARGET), "convert with bool(...)"),
    ("check_verdict", lambda: NaNScores(TARGET), "vote_score is nan; give a finite float"),
    ("check_verdict", lambda: NoVoteScore(TARGET), "the vote must rest on a score"),
    (
        "check_verdict",
        lambda: AnswersATuple(TARGET),
        "returned tuple; return colearning.ProposedWeights",
    ),
    (
        "check_no_self_approval",
        lambda: ApprovesItself(TARGET),
        "voted True on weights equal to the current ones: the current weights (vote score",
    ),
    ("check_no_self_approval", wrapped_approving, "equal to the current ones: the current weights"),
    (
        "check_no_self_approval",
        lambda: ApprovesCopies(TARGET),
        "equal to the current ones: a copy of the current weights (vote score",
    ),
    (
        "check_no_self_approval",
        lambda: SumsInAnotherOrder(BLAS_TARGET),
        "score the current weights the same way as a candidate",
    ),
    (
        "check_accept_installs_weights",
        lambda: IgnoresAccept(TARGET),
        "after mli_accept_weights(w), mli_get_current_weights() is not w",
    ),
    ("check_accept_installs_weights", lambda: MergesOnAccept(TARGET), "do not merge or fine-tune"),
    ("check_accept_installs_weights", lambda: RoundsOnAccept(TARGET), "store the given weights"),
    (
        "check_test_refuses_garbage",
        lambda: lenient(QuadraticLearner)(TARGET),
        "mli_test_weights(weights whose 'w' has shape (2, 2) instead of (2,)) returned a verdict",
    ),
    (
        "check_test_refuses_garbage",
        lambda: lenient(QuadraticLearner)(TARGET),
        "mli_test_weights(weights whose 'w' holds NaN) returned a verdict",
    ),
    (
        "check_test_refuses_garbage",
        lambda: ScoresByInstalling(TARGET),
        "mli_test_weights(weights whose 'w' holds NaN) changed the current weights",
    ),
    (
        "check_accept_refuses_garbage",
        lambda: lenient(QuadraticLearner)(TARGET),
        "mli_accept_weights(weights whose 'w' holds NaN) replaced the current weights",
    ),
    (
        "check_accept_refuses_garbage",
        lambda: AcceptsThenChecks(TARGET),
        "mli_accept_weights(weights whose 'w' has shape (2, 2) instead of (2,)) replaced",
    ),
    (
        "check_encoded_model",
        lambda: DeclaresEncodedModel(TARGET),
        "declares encoded_model, but the current weights are Weights({w: float64[2]}",
    ),
    (
        "check_proposals_are_deterministic",
        lambda: Unseeded(TARGET),
        "two proposals at round 0 from the same weights differ",
    ),
    (
        "check_proposals_are_deterministic",
        lambda: KeepsMomentum(TARGET),
        "state outside the weights (an optimizer, a random generator, a cached model)",
    ),
    (
        "check_proposals_depend_on_round",
        lambda: QuadraticLearner(TARGET, noise=0.0),
        "the proposals at rounds 0 and 1 from the same weights are identical",
    ),
    ("check_proposals_depend_on_round", lambda: OutOfBudget(TARGET), "carry error codes"),
    (
        "check_exports_model",
        lambda: ExportsBytes(TARGET),
        "return a ColearnModel with a ModelFormat",
    ),
    (
        "check_exports_model",
        lambda: with_tags(ExportsNothing(TARGET), tagged()),
        "declares exports_model, but mli_get_current_model() raised LearnerError",
    ),
    (
        "check_exports_model",
        lambda: ExportsAnEmptyModel(TARGET),
        "neither a model nor a model_file",
    ),
    (
        "check_restores_progress",
        lambda: CannotRestore(TARGET),
        "mli_restore_progress(1) raised NotImplementedError: no accountant to rebuild",
    ),
    (
        "check_restores_progress",
        lambda: ForgetsTheShapeOnRestore(TARGET),
        "after mli_restore_progress(1), the proposal does not fit the current weights",
    ),
    ("check_privacy_budget", lambda: SilentAboutPrivacy(TARGET), "carries training_summary=None"),
    (
        "check_privacy_budget",
        lambda: PrivateQuadratic(TARGET, per_proposal=0.4, overspend=True),
        "against target_epsilon=1.0; check before training that the next proposal fits",
    ),
    ("check_privacy_budget", lambda: Regains(TARGET), "spent privacy cannot be regained"),
    ("check_privacy_budget", lambda: OverspendsDelta(TARGET), "keep delta within its target"),
]


def case_id(case) -> str:
    check, make, message = case
    return f"{check}-{type(make()).__name__}-{message[:24]}"


@pytest.mark.parametrize(("check_name", "make", "message"), CASES, ids=map(case_id, CASES))
def test_each_rule_fires_and_names_the_fix(check_name, make, message):
    check = getattr(checks_module, check_name)
    with pytest.raises(LearnerContractError) as err:
        check(make())
    assert message in str(err.value)
    # check_learner runs that check too, and lists the failure under its name.
    with pytest.raises(LearnerContractError) as err:
        check_learner(make())
    assert any(f.startswith(f"{check_name}: ") and message in f for f in err.value.failures), (
        err.value
    )


def test_every_check_has_a_case_that_makes_it_fire():
    checks = {name for name in checks_module.__all__ if name.startswith("check_")}
    assert {check for check, _, _ in CASES} == checks


# -- learners that keep the contract pass ---------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: QuadraticLearner(TARGET),
        lambda: QuadraticLearner(TARGET, seed=3, start=[5.0, -5.0]),
        lambda: PrivateQuadratic(TARGET),
        lambda: JSONQuadratic(TARGET),
        lambda: LearnerWrapper(QuadraticLearner(TARGET)),
        # not declaring determinism: nobody checks it
        lambda: with_tags(Unseeded(TARGET), LearnerTags(exports_model=True)),
        # not exporting (the default tags say so): nobody asks for a model
        lambda: with_tags(ExportsNothing(TARGET), LearnerTags()),
    ],
    ids=[
        "plain",
        "started-elsewhere",
        "private",
        "encoded",
        "wrapped",
        "not-deterministic",
        "not-exporting",
    ],
)
def test_learners_that_keep_the_contract_pass_and_keep_their_weights(make):
    learner = make()
    before = id_of(learner.mli_get_current_weights())
    check_learner(learner)
    assert id_of(learner.mli_get_current_weights()) == before


def test_a_round_index_is_passed_to_every_proposal():
    class Records(QuadraticLearner):
        def mli_set_round(self, round_index):
            self.rounds = [*getattr(self, "rounds", []), round_index]
            super().mli_set_round(round_index)

    learner = Records(TARGET)
    check_learner(learner, round_index=7)
    assert min(learner.rounds) == 7 and 8 in learner.rounds


def test_the_blas_bug_is_real_in_the_simulation():
    """SumsInAnotherOrder's two scores of the same weights differ in the last bits
    only, in the candidate's favour; so the copy, the decoded bytes and the weights
    accepted back are all approved, not only the current weights."""
    learner = SumsInAnotherOrder(BLAS_TARGET)
    current = learner.mli_get_current_weights()
    fresh, cached = learner.candidate_score(current), learner._score
    assert fresh > cached and math.isclose(fresh, cached, rel_tol=1e-15)
    with pytest.raises(LearnerContractError) as err:
        checks_module.check_no_self_approval(learner)
    for label in (
        "the current weights",
        "a copy of the current weights",
        "the current weights decoded from bytes",
        "the original weights, after accepting them back",
    ):
        assert f"{label} (vote score -2.7155555555555555)" in err.value.failures[0]


def test_a_score_cached_by_identity_shows_as_different_scores_of_equal_weights():
    class CachesByIdentity(SumsInAnotherOrder):
        def mli_test_weights(self, weights):
            if weights is self._weights:
                return ProposedWeights(weights, self._score, self._score, False)
            return super().mli_test_weights(weights)

    with pytest.raises(LearnerContractError) as err:
        checks_module.check_no_self_approval(CachesByIdentity(BLAS_TARGET))
    assert err.value.failures[-1] == (
        "equal weights got different vote scores: the current weights: -2.715555555555556, "
        "a copy of the current weights: -2.7155555555555555, the current weights decoded "
        "from bytes: -2.7155555555555555, the original weights, after accepting them back: "
        "-2.715555555555556"
    )


def test_a_private_learner_that_runs_out_says_so_and_passes():
    learner = PrivateQuadratic(TARGET, per_proposal=0.4)  # affords two proposals
    checks_module.check_privacy_budget(learner)
    assert (
        learner.mli_propose_weights().training_summary.error_code is ErrorCodes.DP_BUDGET_EXCEEDED
    )


def test_a_learner_that_ignores_accept_is_not_blamed_for_self_approval():
    with pytest.raises(LearnerContractError) as err:
        checks_module.check_no_self_approval(IgnoresAccept(TARGET))
    assert err.value.failures == (
        "mli_accept_weights(a proposal) did not install it, so the proposal cannot be "
        "tested as the current weights (see check_accept_installs_weights)",
    )


# -- how failures are reported --------------------------------------------------------------


def test_all_failures_are_listed_at_once():
    class TwoProblems(TrainsInPlace, ExportsBytes):
        pass

    with pytest.raises(LearnerContractError) as err:
        check_learner(TwoProblems([1.0]))
    text = str(err.value)
    assert text.startswith("TwoProblems breaks the learner contract (")
    assert "check_propose_keeps_current: mli_propose_weights() changed" in text
    assert "check_exports_model: mli_get_current_model() returned b'raw bytes'" in text


def test_a_learner_that_raises_is_reported_with_the_call_and_the_error():
    class ProposeRaises(QuadraticLearner):
        def mli_propose_weights(self):
            raise RuntimeError("out of memory")

    with pytest.raises(LearnerContractError) as err:
        check_learner(ProposeRaises(TARGET))
    assert (
        "check_propose_keeps_current: mli_propose_weights() raised RuntimeError: out of memory"
        in (str(err.value))
    )


def test_the_learner_ends_with_its_starting_weights_even_when_checks_fail():
    learner = TrainsInPlace(TARGET, start=[3.0, 3.0])
    before = id_of(learner.mli_get_current_weights())
    with pytest.raises(LearnerContractError):
        check_learner(learner)
    assert id_of(learner.mli_get_current_weights()) == before


def test_a_learner_that_cannot_go_back_is_told_so():
    with pytest.raises(LearnerContractError) as err:
        check_learner(MergesOnAccept(TARGET))
    assert "could not put the starting weights back" in str(err.value)


def test_not_a_learner():
    with pytest.raises(LearnerContractError, match="subclass"):
        check_learner(object())  # type: ignore[arg-type]


def test_tags_that_are_not_learner_tags():
    class BadTags(QuadraticLearner):
        def mli_tags(self):
            return {"deterministic": True}

    with pytest.raises(LearnerContractError, match="returned dict; return colearning.LearnerTags"):
        check_learner(BadTags(TARGET))


def test_the_error_is_a_colearning_error_and_an_assertion():
    with pytest.raises(LearnerContractError) as err:
        check_learner(ApprovesItself(TARGET))
    assert isinstance(err.value, ColearningError) and isinstance(err.value, AssertionError)
    assert all(": " in f for f in err.value.failures)
