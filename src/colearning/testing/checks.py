"""The learner checks: one function per rule of the :class:`MachineLearningInterface`
contract.

Each ``check_<name>(learner, *, round_index=0)`` returns ``None`` when the learner keeps
the rule and raises :class:`LearnerContractError` when it does not, with a message that
says what was seen and what to change. A check may change the learner's state (it
proposes, accepts, restores progress) but puts the starting weights back before it
returns. :func:`colearning.testing.learner_checks` says which checks apply to a learner,
chosen by its :meth:`~colearning.MachineLearningInterface.mli_tags`;
:func:`colearning.testing.check_learner` runs them all.

Examples
--------
>>> from colearning.testing import QuadraticLearner
>>> check_propose_keeps_current(QuadraticLearner(target=[1.0, 2.0]))
>>> class TrainsInPlace(QuadraticLearner):
...     def mli_propose_weights(self):
...         self._weights = super().mli_propose_weights()
...         return self._weights
>>> check_propose_keeps_current(TrainsInPlace(target=[1.0, 2.0]))
Traceback (most recent call last):
...
colearning.testing.checks.LearnerContractError: mli_propose_weights() changed the current ...
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from typing import TypeVar

import numpy as np

from colearning.core.codec import check_finite, check_weights, decode, encode, id_of
from colearning.core.exceptions import ColearningError, WeightsError
from colearning.core.interface import (
    ColearnModel,
    DiffPrivBudget,
    LearnerTags,
    MachineLearningInterface,
    ModelFormat,
    ProposedWeights,
    TrainingSummary,
    Weights,
)

__all__ = [
    "LearnerContractError",
    "check_accept_installs_weights",
    "check_accept_refuses_garbage",
    "check_current_weights",
    "check_encoded_model",
    "check_exports_model",
    "check_no_self_approval",
    "check_privacy_budget",
    "check_proposal_fits",
    "check_proposals_are_deterministic",
    "check_proposals_depend_on_round",
    "check_propose_keeps_current",
    "check_restores_progress",
    "check_test_keeps_current",
    "check_test_refuses_garbage",
    "check_verdict",
]

_T = TypeVar("_T")


class LearnerContractError(ColearningError, AssertionError):
    """A learner breaks the :class:`MachineLearningInterface` contract.

    ``failures`` lists each broken rule on its own (one entry when a single rule
    broke); the message lists them all.
    """

    def __init__(self, message: str, failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failures: tuple[str, ...] = tuple(failures) or (message,)


# -- helpers ------------------------------------------------------------------------------


class _Findings:
    """Collects the broken rules of one check, so that it reports all of them."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def expect(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
        return ok

    def done(self) -> None:
        if len(self.failures) == 1:
            raise LearnerContractError(self.failures[0])
        if self.failures:
            raise LearnerContractError("\n".join(f"- {f}" for f in self.failures), self.failures)


def _call(what: str, fn: Callable[[], _T]) -> _T:
    """``fn()``, with any exception but a contract error reported as a broken rule."""
    try:
        return fn()
    except LearnerContractError:
        raise
    except Exception as exc:
        raise LearnerContractError(f"{what} raised {type(exc).__name__}: {exc}") from exc


def _current(learner: MachineLearningInterface) -> Weights:
    weights = _call("mli_get_current_weights()", learner.mli_get_current_weights)
    if not isinstance(weights, Weights):
        raise LearnerContractError(
            f"mli_get_current_weights() returned {type(weights).__name__}; return "
            "colearning.Weights"
        )
    return weights


def _id(weights: Weights, what: str) -> str:
    return _call(f"encoding {what} with safetensors", lambda: id_of(weights))


def _current_id(learner: MachineLearningInterface) -> str:
    return _id(_current(learner), "the current weights")


def _propose(learner: MachineLearningInterface, round_index: int) -> Weights:
    """One proposal at ``round_index``, as the driver asks for it."""
    _call(f"mli_set_round({round_index})", lambda: learner.mli_set_round(round_index))
    proposal = _call("mli_propose_weights()", learner.mli_propose_weights)
    if not isinstance(proposal, Weights):
        raise LearnerContractError(
            f"mli_propose_weights() returned {type(proposal).__name__}; return colearning.Weights"
        )
    return proposal


def _test(learner: MachineLearningInterface, weights: Weights, label: str) -> ProposedWeights:
    verdict = _call(f"mli_test_weights({label})", lambda: learner.mli_test_weights(weights))
    if not isinstance(verdict, ProposedWeights):
        raise LearnerContractError(
            f"mli_test_weights({label}) returned {type(verdict).__name__}; return "
            "colearning.ProposedWeights"
        )
    return verdict


