"""``check_learner``: the interface contract, checked on any learner.

Run it on your own learner in your test suite::

    from colearning.testing import check_learner
    check_learner(MyLearner(...))

It runs every check, then raises :class:`LearnerContractError` listing each broken
rule and what to change. The learner ends with the weights it started with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from colearning.core.codec import check_weights, decode, encode, id_of
from colearning.core.exceptions import ColearningError
from colearning.core.interface import (
    ColearnModel,
    MachineLearningInterface,
    ModelFormat,
    ProposedWeights,
    Weights,
)


class LearnerContractError(ColearningError, AssertionError):
    """A learner breaks the :class:`MachineLearningInterface` contract."""


class _Checks:
    def __init__(self, learner: MachineLearningInterface) -> None:
        self.learner = learner
        self.failures: list[str] = []

    def expect(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def call(self, what: str, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except Exception as exc:
            self.failures.append(f"{what} raised {type(exc).__name__}: {exc}")
            return None

    def current_id(self) -> str | None:
        weights = self.call("mli_get_current_weights()", self.learner.mli_get_current_weights)
        return id_of(weights) if isinstance(weights, Weights) else None


def check_learner(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """Check that ``learner`` keeps the interface contract.

    Checks: current weights are named finite arrays that round-trip through the codec;
    ``mli_propose_weights`` and ``mli_test_weights`` leave the current weights
    unchanged; proposals match the current weights' names, shapes and dtypes;
    ``mli_test_weights`` returns a ``ProposedWeights`` with a bool vote and finite
    scores, and does not approve the current weights themselves (approval means
    *better*); ``mli_accept_weights`` installs exactly the given weights;
    ``mli_get_current_model`` returns a ``ColearnModel``.

    Raises
    ------
    LearnerContractError
        Listing every rule broken and the fix.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> check_learner(QuadraticLearner(target=[1.0, -1.0]))
    """
    name = type(learner).__name__
    c = _Checks(learner)
    if not isinstance(learner, MachineLearningInterface):
        raise LearnerContractError(
            f"{name} is not a MachineLearningInterface; subclass "
            "colearning.MachineLearningInterface and implement its five mli_ methods"
        )

    original = c.call("mli_get_current_weights()", learner.mli_get_current_weights)
    if not c.expect(
        isinstance(original, Weights),
        f"mli_get_current_weights() returned {type(original).__name__}; return colearning.Weights",
    ):
        _raise(name, c.failures)
    assert isinstance(original, Weights)
    c.expect(len(original) > 0, "mli_get_current_weights() returned no arrays")
    start_id = id_of(original)
    roundtrip = c.call("decoding the encoded weights", lambda: decode(encode(original)))
    c.expect(
        roundtrip == original,
        "current weights change when encoded and decoded with safetensors; use numeric "
        "numpy arrays (encode other models to a uint8 array)",
    )

    # propose: a proposal of the same shape, current weights untouched
    learner.mli_set_round(round_index)
    proposal = c.call("mli_propose_weights()", learner.mli_propose_weights)
    c.expect(
        c.current_id() == start_id,
        "mli_propose_weights() changed the current weights; train a copy of the model",
    )
    if c.expect(
        isinstance(proposal, Weights),
        f"mli_propose_weights() returned {type(proposal).__name__}; return colearning.Weights",
    ):
        assert isinstance(proposal, Weights)
        c.call(
            "checking the proposal against the current weights",
            lambda: check_weights(proposal, original),
        )

    # test: a well-formed verdict, current weights untouched, no approval of itself
    for label, weights in (("the current weights", original), ("a proposal", proposal)):
        if not isinstance(weights, Weights):
            continue
        before = c.current_id()
        verdict = c.call(f"mli_test_weights({label})", partial(learner.mli_test_weights, weights))
        _check_verdict(c, verdict, label)
        c.expect(
            c.current_id() == before,
            f"mli_test_weights({label}) changed the current weights; evaluate a copy",
        )
        if label == "the current weights" and isinstance(verdict, ProposedWeights):
            c.expect(
                verdict.vote is False,
                "mli_test_weights(the current weights) voted "
                f"{verdict.vote!r}; approve only weights that score strictly better than "
                "the current ones",
            )

    # accept: installs exactly the given weights, and can go back
    if isinstance(proposal, Weights):
        c.call("mli_accept_weights(proposal)", lambda: learner.mli_accept_weights(proposal))
        c.expect(
            c.current_id() == id_of(proposal),
            "after mli_accept_weights(w), mli_get_current_weights() is not w",
        )
        c.call("mli_accept_weights(original)", lambda: learner.mli_accept_weights(original))
        c.expect(
            c.current_id() == start_id,
            "after accepting the original weights again, the current weights differ",
        )

    model = c.call("mli_get_current_model()", learner.mli_get_current_model)
    c.expect(
        isinstance(model, ColearnModel) and isinstance(model.model_format, ModelFormat),
        f"mli_get_current_model() returned {type(model).__name__}; return a ColearnModel "
        "with a ModelFormat",
    )
    if c.failures:
        _raise(name, c.failures)


def _check_verdict(c: _Checks, verdict: object, label: str) -> None:
    if not c.expect(
        isinstance(verdict, ProposedWeights),
        f"mli_test_weights({label}) returned {type(verdict).__name__}; return "
        "colearning.ProposedWeights",
    ):
        return
    assert isinstance(verdict, ProposedWeights)
    c.expect(
        isinstance(verdict.vote, bool),
        f"mli_test_weights({label}).vote is {verdict.vote!r}; vote True or False",
    )
    for field in ("vote_score", "test_score"):
        score = getattr(verdict, field)
        c.expect(
            score is None
            or (
                isinstance(score, (int, float))
                and not isinstance(score, bool)
                and math.isfinite(score)
            ),
            f"mli_test_weights({label}).{field} is {score!r}; give a finite float "
            "(or None where there is no such set)",
        )
    c.expect(
        verdict.vote_score is not None,
        f"mli_test_weights({label}).vote_score is None; the vote must rest on a score",
    )


def _raise(name: str, failures: list[str]) -> None:
    lines = "\n".join(f"  - {f}" for f in failures)
    raise LearnerContractError(f"{name} breaks the learner contract:\n{lines}")
