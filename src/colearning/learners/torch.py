"""The PyTorch learner: any ``nn.Module`` taking part in collective learning.

Weights are the model's ``state_dict()`` (parameters and buffers, such as BatchNorm's
running statistics) as named NumPy arrays on the CPU. A proposal trains a scratch copy
of the model, so the current model never changes until a proposal is accepted.

Determinism: a proposal is a function of the current weights, the data, ``seed`` and the
round index (``mli_set_round``). The data order comes from a ``torch.Generator`` seeded
from ``(seed, round_index)``, and the global torch RNG (dropout, a data loader's
shuffling) is forked and seeded from the same numbers for the duration of the call. On
the CPU this is bit-exact; on a GPU, kernels may be non-deterministic unless you call
``torch.use_deterministic_algorithms(True)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from colearning.core.exceptions import require_extra

require_extra("torch", "torch", "colearning.learners.torch (TorchLearner)")

import torch  # noqa: E402 - after the check, so a missing extra names its pip line
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from colearning.core.exceptions import ConfigError, DataError  # noqa: E402
from colearning.core.interface import (  # noqa: E402
    ColearnModel,
    LearnerTags,
    ModelFormat,
    Weights,
)
from colearning.data.types import LearnerData  # noqa: E402
from colearning.learners._base import LearnerBase, round_seed  # noqa: E402
from colearning.learners.metrics import (  # noqa: E402
    CLASSIFICATION,
    METRICS,
    REGRESSION,
    resolve_metric,
)
from colearning.learners.metrics import Metric as RegistryMetric  # noqa: E402
from colearning.learners.metrics import Task as MetricTask  # noqa: E402

__all__ = ["Loaders", "Metric", "TorchLearner", "default_optimizer", "round_seed"]

Metric = str | Callable[[np.ndarray, np.ndarray], float]
"""A name of :mod:`colearning.learners.metrics` (``"loss"``, ``"accuracy"``, ...) or
``f(y_true, outputs) -> float`` on NumPy arrays."""

Loaders = tuple["DataLoader[Any]", "DataLoader[Any]", "DataLoader[Any] | None"]
"""``(train, vote, test)`` data loaders yielding ``(inputs, targets)`` batches."""

Tensor = torch.Tensor
Batch = tuple[Tensor, Tensor]


def default_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam with learning rate 1e-3."""
    return torch.optim.Adam(params, lr=1e-3)


# -- data ---------------------------------------------------------------------------------


class _Split:
    """One set of data (train, vote or test) as the learner iterates it."""

    def __len__(self) -> int:
        raise NotImplementedError

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One epoch in an order drawn from ``generator``."""
        raise NotImplementedError

    def in_order(self, batch_size: int) -> Iterator[Batch]:
        raise NotImplementedError

    def sample_input(self) -> Tensor:
        """Two rows of inputs (an export needs a batch larger than 1)."""
        raise NotImplementedError


class _ArraySplit(_Split):
    """NumPy arrays held as CPU tensors; batches are index gathers, no DataLoader."""

    def __init__(self, xy: tuple[np.ndarray, np.ndarray], what: str) -> None:
        X, y = np.asarray(xy[0]), np.asarray(xy[1])
        if len(X) != len(y):
            raise DataError(f"the {what} set has {len(X)} inputs but {len(y)} targets")
        self.X = torch.from_numpy(_as_float32(X, f"{what} inputs"))
        self.y = torch.from_numpy(_as_target(y, f"{what} targets"))

    def __len__(self) -> int:
        return len(self.y)

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        order = torch.randperm(len(self), generator=generator)
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            yield self.X[idx], self.y[idx]

    def in_order(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self), batch_size):
            yield self.X[start : start + batch_size], self.y[start : start + batch_size]

    def sample_input(self) -> Tensor:
        return self.X[[0, 0]]


class _LoaderSplit(_Split):
    """A user's DataLoader; its own sampler decides the order (seeded, see module doc)."""

    def __init__(self, loader: DataLoader[Any], what: str) -> None:
        if not isinstance(loader, DataLoader):
            raise ConfigError(
                f"the {what} loader must be a torch.utils.data.DataLoader; got "
                f"{type(loader).__name__}"
            )
        self.loader = loader
        self.what = what

    def __len__(self) -> int:
        return len(self.loader.dataset)  # type: ignore[arg-type]

    def _batches(self) -> Iterator[Batch]:
        for batch in self.loader:
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise ConfigError(
                    f"the {self.what} loader must yield (inputs, targets) pairs; got "
                    f"{type(batch).__name__}"
                )
            yield batch[0], batch[1]

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        return self._batches()

    def in_order(self, batch_size: int) -> Iterator[Batch]:
        return self._batches()

    def sample_input(self) -> Tensor:
        x, _ = next(self._batches())
        return x[[0, 0]]