def _accept(learner: MachineLearningInterface, weights: Weights, label: str) -> None:
    _call(f"mli_accept_weights({label})", lambda: learner.mli_accept_weights(weights))


def _copy_of(weights: Weights) -> Weights:
    """New arrays with equal values, in the same payload form (a dict stays a dict,
    tensors stay tensors): what a learner receives from another party.

    Examples
    --------
    >>> import numpy as np
    >>> w = Weights({"w": np.arange(3.0)})
    >>> c = _copy_of(w)
    >>> c == w, c.arrays["w"] is w.arrays["w"], np.shares_memory(c.arrays["w"], w.arrays["w"])
    (True, False, False)
    """
    arrays = {name: np.array(a) for name, a in weights.arrays.items()}
    return Weights.from_arrays(arrays, weights.layout, weights.training_summary)


@contextmanager
def _restoring(learner: MachineLearningInterface, original: Weights) -> Iterator[None]:
    """Put ``original`` back when the block ends, whatever happened in it."""
    start = _id(original, "the current weights")
    try:
        yield
    finally:
        try:
            if id_of(learner.mli_get_current_weights()) != start:
                learner.mli_accept_weights(original)
        except Exception:
            pass  # the block's own error says more; check_learner reports the end state


def _put_back(learner: MachineLearningInterface, original: Weights, found: _Findings) -> None:
    """Accept ``original`` again after a finding, noting (not raising) if that fails."""
    try:
        learner.mli_accept_weights(original)
    except Exception as exc:
        found.failures.append(
            f"then mli_accept_weights(the original weights) raised {type(exc).__name__}: "
            f"{exc}; the learner cannot recover from the bad weights"
        )


def _short(weights_id: str) -> str:
    return weights_id[:12]


def _is_score(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(float(value))
    )


def _tags(learner: MachineLearningInterface) -> LearnerTags:
    tags = _call("mli_tags()", learner.mli_tags)
    if not isinstance(tags, LearnerTags):
        raise LearnerContractError(
            f"mli_tags() returned {type(tags).__name__}; return colearning.LearnerTags"
        )
    return tags


# -- the checks: every learner ------------------------------------------------------------


