"""Differentially private training for the PyTorch learner, with opacus.

:class:`DPTorchLearner` is a :class:`~colearning.learners.torch.TorchLearner` whose
proposals are trained with DP-SGD: every step samples each training row independently
(Poisson sampling), clips each row's gradient to ``max_grad_norm`` and adds Gaussian
noise. It changes only how a proposal is trained and whether one is made; scoring,
accepting and the weights' names are those of the plain learner, so private and
non-private learners share one model.

The budget is checked *before* training: if one more proposal would take the spent
epsilon past ``target_epsilon``, the learner does not train and returns its current
weights with ``ErrorCodes.DP_BUDGET_EXCEEDED``; the driver then skips its turn. So the
spend never exceeds the target, not even by one proposal.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from colearning.core.exceptions import require_extra

require_extra("opacus", "privacy", "differentially private training (DPTorchLearner)")

import torch  # noqa: E402 - after the check, so a missing extra names its pip line
from opacus import GradSampleModule  # noqa: E402
from opacus.data_loader import DPDataLoader  # noqa: E402
from opacus.optimizers import DPOptimizer  # noqa: E402
from opacus.validators import ModuleValidator  # noqa: E402
from torch import nn  # noqa: E402

from colearning.core.exceptions import ConfigError  # noqa: E402
from colearning.core.interface import (  # noqa: E402
    ErrorCodes,
    LearnerTags,
    TrainingSummary,
    Weights,
)
from colearning.data.types import LearnerData  # noqa: E402
from colearning.learners._base import round_seed  # noqa: E402
from colearning.learners.torch import (  # noqa: E402
    Batch,
    Loaders,
    TorchLearner,
    _ArraySplit,
    _LoaderSplit,
)
from colearning.privacy.accounting import DPConfig, ProposalBudget, sampling_plan  # noqa: E402

__all__ = ["DPTorchLearner"]


class DPTorchLearner(TorchLearner):
    """A :class:`~colearning.learners.torch.TorchLearner` that proposes with DP-SGD.

    Parameters
    ----------
    model
        The model; opacus must support every layer (no BatchNorm: use GroupNorm).
    data
        As for :class:`TorchLearner`. With loaders, the train loader's dataset and
        ``batch_size`` are used with opacus' Poisson-sampling ``DPDataLoader``.
    privacy
        The budget and DP-SGD settings.
    **kwargs
        Everything else :class:`TorchLearner` takes (``optimizer_factory``, ``epochs``,
        ``num_batches``, ``batch_size``, ``vote_metric``, ``device``, ``seed``, ...).

    Notes
    -----
    An epoch is ``int(n / batch_size)`` Poisson-sampled steps with expected batch size
    ``batch_size``. Every proposal runs the same number of steps, so the epsilon spent is
    a function of the number of proposals made (:attr:`budget`); an experiment that
    resumes calls :meth:`mli_restore_progress` to rebuild it.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from colearning.data.types import LearnerData
    >>> from colearning.privacy import DPConfig
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(90, 4)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
    >>> data = LearnerData(train=(X[:60], y[:60]), vote=(X[60:75], y[60:75]),
    ...                    test=(X[75:], y[75:]))
    >>> learner = DPTorchLearner(torch.nn.Linear(4, 2), data, batch_size=10,
    ...                          privacy=DPConfig(target_epsilon=8.0, noise_multiplier=1.0))
    >>> summary = learner.mli_propose_weights().training_summary
    >>> 0 < summary.dp_budget.consumed_epsilon <= 8.0
    True
    """

    def __init__(
        self,
        model: nn.Module,
        data: LearnerData | Loaders,
        *,
        privacy: DPConfig,
        **kwargs: Any,
    ) -> None:
        if not isinstance(privacy, DPConfig):
            raise ConfigError(
                f"privacy must be a colearning.privacy.DPConfig; got {type(privacy).__name__}"
            )
        check_model_for_dp(model)
        super().__init__(model, data, **kwargs)
        self.privacy = privacy
        self.sample_rate, self.steps_per_proposal = sampling_plan(
            len(self.train_set), self._train_batch_size(), self.epochs, self.num_batches
        )
        self.expected_batch_size = max(1, int(len(self.train_set) * self.sample_rate))
        self.budget = ProposalBudget(privacy, self.sample_rate, self.steps_per_proposal)
        # The noise and the sampling must be secret, or an observer who can replay them
        # can subtract the noise; an explicit noise_seed trades that for reproducibility.
        self._secret_seed = (
            privacy.noise_seed if privacy.noise_seed is not None else secrets.randbits(63)
        )

    @property
    def noise_multiplier(self) -> float:
        """The noise multiplier of DP-SGD (given, or derived from the planned proposals)."""
        return self.budget.noise_multiplier

    # -- the interface --------------------------------------------------------------------

    def mli_propose_weights(self) -> Weights:
        """Train with DP-SGD if the budget allows one more proposal.

        Returns
        -------
        Weights
            The proposal, with a :class:`~colearning.TrainingSummary` holding the budget
            spent including it; or, when one more proposal would exceed
            ``target_epsilon``, the *current* weights, untrained, with
            ``error_code=ErrorCodes.DP_BUDGET_EXCEEDED`` (the driver skips the turn).
        """
        if not self.budget.can_afford_next():
            return Weights(
                self.mli_get_current_weights().arrays,
                TrainingSummary(self.budget.budget(), ErrorCodes.DP_BUDGET_EXCEEDED),
            )
        arrays = self._train_from_current()
        self.budget.record_proposal()
        return Weights(arrays, TrainingSummary(self.budget.budget()))

    def mli_restore_progress(self, proposals_made: int) -> None:
        """Rebuild the accountant from the number of proposals made before a resume."""
        self.budget.restore(proposals_made)

    def mli_tags(self) -> LearnerTags:
        """Private, restores its accountant on resume; deterministic only when the noise
        is seeded (``DPConfig(noise_seed=...)``): secret noise is not reproducible."""
        return LearnerTags(
            deterministic=self.privacy.noise_seed is not None and self.reset_optimizer,
            exports_model=True,
            restores_progress=True,
            private=True,
        )

    # -- training -------------------------------------------------------------------------

    def _proposal_seed(self, round_index: int) -> int:
        return round_seed(self._secret_seed, round_index)

    def _train_batch_size(self) -> int:
        if isinstance(self.train_set, _LoaderSplit):
            size = self.train_set.loader.batch_size
            if size is None:
                raise ConfigError(
                    "the train loader must have a batch_size (not a batch_sampler) so that "
                    "DP-SGD can derive its sampling rate"
                )
            return int(size)
        return self.batch_size

    def _fit(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
    ) -> None:
        """DP-SGD: per-sample gradients (opacus hooks), clipping, noise, Poisson batches."""
        private = GradSampleModule(model)  # hooks live for this proposal only
        try:
            dp_optimizer = DPOptimizer(
                optimizer,
                noise_multiplier=self.noise_multiplier,
                max_grad_norm=self.privacy.max_grad_norm,
                expected_batch_size=self.expected_batch_size,
                generator=_noise_generator(generator, self.device),
            )
            params = [p for p in model.parameters() if p.requires_grad]
            for x, y in self._poisson_batches(generator):
                dp_optimizer.zero_grad(set_to_none=True)
                if len(y) == 0:
                    # An empty draw still takes a (noise-only) step, as the accounting
                    # assumes; skipping it would reveal that the batch was empty.
                    for p in params:
                        p.grad_sample = torch.zeros(  # type: ignore[attr-defined]
                            (0, *p.shape), device=p.device, dtype=p.dtype
                        )
                else:
                    x, y = x.to(self.device), y.to(self.device)
                    self.loss_fn(private(x), y).backward()
                dp_optimizer.step()
            dp_optimizer.zero_grad(set_to_none=True)
        finally:
            private._close()
            for p in model.parameters():
                if hasattr(p, "summed_grad"):
                    del p.summed_grad

    def _poisson_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """``steps_per_proposal`` batches, each row drawn with probability sample_rate."""
        split = self.train_set
        if isinstance(split, _ArraySplit):
            for _ in range(self.steps_per_proposal):
                drawn = torch.rand(len(split), generator=generator) < self.sample_rate
                idx = drawn.nonzero().view(-1)
                yield split.X[idx], split.y[idx]
            return
        assert isinstance(split, _LoaderSplit)
        loader = DPDataLoader(
            split.loader.dataset,
            sample_rate=self.sample_rate,
            collate_fn=split.loader.collate_fn,
            generator=generator,
        )
        left = self.steps_per_proposal
        while left > 0:
            for x, y in loader:
                yield x, y
                left -= 1
                if left == 0:
                    return


def _noise_generator(sampling: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device`` (opacus draws the noise where the gradients are),
    seeded from the sampling generator."""
    seed = int(torch.randint(2**62, (1,), generator=sampling))
    return torch.Generator(device=device).manual_seed(seed)


def check_model_for_dp(model: nn.Module) -> None:
    """Raise :class:`~colearning.ConfigError` if opacus cannot train ``model`` privately.

    Examples
    --------
    >>> check_model_for_dp(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)))
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.ConfigError: the model cannot be trained with DP-SGD ...
    """
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        found = "; ".join(str(e).strip() for e in errors)
        raise ConfigError(
            f"the model cannot be trained with DP-SGD (opacus reports: {found}); replace "
            "BatchNorm with GroupNorm (opacus.validators.ModuleValidator.fix(model) does it "
            "for you) and build every learner from the fixed model"
        )