def _as_float32(X: np.ndarray, what: str) -> np.ndarray:
    if X.dtype.kind not in "fiub":
        raise DataError(f"{what} must be numeric; got dtype {X.dtype}")
    return _writable(np.ascontiguousarray(X, dtype=np.float32))


def _as_target(y: np.ndarray, what: str) -> np.ndarray:
    if y.dtype.kind in "iub":
        return _writable(np.ascontiguousarray(y, dtype=np.int64))
    if y.dtype.kind == "f":
        return _writable(np.ascontiguousarray(y, dtype=np.float32))
    raise DataError(f"{what} must be integer class labels or floats; got dtype {y.dtype}")


def _writable(a: np.ndarray) -> np.ndarray:
    # torch cannot wrap read-only memory (it warns); such data is copied once
    return a if a.flags.writeable else a.copy()


def _splits(data: LearnerData | Sequence[Any]) -> tuple[_Split, _Split, _Split | None]:
    if isinstance(data, LearnerData):
        test = _ArraySplit(data.test, "test") if len(data.test[1]) else None
        return _ArraySplit(data.train, "train"), _ArraySplit(data.vote, "vote"), test
    if isinstance(data, (tuple, list)) and len(data) == 3:
        train, vote, test = data
        return (
            _LoaderSplit(train, "train"),
            _LoaderSplit(vote, "vote"),
            None if test is None else _LoaderSplit(test, "test"),
        )
    raise ConfigError(
        "data must be a colearning LearnerData or a (train, vote, test) tuple of "
        f"DataLoaders (test may be None); got {type(data).__name__}"
    )


# -- the learner ----------------------------------------------------------------------------