def check_current_weights(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """The current weights are named, finite arrays that survive the codec unchanged.

    ``mli_get_current_weights()`` returns :class:`~colearning.Weights` holding at least
    one array, no NaN or Inf, the same weights when asked twice, and weights that
    ``decode(encode(w))`` gives back equal (safetensors carries them between parties
    and into the experiment store).

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> check_current_weights(QuadraticLearner(target=[1.0]))
    """
    found = _Findings()
    weights = _current(learner)
    found.expect(
        len(weights) > 0,
        "mli_get_current_weights() returned Weights with no arrays; return the model's parameters",
    )
    try:
        check_finite(weights)
    except WeightsError as exc:
        found.failures.append(f"the current weights are not finite: {exc}")
    try:
        blob = encode(weights)
    except WeightsError as exc:
        found.failures.append(
            f"the current weights cannot be encoded ({exc}); use numeric numpy arrays "
            "(encode other models to a uint8 array)"
        )
    else:
        found.expect(
            decode(blob) == weights,
            "the current weights change when encoded and decoded with safetensors; use "
            "numeric numpy arrays (encode other models to a uint8 array)",
        )
        again = _current_id(learner)
        found.expect(
            again == id_of(weights),
            "mli_get_current_weights() returned different weights when asked twice "
            f"(ids {_short(id_of(weights))} and {_short(again)}); return the stored "
            "weights, without training or rounding them",
        )
    found.done()


def check_propose_keeps_current(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """``mli_propose_weights()`` leaves the current weights as they were.

    The driver still needs the current weights when the proposal is rejected; a learner
    trains a copy of its model.
    """
    original = _current(learner)
    start = _id(original, "the current weights")
    with _restoring(learner, original):
        _propose(learner, round_index)
        after = _current_id(learner)
    if after != start:
        raise LearnerContractError(
            "mli_propose_weights() changed the current weights (id "
            f"{_short(start)} before, {_short(after)} after); train a copy of the model "
            "and return the copy's weights"
        )


def check_proposal_fits(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """A proposal has the current weights' names, order, dtypes and shapes, and is finite.

    Only a learner declaring ``LearnerTags(encoded_model=True)`` may change the length
    of its 1-D ``uint8`` array (an encoded model such as a boosted-tree booster); the
    driver rejects any other misfit before a single vote.
    """
    original = _current(learner)
    with _restoring(learner, original):
        proposal = _propose(learner, round_index)
    try:
        check_weights(proposal, original)
    except WeightsError as exc:
        raise LearnerContractError(f"the proposal does not fit the current weights: {exc}") from exc
    if _tags(learner).encoded_model:
        return
    grown = [
        f"{name!r} {original.arrays[name].shape} -> {array.shape}"
        for name, array in proposal.arrays.items()
        if array.shape != original.arrays[name].shape
    ]
    if grown:
        raise LearnerContractError(
            f"the proposal changes the length of encoded-model arrays ({', '.join(grown)}) "
            "but mli_tags() does not declare encoded_model; return "
            "LearnerTags(encoded_model=True, ...) from mli_tags(), or keep every shape"
        )


def check_test_keeps_current(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """``mli_test_weights(w)`` leaves the current weights as they were, for the current
    weights, a copy of them and a proposal alike."""
    found = _Findings()
    original = _current(learner)
    start = _id(original, "the current weights")
    with _restoring(learner, original):
        proposal = _propose(learner, round_index)
        for label, weights in (
            ("the current weights", original),
            ("a copy of the current weights", _copy_of(original)),
            ("a proposal", proposal),
        ):
            _test(learner, weights, label)
            after = _current_id(learner)
            if not found.expect(
                after == start,
                f"mli_test_weights({label}) changed the current weights (id "
                f"{_short(start)} before, {_short(after)} after); evaluate a copy of the "
                "model and keep the current weights",
            ):
                _put_back(learner, original, found)
    found.done()


def check_verdict(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """``mli_test_weights`` answers a :class:`~colearning.ProposedWeights` with a
    ``bool`` vote and a finite ``vote_score`` (``test_score`` finite or ``None``).

    The driver counts any other answer as a failed voter, so the vote is lost.
    """
    found = _Findings()
    original = _current(learner)
    with _restoring(learner, original):
        proposal = _propose(learner, round_index)
        for label, weights in (("the current weights", original), ("a proposal", proposal)):
            verdict = _test(learner, weights, label)
            vote = verdict.vote
            found.expect(
                isinstance(vote, bool),
                f"mli_test_weights({label}).vote is {vote!r} ({type(vote).__name__}); vote "
                "True or False (convert with bool(...))",
            )
            found.expect(
                verdict.vote_score is not None,
                f"mli_test_weights({label}).vote_score is None; the vote must rest on a "
                "score: give the vote set's score",
            )
            for field in ("vote_score", "test_score"):
                score = getattr(verdict, field)
                found.expect(
                    score is None or _is_score(score),
                    f"mli_test_weights({label}).{field} is {score!r}; give a finite float "
                    "(or None where there is no such set)",
                )
    found.done()


def check_no_self_approval(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """Weights equal to the current ones never win a vote, however their score is reached.

    A vote approves weights that score *strictly better* than the current ones. Tested
    are: the current weights themselves; a copy of them (new arrays, equal values, as
    weights from another party arrive); the same decoded from their safetensors bytes;
    a proposal after accepting it, and a copy of it; and the original weights after
    accepting them back. A learner that compares a candidate's fresh score with a
    baseline computed another way (a different batch layout or summation order, which
    can change the last bits of a float) may approve its own model; score both the same
    way.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> check_no_self_approval(QuadraticLearner(target=[1.0, 2.0]))
    """
    found = _Findings()
    original = _current(learner)
    scores: dict[str, object] = {}
    approved: list[str] = []

    def expect_no(weights: Weights, label: str) -> None:
        verdict = _test(learner, weights, label)
        scores[label] = verdict.vote_score
        if verdict.vote is True:
            approved.append(f"{label} (vote score {verdict.vote_score!r})")

    with _restoring(learner, original):
        expect_no(original, "the current weights")
        expect_no(_copy_of(original), "a copy of the current weights")
        expect_no(decode(encode(original)), "the current weights decoded from bytes")
        proposal = _propose(learner, round_index)
        _test(learner, proposal, "a proposal")  # the driver tests, then accepts
        _accept(learner, proposal, "a proposal")
        if _current_id(learner) == _id(proposal, "the proposal"):
            expect_no(proposal, "a proposal, after accepting it")
            expect_no(_copy_of(proposal), "a copy of a proposal, after accepting it")
        else:
            found.failures.append(
                "mli_accept_weights(a proposal) did not install it, so the proposal cannot "
                "be tested as the current weights (see check_accept_installs_weights)"
            )
        _accept(learner, original, "the original weights")
        expect_no(original, "the original weights, after accepting them back")
    if approved:
        found.failures.insert(
            0,
            "mli_test_weights voted True on weights equal to the current ones: "
            f"{'; '.join(approved)}. Approve only weights that score strictly better than "
            "the current ones, and score the current weights the same way as a candidate: "
            "a baseline cached from another code path (batch layout, summation order) can "
            "differ in the last bits",
        )
        baseline = {k: v for k, v in scores.items() if "proposal" not in k}
        if len({repr(v) for v in baseline.values()}) > 1:
            found.failures.append(
                "equal weights got different vote scores: "
                + ", ".join(f"{k}: {v!r}" for k, v in baseline.items())
            )
    found.done()


def check_accept_installs_weights(
    learner: MachineLearningInterface, *, round_index: int = 0
) -> None:
    """``mli_accept_weights(w)`` makes ``w`` the current weights, exactly; accepting the
    original weights again goes back to them."""
    found = _Findings()
    original = _current(learner)
    start = _id(original, "the current weights")
    with _restoring(learner, original):
        proposal = _propose(learner, round_index)
        _accept(learner, proposal, "a proposal")
        after = _current_id(learner)
        found.expect(
            after == _id(proposal, "the proposal"),
            "after mli_accept_weights(w), mli_get_current_weights() is not w (id "
            f"{_short(after)} instead of {_short(id_of(proposal))}); store the given "
            "weights as they are",
        )
        _accept(learner, original, "the original weights")
        back = _current_id(learner)
        found.expect(
            back == start,
            "after accepting the original weights again, the current weights differ (id "
            f"{_short(back)} instead of {_short(start)}); replace the weights, do not "
            "merge or fine-tune them",
        )
    found.done()


def _wrong_shape(weights: Weights) -> tuple[str, Weights]:
    name, array = next(iter(weights.arrays.items()))
    arrays = dict(weights.arrays)
    arrays[name] = np.zeros((*array.shape, 2), dtype=array.dtype)
    return (
        f"weights whose {name!r} has shape {arrays[name].shape} instead of {array.shape}",
        Weights.from_arrays(arrays, weights.layout),
    )


def _with_nan(weights: Weights) -> tuple[str, Weights] | None:
    for name, array in weights.arrays.items():
        if array.dtype.kind == "f" and array.size:
            arrays = dict(weights.arrays)
            bad = np.array(array)
            bad.flat[0] = np.nan
            arrays[name] = bad
            return f"weights whose {name!r} holds NaN", Weights.from_arrays(arrays, weights.layout)
    return None


def _cut_in_half(weights: Weights) -> tuple[str, Weights] | None:
    if len(weights) != 1:
        return None
    name, array = next(iter(weights.arrays.items()))
    if array.dtype != np.uint8 or array.ndim != 1 or len(array) < 2:
        return None
    return (
        f"an encoded model cut to half its length ({name!r})",
        Weights.from_arrays({name: np.array(array[: len(array) // 2])}, weights.layout),
    )


def _garbage(learner: MachineLearningInterface, original: Weights) -> list[tuple[str, Weights]]:
    cases: list[tuple[str, Weights] | None] = [_wrong_shape(original), _with_nan(original)]
    if _tags(learner).encoded_model:
        cases.append(_cut_in_half(original))
    return [case for case in cases if case is not None]


def check_test_refuses_garbage(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """``mli_test_weights`` raises on weights that cannot be this model's (the wrong
    shape, NaN; for an encoded model, bytes cut short) and leaves the current weights.

    Any exception will do; :class:`~colearning.WeightsError` (what
    ``colearning.check_weights(weights, current)`` raises) says the most. The driver
    counts a raising voter as not approving.
    """
    found = _Findings()
    original = _current(learner)
    start = _id(original, "the current weights")
    with _restoring(learner, original):
        for label, bad in _garbage(learner, original):
            try:
                verdict = learner.mli_test_weights(bad)
            except Exception:
                pass
            else:
                vote = getattr(verdict, "vote", None)
                found.expect(
                    False,
                    f"mli_test_weights({label}) returned a verdict (vote {vote!r}) instead "
                    "of raising; check incoming weights first with "
                    "colearning.check_weights(weights, current_weights), which raises "
                    "WeightsError",
                )
            after = _current_id(learner)
            if not found.expect(
                after == start,
                f"mli_test_weights({label}) changed the current weights; evaluate a copy "
                "and check incoming weights before using them",
            ):
                _put_back(learner, original, found)
    found.done()


def check_accept_refuses_garbage(
    learner: MachineLearningInterface, *, round_index: int = 0
) -> None:
    """``mli_accept_weights`` with weights that cannot be this model's (the wrong shape,
    NaN; for an encoded model, bytes cut short) leaves the current weights as they were
    (raising :class:`~colearning.WeightsError` is the way to say no)."""
    found = _Findings()
    original = _current(learner)
    start = _id(original, "the current weights")
    with _restoring(learner, original):
        for label, bad in _garbage(learner, original):
            with suppress(Exception):  # refusing is right; the weights must stay
                learner.mli_accept_weights(bad)
            after = _current_id(learner)
            if not found.expect(
                after == start,
                f"mli_accept_weights({label}) replaced the current weights; check "
                "incoming weights with colearning.check_weights(weights, current_weights) "
                "before replacing the current ones",
            ):
                _put_back(learner, original, found)
    found.done()


# -- the checks chosen by tags --------------------------------------------------------------


def check_encoded_model(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """(``encoded_model``) The weights and every proposal are one 1-D ``uint8`` array:
    the model encoded in a safe format of its own library."""
    found = _Findings()
    original = _current(learner)
    with _restoring(learner, original):
        proposal = _propose(learner, round_index)
    for label, weights in (("the current weights", original), ("a proposal", proposal)):
        arrays = list(weights.arrays.values())
        found.expect(
            len(arrays) == 1 and arrays[0].dtype == np.uint8 and arrays[0].ndim == 1,
            f"mli_tags() declares encoded_model, but {label} are {weights!r}; give the "
            "encoded model as one 1-D uint8 array (np.frombuffer(blob, np.uint8)), or "
            "declare encoded_model=False",
        )
    found.done()


def check_proposals_are_deterministic(
    learner: MachineLearningInterface, *, round_index: int = 0
) -> None:
    """(``deterministic``) From the same weights, at the same round index, a proposal is
    the same, including after the learner was used in between (tested, moved to other
    weights, moved back).

    A resumed experiment then ends exactly as an uninterrupted one. Derive every random
    draw of training from ``(seed, round_index)`` and train from the current weights
    alone: no optimizer state, random generator or cached model may carry over.
    """
    found = _Findings()
    original = _current(learner)
    with _restoring(learner, original):
        first = _propose(learner, round_index)
        first_id = _id(first, "the proposal")
        second_id = _id(_propose(learner, round_index), "the proposal")
        found.expect(
            second_id == first_id,
            f"two proposals at round {round_index} from the same weights differ (ids "
            f"{_short(first_id)} and {_short(second_id)}); derive training randomness from "
            "(seed, round_index), e.g. np.random.default_rng([seed, round_index]), or "
            "declare deterministic=False",
        )
        # Use the learner as the driver would, then come back to the same weights.
        _test(learner, first, "a proposal")
        _accept(learner, first, "a proposal")
        later = _propose(learner, round_index + 1)
        _test(learner, later, "a later proposal")
        _accept(learner, original, "the original weights")
        again_id = _id(_propose(learner, round_index), "the proposal")
        found.expect(
            again_id == first_id,
            f"after testing and accepting other weights and accepting the original back, "
            f"the proposal at round {round_index} differs (id {_short(again_id)} instead "
            f"of {_short(first_id)}); state outside the weights (an optimizer, a random "
            "generator, a cached model) carries over between calls: rebuild it for each "
            "proposal from the current weights and (seed, round_index)",
        )
    found.done()


def check_proposals_depend_on_round(
    learner: MachineLearningInterface, *, round_index: int = 0
) -> None:
    """(``deterministic``) Proposals at different round indices differ.

    A deterministic learner seeds its training from ``(seed, round_index)``. One whose
    proposal ignores the round (no shuffling, no sampling) proposes a rejected update
    again, unchanged, every time its turn comes with the same weights: it can never get
    past a rejection. Draw the batch order (or any noise) from the round index.
    """
    original = _current(learner)
    with _restoring(learner, original):
        proposals = [_propose(learner, r) for r in (round_index, round_index + 1)]
    codes = [p.training_summary.error_code for p in proposals if p.training_summary]
    if any(code is not None for code in codes):
        raise LearnerContractError(
            f"the proposals carry error codes {codes} instead of training; give the "
            "learner enough budget for a few proposals to check it"
        )
    ids = [_id(p, "the proposal") for p in proposals]
    if ids[0] == ids[1]:
        raise LearnerContractError(
            f"the proposals at rounds {round_index} and {round_index + 1} from the same "
            f"weights are identical (id {_short(ids[0])}); seed training from "
            "(seed, round_index) (e.g. the batch order), or a rejected proposal comes "
            "back unchanged every time this learner proposes"
        )


def check_exports_model(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """(``exports_model``) ``mli_get_current_model()`` returns a
    :class:`~colearning.ColearnModel` with a :class:`~colearning.ModelFormat` and the
    model (or a file), and leaves the current weights as they were."""
    start = _current_id(learner)
    try:
        model = learner.mli_get_current_model()
    except Exception as exc:
        raise LearnerContractError(
            f"mli_tags() declares exports_model, but mli_get_current_model() raised "
            f"{type(exc).__name__}: {exc}; implement it, or declare exports_model=False"
        ) from exc
    found = _Findings()
    if found.expect(
        isinstance(model, ColearnModel) and isinstance(model.model_format, ModelFormat),
        f"mli_get_current_model() returned {model!r:.80}; return a ColearnModel with a ModelFormat",
    ):
        found.expect(
            model.model is not None or bool(model.model_file),
            "mli_get_current_model() returned a ColearnModel holding neither a model nor "
            "a model_file; put the exported bytes in model=",
        )
    found.expect(
        _current_id(learner) == start,
        "mli_get_current_model() changed the current weights; export without training",
    )
    found.done()


def check_restores_progress(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """(``restores_progress``) ``mli_restore_progress(n)`` takes any ``n >= 0``, and the
    proposals that follow still fit the current weights and leave them as they were."""
    found = _Findings()
    original = _current(learner)
    start = _id(original, "the current weights")
    with _restoring(learner, original):
        for made in (0, 1, 2):
            _call(f"mli_restore_progress({made})", partial(learner.mli_restore_progress, made))
            proposal = _propose(learner, round_index + made)
            try:
                check_weights(proposal, original)
            except WeightsError as exc:
                found.failures.append(
                    f"after mli_restore_progress({made}), the proposal does not fit the "
                    f"current weights: {exc}"
                )
            found.expect(
                _current_id(learner) == start,
                f"after mli_restore_progress({made}), mli_propose_weights() changed the "
                "current weights; restore only the state beyond the weights",
            )
    found.done()


def check_privacy_budget(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """(``private``) Every proposal carries a :class:`~colearning.TrainingSummary` with
    a :class:`~colearning.DiffPrivBudget` whose consumed epsilon and delta never exceed
    the target and never decrease.

    A learner that cannot afford another proposal says so with
    ``ErrorCodes.DP_BUDGET_EXCEEDED`` instead of training past its budget.
    """
    found = _Findings()
    original = _current(learner)
    spent: list[float] = []
    with _restoring(learner, original):
        for r in range(round_index, round_index + 3):
            summary = _propose(learner, r).training_summary
            budget = summary.dp_budget if isinstance(summary, TrainingSummary) else None
            if not found.expect(
                isinstance(budget, DiffPrivBudget),
                f"the proposal at round {r} carries training_summary={summary!r}; a private "
                "learner returns Weights(..., TrainingSummary(dp_budget=DiffPrivBudget(...)))",
            ):
                break
            assert isinstance(budget, DiffPrivBudget)
            eps, target = budget.consumed_epsilon, budget.target_epsilon
            found.expect(
                _is_score(eps) and 0 <= eps <= target,
                f"the proposal at round {r} reports consumed_epsilon={eps!r} against "
                f"target_epsilon={target!r}; check before training that the next proposal "
                "fits the budget, and return ErrorCodes.DP_BUDGET_EXCEEDED when it does not",
            )
            found.expect(
                _is_score(budget.consumed_delta)
                and 0 <= budget.consumed_delta <= budget.target_delta,
                f"the proposal at round {r} reports consumed_delta={budget.consumed_delta!r} "
                f"against target_delta={budget.target_delta!r}; keep delta within its target",
            )
            if spent and _is_score(eps):
                found.expect(
                    eps >= spent[-1],
                    f"consumed_epsilon went down from {spent[-1]!r} to {eps!r}; spent "
                    "privacy cannot be regained",
                )
            if _is_score(eps):
                spent.append(float(eps))
    found.done()
