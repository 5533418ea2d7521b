"""``colearn.onnxutils``: ``convert_model_to_onnx``, on this library's exporters.

The framework is recognised from the model's classes, so nothing is imported until a
model of that framework is converted.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError, require_extra

__all__ = ["convert_model_to_onnx", "deser_model"]

_SUPPORTED = (
    "convert_model_to_onnx takes a fitted scikit-learn estimator, an XGBoost model or "
    "Booster, a Keras model, or a PyTorch nn.Module (with sample_input=)"
)


def _framework(model: Any) -> str | None:
    """The framework a model belongs to, from the modules of its classes.

    XGBoost's scikit-learn models also derive from scikit-learn's classes, and a
    Keras 3 model on the PyTorch backend derives from ``torch.nn.Module``, so those
    two are looked for first.
    """
    roots = {cls.__module__.split(".", 1)[0] for cls in type(model).__mro__}
    for framework, modules in (
        ("xgboost", {"xgboost"}),
        ("keras", {"keras", "tf_keras", "tensorflow"}),
        ("sklearn", {"sklearn"}),
        ("torch", {"torch"}),
    ):
        if roots & modules:
            return framework
    return None


def convert_model_to_onnx(model: Any, sample_input: Any = None) -> bytes:
    """``model`` as serialized ONNX bytes, ready for ``ColearnModel(model=...)``.

    Colearn's function of the same name returned an ``onnx.ModelProto``; this one
    returns its bytes (``deser_model`` gives the ``ModelProto`` back), which is what
    ``colearn export`` writes. Unlike Colearn it also converts PyTorch models.

    Parameters
    ----------
    model
        A fitted scikit-learn estimator (a random forest goes through
        ``colearning.learners.forest.to_onnx``), an XGBoost ``Booster`` or scikit-learn
        style XGBoost model (``colearning.learners.xgboost.to_onnx``), a built Keras
        model, or a PyTorch ``nn.Module`` (``colearning.learners.torch.export_onnx``).
    sample_input
        PyTorch only: one example input tensor (its first dimension becomes the
        dynamic batch size). A module whose first layer is ``nn.Linear`` does without.

    Raises
    ------
    ConfigError
        If the model is of no supported framework, is not fitted, or is a PyTorch
        module whose input shape cannot be known.
    MissingExtraError
        If the converter the framework needs is not installed (names the extra).
    """
    framework = _framework(model)
    if framework == "xgboost":
        return _xgboost(model)
    if framework == "sklearn":
        return _sklearn(model)
    if framework == "keras":
        return _keras(model)
    if framework == "torch":
        return _torch(model, sample_input)
    raise ConfigError(f"cannot convert a {type(model).__name__} to ONNX; {_SUPPORTED}")


def _n_features(model: Any) -> int:
    n = getattr(model, "n_features_in_", None)
    if n is None:
        raise ConfigError(
            f"the {type(model).__name__} is not fitted (it has no n_features_in_), so its "
            "input size is unknown; fit it before converting it to ONNX"
        )
    return int(n)


def _sklearn(model: Any) -> bytes:
    require_extra("skl2onnx", "sklearn", "converting a scikit-learn model to ONNX")
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    n_features = _n_features(model)
    if isinstance(model, RandomForestClassifier | RandomForestRegressor):
        from colearning.learners.forest import to_onnx

        return to_onnx(model, n_features)

    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    # plain probability tensors rather than a list of {class: probability} maps
    options = {id(model): {"zipmap": False}} if is_classifier(model) else None
    try:
        onx = convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            options=options,
        )
    except Exception as exc:  # skl2onnx raises many types for what it cannot convert
        raise ConfigError(
            f"skl2onnx cannot convert this {type(model).__name__} to ONNX "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return bytes(onx.SerializeToString())


def _xgboost(model: Any) -> bytes:
    require_extra("onnxmltools", "xgboost", "converting an XGBoost model to ONNX")
    from colearning.learners.xgboost import to_onnx

    if hasattr(model, "get_booster"):  # the scikit-learn style XGBClassifier & co.
        return to_onnx(model.get_booster(), _n_features(model))
    return to_onnx(model, int(model.num_features()))


def _keras(model: Any) -> bytes:
    if not hasattr(model, "export"):
        raise ConfigError(
            f"cannot convert a {type(model).__name__} to ONNX: only Keras 3 models "
            "(model.export) are supported"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer chatter about constants
                model.export(str(path), format="onnx", verbose=False)
        except ValueError as exc:  # e.g. "The model provided has never called."
            raise ConfigError(
                f"Keras cannot export this {type(model).__name__} to ONNX ({exc}); call the "
                "model once (model.predict on one batch) so that its input shape is known"
            ) from exc
        return path.read_bytes()


def _torch(model: Any, sample_input: Any) -> bytes:
    import torch

    from colearning.learners.torch import export_onnx

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"cannot convert a {type(model).__name__} to ONNX; {_SUPPORTED}")
    if sample_input is None:
        first = next((m for m in model.modules() if not list(m.children())), None)
        if not isinstance(first, torch.nn.Linear):
            raise ConfigError(
                f"cannot know the input shape of this {type(model).__name__}; pass one "
                "example input: convert_model_to_onnx(model, sample_input=torch.zeros(1, "
                "...)) with the shape the model takes"
            )
        sample_input = torch.zeros(1, first.in_features)
    return export_onnx(model, sample_input)


def deser_model(model: bytes) -> Any:
    """The ``onnx.ModelProto`` of serialized ONNX bytes (Colearn's helper)."""
    require_extra("onnx", "export", "reading an ONNX model")
    import onnx

    return onnx.load_model_from_string(model)