class TorchLearner(LearnerBase):
    """A learner around a PyTorch model.

    Parameters
    ----------
    model
        The model; the learner owns it from now on, and ``learner.model`` always holds
        the current (last accepted) weights. A scratch copy is made for training and
        scoring.
    data
        :class:`~colearning.data.types.LearnerData` (NumPy arrays; inputs become
        float32, integer targets int64 and float targets float32), or a
        ``(train, vote, test)`` tuple of ``DataLoader`` s yielding ``(inputs, targets)``
        (``test`` may be ``None``).
    optimizer_factory
        ``params -> optimizer``; default Adam with learning rate 1e-3.
    loss_fn
        Training loss; must return the *mean* over the batch (the default
        ``nn.CrossEntropyLoss()`` does).
    epochs
        Passes over the training data per proposal.
    num_batches
        If given, each proposal trains exactly this many batches instead of ``epochs``
        epochs (reshuffling at the end of each pass).
    batch_size
        Training batch size (array data only; a loader has its own).
    eval_batch_size
        Batch size when scoring; default ``max(batch_size, 256)``.
    vote_metric
        Score on the vote set that decides the vote: ``"loss"`` (default, mean of
        ``loss_fn`` weighted by batch size, lower is better), ``"accuracy"`` (computed
        on the device), another name of :mod:`colearning.learners.metrics` (integer
        targets: ``"balanced_accuracy"``, ``"f1_macro"``, ``"roc_auc"``,
        ``"log_loss"``, ``"neg_log_loss"``, with probabilities the softmax of the
        outputs; float targets: ``"rmse"``, ``"mae"``, ``"r2"``), or a callable
        ``f(y_true, outputs) -> float`` on NumPy arrays (``outputs`` are the model's
        raw outputs, e.g. logits).
    higher_is_better
        Direction of a callable ``vote_metric`` (required then).
    test_metric
        Score on the test set: default ``"accuracy"`` when the targets are integer
        class labels and ``"loss"`` otherwise, a name as for ``vote_metric``, or a
        callable.
    test_higher_is_better
        Direction of a callable ``test_metric`` (required then).
    reset_optimizer
        Build a fresh optimizer for every proposal (default). With ``False`` the
        optimizer state (e.g. Adam's moments) carries over between proposals, which
        makes a resumed experiment differ from an uninterrupted one.
    device
        ``"cpu"`` or ``"cuda"`` (``"cuda:N"``); data moves to it batch by batch and
        weights always come back to the CPU.
    seed
        Seeds each proposal together with the round index; >= 0.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from colearning.data.types import LearnerData
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
    >>> data = LearnerData(train=(X[:40], y[:40]), vote=(X[40:50], y[40:50]),
    ...                    test=(X[50:], y[50:]))
    >>> learner = TorchLearner(torch.nn.Linear(4, 2), data, batch_size=8)
    >>> sorted(learner.mli_get_current_weights().arrays)
    ['bias', 'weight']
    >>> verdict = learner.mli_test_weights(learner.mli_propose_weights())
    >>> isinstance(verdict.vote, bool)
    True
    """

    def __init__(
        self,
        model: nn.Module,
        data: LearnerData | Loaders,
        *,
        optimizer_factory: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] = (
            default_optimizer
        ),
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        epochs: int = 1,
        num_batches: int | None = None,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        vote_metric: Metric = "loss",
        higher_is_better: bool | None = None,
        test_metric: Metric | None = None,
        test_higher_is_better: bool | None = None,
        reset_optimizer: bool = True,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        _check_count("epochs", epochs)
        _check_count("batch_size", batch_size)
        if num_batches is not None:
            _check_count("num_batches", num_batches)
        if eval_batch_size is not None:
            _check_count("eval_batch_size", eval_batch_size)
        super().__init__(seed=seed)
        self.device = resolve_device(device)
        self.train_set, self.vote_set, self.test_set = _splits(data)
        if len(self.train_set) == 0:
            raise DataError("the train set is empty; a learner needs data to propose")
        if len(self.vote_set) == 0:
            raise DataError("the vote set is empty; a learner needs data to vote with")
        self.epochs = epochs
        self.num_batches = num_batches
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 256)
        self.optimizer_factory = optimizer_factory
        self.loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
        task: MetricTask | None = None
        if isinstance(self.train_set, _ArraySplit):
            task = "regression" if self.train_set.y.is_floating_point() else "classification"
        allowed = ("loss", *(CLASSIFICATION if task != "regression" else ()))
        allowed += REGRESSION if task != "classification" else ()
        self._vote_metric = resolve_metric(
            vote_metric, higher_is_better, allowed=allowed, what="vote_metric", task=task
        )
        if test_metric is None:
            test_metric = "loss" if task == "regression" else "accuracy"
        self._test_metric = resolve_metric(
            test_metric,
            test_higher_is_better,
            allowed=allowed,
            what="test_metric",
            task=task,
            direction_name="test_higher_is_better",
        )
        self.reset_optimizer = reset_optimizer

        self.model = model.to(self.device).eval()
        self._work = copy.deepcopy(self.model)  # trains and scores; never the current model
        self._optimizer: torch.optim.Optimizer | None = None
        self._start(Weights(_snapshot(self.model)))

    # -- the interface --------------------------------------------------------------------

    def mli_propose_weights(self) -> Weights:
        """Train a copy of the current model and return its weights."""
        return Weights(self._train_from_current())

    def _install(self, weights: Weights) -> None:
        _load(self.model, weights)

    def _as_current(self, weights: Weights) -> Weights:
        # Only the arrays: not another learner's training summary, nor its tensors.
        return Weights(weights.arrays)

    def _get_train_split(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not isinstance(self.train_set, _ArraySplit):
            return None  # a user's DataLoader: its data is not ours to read
        return self.train_set.X.numpy(), self.train_set.y.numpy()

    def _set_train_split(self, X: np.ndarray, y: np.ndarray) -> None:
        self.train_set = _ArraySplit((X, y), "train")

    def mli_tags(self) -> LearnerTags:
        """Deterministic unless ``reset_optimizer=False`` (optimizer state then carries
        over between proposals); exports ONNX."""
        return LearnerTags(deterministic=self.reset_optimizer, exports_model=True)

    def mli_get_current_model(self) -> ColearnModel:
        """The current model as ONNX bytes (``torch.onnx.export``, dynamic batch size).

        The input is named ``"input"`` and the output ``"output"``; the sample input
        is taken from the training data.
        """
        return ColearnModel(
            ModelFormat.ONNX, model=export_onnx(self.model, self.train_set.sample_input())
        )

    # -- scores ---------------------------------------------------------------------------

    def _scores(self, weights: Weights) -> tuple[float, float | None]:
        _load(self._work, weights)
        vote = self._score_on(self._work, self.vote_set, self._vote_metric)
        test = (
            None
            if self.test_set is None
            else self._score_on(self._work, self.test_set, self._test_metric)
        )
        return vote, test

    def _score_on(self, model: nn.Module, split: _Split, metric: RegistryMetric) -> float:
        """``metric`` of ``model`` on ``split``, in eval mode without grads."""
        model.eval()
        name = None
        if metric is METRICS["loss"]:
            name = "loss"
        elif metric is METRICS["accuracy"]:
            name = "accuracy"  # counted on the device, no outputs copied back
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        outputs: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        with torch.inference_mode():
            for x, y in split.in_order(self.eval_batch_size):
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                out = model(x)
                n = len(y)
                count += n
                if name == "loss":
                    # loss_fn gives the batch mean: weight it by the batch's size
                    total += self.loss_fn(out, y).double() * n
                elif name == "accuracy":
                    pred = (
                        out.argmax(dim=1)
                        if out.ndim == 2 and out.shape[1] > 1
                        else out.reshape(n) > 0
                    )
                    total += (pred.reshape(n) == y.reshape(n)).sum()
                else:
                    outputs.append(out.float().cpu().numpy())
                    targets.append(y.cpu().numpy())
        if name is not None:
            return float(total.item()) / count
        y_all, out_all = np.concatenate(targets), np.concatenate(outputs)
        return metric(y_all, _metric_output(out_all, y_all, metric), None)

    # -- training -------------------------------------------------------------------------

    def _train_from_current(self) -> dict[str, np.ndarray]:
        """Load the current weights into the scratch model, train it, snapshot it."""
        seed = self._proposal_seed(self.round_index)
        self._round += 1  # a caller that never sets rounds still gets fresh ones
        self._work.load_state_dict(self.model.state_dict(), strict=True)
        cuda = self.device.type == "cuda"
        devices = [_cuda_index(self.device)] if cuda else []
        with torch.random.fork_rng(devices=devices, device_type="cuda" if cuda else None):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            self._work.train()
            self._fit(self._work, self._optimizer_for(self._work), generator)
        self._work.eval()
        return _snapshot(self._work)

    def _proposal_seed(self, round_index: int) -> int:
        """The seed of the proposal for ``round_index``."""
        return round_seed(self.seed, round_index)

    def _optimizer_for(self, model: nn.Module) -> torch.optim.Optimizer:
        if self.reset_optimizer or self._optimizer is None:
            self._optimizer = self.optimizer_factory(model.parameters())
        return self._optimizer

    def _fit(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
    ) -> None:
        """Train ``model`` in place for one proposal."""
        for x, y in self._train_batches(generator):
            optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(
                model(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)
            )
            loss.backward()
            optimizer.step()

    def _train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """``epochs`` shuffled passes, or exactly ``num_batches`` batches."""
        if self.num_batches is None:
            for _ in range(self.epochs):
                yield from self.train_set.shuffled(self.batch_size, generator)
            return
        left = self.num_batches
        while left > 0:
            produced = 0
            for batch in self.train_set.shuffled(self.batch_size, generator):
                yield batch
                produced += 1
                left -= 1
                if left == 0:
                    return
            if produced == 0:
                raise DataError("the train loader yielded no batches")


# -- helpers --------------------------------------------------------------------------------


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, refusing CUDA where PyTorch sees no GPU.

    Raises
    ------
    ConfigError
        If the device string is unknown, or names CUDA on a machine without one.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'); got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={str(device)!r} but no CUDA GPU is visible to PyTorch; use device='cpu'"
        )
    return resolved


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _check_count(name: str, value: object) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be an integer >= 1; got {value!r}")


