"""Values <-> protobuf messages: every ``*_to_proto`` has its ``*_from_proto``.

Protobuf types never leave :mod:`colearning.network`: the server and the pool turn them
into the core's values here, and ``tests/network/test_convert.py`` round-trips each pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from colearning.core.codec import DTYPES, MAX_ARRAYS, MAX_DIMS, WeightsSpec
from colearning.core.exceptions import WeightsError
from colearning.core.interface import (
    DiffPrivBudget,
    ErrorCodes,
    LearnerTags,
    ProposedWeights,
    TrainingSummary,
)
from colearning.core.protocol import Failure, Reason
from colearning.network._proto import colearning_pb2 as pb

#: Bumped whenever a change to the schema would make an older peer misread a message.
PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class LearnerDescription:
    """What a learner server says about itself (its answer to ``Describe``)."""

    learner_id: str
    task: str
    spec: WeightsSpec
    library_version: str
    protocol_version: int
    tags: LearnerTags
    instance_id: str
    current_weights_id: str
    metric: str = "score"
    higher_is_better: bool = True
    max_bytes: int = 0


@dataclass(frozen=True)
class RemoteFailure:
    """A failure the learner reported in its reply (as opposed to a transport failure).

    ``need_bytes`` says the learner does not hold the weights a by-id header named.
    """

    reason: Reason
    message: str
    need_bytes: bool = False

    def as_failure(self) -> Failure:
        return Failure(self.reason, self.message)


# -- weights spec -------------------------------------------------------------------------


def spec_to_proto(spec: WeightsSpec) -> list[pb.TensorSpec]:
    return [pb.TensorSpec(name=n, dtype=d, shape=list(s)) for n, d, s in spec.entries]


#: The dtypes a spec may name: those the codec carries, as NumPy writes them.
_SPEC_DTYPES = frozenset(np.dtype(code).str for code in DTYPES.values())


def spec_from_proto(entries: Sequence[pb.TensorSpec]) -> WeightsSpec:
    """The spec a learner declares, checked as the codec checks a header: distinct
    names, dtypes the codec carries, shapes of at most MAX_DIMS sizes >= 0."""
    if len(entries) > MAX_ARRAYS:
        raise WeightsError(f"the weights spec lists {len(entries)} arrays; at most {MAX_ARRAYS}")
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise WeightsError("the weights spec names an array twice")
    for e in entries:
        if e.dtype not in _SPEC_DTYPES:
            raise WeightsError(
                f"the weights spec gives {e.name[:40]!r} dtype {e.dtype[:20]!r}; known: "
                f"{sorted(_SPEC_DTYPES)}"
            )
        if len(e.shape) > MAX_DIMS or any(d < 0 for d in e.shape):
            raise WeightsError(
                f"the weights spec gives {e.name[:40]!r} shape {list(e.shape)[:8]}; a shape is "
                f"at most {MAX_DIMS} sizes >= 0"
            )
    return WeightsSpec(tuple((e.name, e.dtype, tuple(int(x) for x in e.shape)) for e in entries))


# -- tags -------------------------------------------------------------------------------------


def tags_to_proto(tags: LearnerTags) -> pb.Tags:
    return pb.Tags(
        deterministic=tags.deterministic,
        exports_model=tags.exports_model,
        restores_progress=tags.restores_progress,
        encoded_model=tags.encoded_model,
        private=tags.private,
    )


def tags_from_proto(msg: pb.Tags) -> LearnerTags:
    return LearnerTags(
        deterministic=msg.deterministic,
        exports_model=msg.exports_model,
        restores_progress=msg.restores_progress,
        encoded_model=msg.encoded_model,
        private=msg.private,
    )


# -- training summary -------------------------------------------------------------------


def summary_to_proto(summary: TrainingSummary) -> pb.TrainingSummary:
    msg = pb.TrainingSummary(
        error_code="" if summary.error_code is None else summary.error_code.value
    )
    dp = summary.dp_budget
    if dp is not None:
        msg.dp_budget.CopyFrom(
            pb.DiffPrivBudget(
                target_epsilon=dp.target_epsilon,
                target_delta=dp.target_delta,
                consumed_epsilon=dp.consumed_epsilon,
                consumed_delta=dp.consumed_delta,
            )
        )
    return msg


def summary_from_proto(msg: pb.TrainingSummary) -> TrainingSummary:
    dp = None
    if msg.HasField("dp_budget"):
        b = msg.dp_budget
        dp = DiffPrivBudget(b.target_epsilon, b.target_delta, b.consumed_epsilon, b.consumed_delta)
    codes = {c.value: c for c in ErrorCodes}
    if msg.error_code and msg.error_code not in codes:
        raise WeightsError(
            f"training summary has error code {msg.error_code!r}; known codes are {sorted(codes)}"
        )
    return TrainingSummary(dp, codes.get(msg.error_code) if msg.error_code else None)


# -- failures ---------------------------------------------------------------------------------

_REASONS = {
    Reason.RAISED: pb.RAISED,
    Reason.BAD_ANSWER: pb.BAD_ANSWER,
}


def failure_to_proto(failure: RemoteFailure) -> pb.Failure:
    code = _REASONS.get(failure.reason, pb.REFUSED)
    return pb.Failure(reason=code, message=failure.message, need_bytes=failure.need_bytes)


def failure_from_proto(msg: pb.Failure) -> RemoteFailure:
    # a learner that refused a request reports an error of its own: "raised"
    reason = Reason.BAD_ANSWER if msg.reason == pb.BAD_ANSWER else Reason.RAISED
    return RemoteFailure(reason, msg.message, msg.need_bytes)


# -- verdicts ---------------------------------------------------------------------------------


def read_verdict(answer: object) -> tuple[str, float | None, float | None]:
    """``(problem, vote_score, test_score)`` of a learner's answer to a test; problem is ""
    for a valid answer. The same reading as the driver's, made where the answer is (a
    mapping of scores, Colearn's later form, becomes the criterion's number)."""
    if not isinstance(answer, ProposedWeights):
        return (
            f"answered {type(answer).__name__}; mli_test_weights must return "
            "colearning.ProposedWeights",
            None,
            None,
        )
    if not isinstance(answer.vote, bool):
        return f"answered vote={answer.vote!r}; a vote must be True or False", None, None
    scores: list[float | None] = []
    for name in ("vote_score", "test_score"):
        raw: Any = getattr(answer, name)
        if isinstance(raw, Mapping):
            key = answer.criterion if answer.criterion in raw else None
            if key is None and len(raw) == 1:
                key = next(iter(raw))
            if key is None:
                return f"answered {name}={raw!r} without a criterion naming its entry", None, None
            raw = raw[key]
        if raw is None:
            scores.append(None)
            continue
        try:
            number = float(raw)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(raw, bool | str) or not math.isfinite(number):
            return f"answered {name}={raw!r}; scores must be finite numbers or None", None, None
        scores.append(number)
    return "", scores[0], scores[1]


def verdict_to_proto(answer: ProposedWeights) -> pb.TestReply:
    """A valid answer (see :func:`read_verdict`) as a reply."""
    problem, vote_score, test_score = read_verdict(answer)
    if problem:
        raise ValueError(problem)
    msg = pb.TestReply(vote=bool(answer.vote))
    if vote_score is not None:
        msg.vote_score = vote_score
    if test_score is not None:
        msg.test_score = test_score
    if answer.error is not None:
        msg.error = str(answer.error)
    if answer.criterion is not None:
        msg.criterion = str(answer.criterion)
    return msg


def verdict_from_proto(msg: pb.TestReply) -> ProposedWeights:
    return ProposedWeights(
        weights=None,
        vote_score=msg.vote_score if msg.HasField("vote_score") else None,
        test_score=msg.test_score if msg.HasField("test_score") else None,
        vote=msg.vote,
        error=msg.error if msg.HasField("error") else None,
        criterion=msg.criterion if msg.HasField("criterion") else None,
    )


# -- description ----------------------------------------------------------------------------


def description_to_proto(d: LearnerDescription) -> pb.Description:
    return pb.Description(
        learner_id=d.learner_id,
        task=d.task,
        weights_spec=spec_to_proto(d.spec),
        library_version=d.library_version,
        protocol_version=d.protocol_version,
        tags=tags_to_proto(d.tags),
        instance_id=d.instance_id,
        current_weights_id=d.current_weights_id,
        metric=d.metric,
        higher_is_better=d.higher_is_better,
        max_bytes=d.max_bytes,
    )


def description_from_proto(msg: pb.Description) -> LearnerDescription:
    return LearnerDescription(
        learner_id=msg.learner_id,
        task=msg.task,
        spec=spec_from_proto(msg.weights_spec),
        library_version=msg.library_version,
        protocol_version=int(msg.protocol_version),
        tags=tags_from_proto(msg.tags),
        instance_id=msg.instance_id,
        current_weights_id=msg.current_weights_id,
        metric=msg.metric,
        higher_is_better=msg.higher_is_better,
        max_bytes=int(msg.max_bytes),
    )
