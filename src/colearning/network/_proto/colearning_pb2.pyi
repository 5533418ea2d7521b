from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_REASON_UNSPECIFIED: _ClassVar[FailureReason]
    RAISED: _ClassVar[FailureReason]
    BAD_ANSWER: _ClassVar[FailureReason]
    REFUSED: _ClassVar[FailureReason]
FAILURE_REASON_UNSPECIFIED: FailureReason
RAISED: FailureReason
BAD_ANSWER: FailureReason
REFUSED: FailureReason

class Failure(_message.Message):
    __slots__ = ("reason", "message", "need_bytes")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NEED_BYTES_FIELD_NUMBER: _ClassVar[int]
    reason: FailureReason
    message: str
    need_bytes: bool
    def __init__(self, reason: _Optional[_Union[FailureReason, str]] = ..., message: _Optional[str] = ..., need_bytes: _Optional[bool] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class Tags(_message.Message):
    __slots__ = ("deterministic", "exports_model", "restores_progress", "encoded_model", "private")
    DETERMINISTIC_FIELD_NUMBER: _ClassVar[int]
    EXPORTS_MODEL_FIELD_NUMBER: _ClassVar[int]
    RESTORES_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ENCODED_MODEL_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_FIELD_NUMBER: _ClassVar[int]
    deterministic: bool
    exports_model: bool
    restores_progress: bool
    encoded_model: bool
    private: bool
    def __init__(self, deterministic: _Optional[bool] = ..., exports_model: _Optional[bool] = ..., restores_progress: _Optional[bool] = ..., encoded_model: _Optional[bool] = ..., private: _Optional[bool] = ...) -> None: ...

class DiffPrivBudget(_message.Message):
    __slots__ = ("target_epsilon", "target_delta", "consumed_epsilon", "consumed_delta")
    TARGET_EPSILON_FIELD_NUMBER: _ClassVar[int]
    TARGET_DELTA_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_EPSILON_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_DELTA_FIELD_NUMBER: _ClassVar[int]
    target_epsilon: float
    target_delta: float
    consumed_epsilon: float
    consumed_delta: float
    def __init__(self, target_epsilon: _Optional[float] = ..., target_delta: _Optional[float] = ..., consumed_epsilon: _Optional[float] = ..., consumed_delta: _Optional[float] = ...) -> None: ...

class TrainingSummary(_message.Message):
    __slots__ = ("dp_budget", "error_code")
    DP_BUDGET_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    dp_budget: DiffPrivBudget
    error_code: str
    def __init__(self, dp_budget: _Optional[_Union[DiffPrivBudget, _Mapping]] = ..., error_code: _Optional[str] = ...) -> None: ...

class WeightsHeader(_message.Message):
    __slots__ = ("weights_id", "size", "by_id", "training_summary", "round_index")
    WEIGHTS_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BY_ID_FIELD_NUMBER: _ClassVar[int]
    TRAINING_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ROUND_INDEX_FIELD_NUMBER: _ClassVar[int]
    weights_id: str
    size: int
    by_id: bool
    training_summary: TrainingSummary
    round_index: int
    def __init__(self, weights_id: _Optional[str] = ..., size: _Optional[int] = ..., by_id: _Optional[bool] = ..., training_summary: _Optional[_Union[TrainingSummary, _Mapping]] = ..., round_index: _Optional[int] = ...) -> None: ...

class WeightsMessage(_message.Message):
    __slots__ = ("header", "chunk", "failure")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    header: WeightsHeader
    chunk: bytes
    failure: Failure
    def __init__(self, header: _Optional[_Union[WeightsHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Description(_message.Message):
    __slots__ = ("learner_id", "task", "weights_spec", "library_version", "protocol_version", "tags", "instance_id", "current_weights_id", "metric", "higher_is_better", "max_bytes")
    LEARNER_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_SPEC_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_WEIGHTS_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    learner_id: str
    task: str
    weights_spec: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    library_version: str
    protocol_version: int
    tags: Tags
    instance_id: str
    current_weights_id: str
    metric: str
    higher_is_better: bool
    max_bytes: int
    def __init__(self, learner_id: _Optional[str] = ..., task: _Optional[str] = ..., weights_spec: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., library_version: _Optional[str] = ..., protocol_version: _Optional[int] = ..., tags: _Optional[_Union[Tags, _Mapping]] = ..., instance_id: _Optional[str] = ..., current_weights_id: _Optional[str] = ..., metric: _Optional[str] = ..., higher_is_better: _Optional[bool] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class ProposeRequest(_message.Message):
    __slots__ = ("round_index",)
    ROUND_INDEX_FIELD_NUMBER: _ClassVar[int]
    round_index: int
    def __init__(self, round_index: _Optional[int] = ...) -> None: ...

class TestReply(_message.Message):
    __slots__ = ("failure", "vote", "vote_score", "test_score", "error", "criterion")
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    VOTE_SCORE_FIELD_NUMBER: _ClassVar[int]
    TEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CRITERION_FIELD_NUMBER: _ClassVar[int]
    failure: Failure
    vote: bool
    vote_score: float
    test_score: float
    error: str
    criterion: str
    def __init__(self, failure: _Optional[_Union[Failure, _Mapping]] = ..., vote: _Optional[bool] = ..., vote_score: _Optional[float] = ..., test_score: _Optional[float] = ..., error: _Optional[str] = ..., criterion: _Optional[str] = ...) -> None: ...

class AcceptReply(_message.Message):
    __slots__ = ("failure",)
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    failure: Failure
    def __init__(self, failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class CurrentWeightsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CurrentModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelHeader(_message.Message):
    __slots__ = ("model_format", "model_file", "size")
    MODEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FILE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    model_format: str
    model_file: str
    size: int
    def __init__(self, model_format: _Optional[str] = ..., model_file: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class ModelMessage(_message.Message):
    __slots__ = ("header", "chunk", "failure")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    header: ModelHeader
    chunk: bytes
    failure: Failure
    def __init__(self, header: _Optional[_Union[ModelHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class RestoreProgressRequest(_message.Message):
    __slots__ = ("proposals_made",)
    PROPOSALS_MADE_FIELD_NUMBER: _ClassVar[int]
    proposals_made: int
    def __init__(self, proposals_made: _Optional[int] = ...) -> None: ...

class RestoreProgressReply(_message.Message):
    __slots__ = ("failure",)
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    failure: Failure
    def __init__(self, failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("weights_id",)
    WEIGHTS_ID_FIELD_NUMBER: _ClassVar[int]
    weights_id: str
    def __init__(self, weights_id: _Optional[str] = ...) -> None: ...