def _metric_output(outputs: np.ndarray, y: np.ndarray, metric: RegistryMetric) -> np.ndarray:
    """What ``metric`` needs from a model's raw outputs (logits, or values)."""
    if metric.output == "raw":
        return outputs
    columns = outputs.ndim == 2 and outputs.shape[1] > 1
    flat = outputs.reshape(len(outputs), -1)[:, 0] if not columns else outputs
    if metric.output == "predictions":
        if columns:
            return np.asarray(outputs.argmax(axis=1))
        if y.dtype.kind in "iub":  # one logit per row: class 1 where it is positive
            return (flat > 0).astype(np.int64)
        return flat
    logits = outputs.astype(np.float64)
    if columns:  # probabilities: the softmax of the outputs, as CrossEntropyLoss reads them
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
    return np.asarray(1.0 / (1.0 + np.exp(-flat.astype(np.float64))))


def _snapshot(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's state as fresh CPU arrays (never views of the model's tensors)."""
    return {
        name: tensor.detach().to("cpu", copy=True).numpy()
        for name, tensor in model.state_dict().items()
    }


def _load(model: nn.Module, weights: Weights) -> None:
    # The arrays are read-only; torch cannot wrap read-only memory without a warning,
    # so each is copied once before load_state_dict copies it into the model.
    state = {name: torch.from_numpy(np.array(a)) for name, a in weights.arrays.items()}
    model.load_state_dict(state, strict=True)


def export_onnx(model: nn.Module, sample_input: Tensor) -> bytes:
    """``model`` as ONNX bytes with a dynamic batch dimension (model left unchanged).

    Uses the ``torch.export``-based exporter (needs ``onnxscript``).
    """
    require_extra("onnxscript", "torch", "exporting a torch model to ONNX")
    clone = copy.deepcopy(model).to("cpu").eval()
    program = torch.onnx.export(
        clone,
        (sample_input.to("cpu"),),
        dynamo=True,
        input_names=["input"],
        output_names=["output"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    if program is None:  # pragma: no cover - only without dynamo
        raise RuntimeError("torch.onnx.export returned no program")
    return bytes(program.model_proto.SerializeToString())
