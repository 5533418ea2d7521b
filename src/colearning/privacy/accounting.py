"""Privacy-budget arithmetic for learners that train with DP-SGD.

Everything here is plain arithmetic on numbers; opacus' accountants do the privacy
analysis and are imported only when an epsilon is computed (this module imports neither
torch nor opacus at import time).

A private learner makes *proposals*; every proposal runs the same number of DP-SGD
steps with the same noise multiplier and sampling rate. The privacy spent is therefore
a function of one integer, the number of proposals made, which is what makes the budget
easy to check before training and to rebuild when an experiment resumes.

Examples
--------
>>> plan = sampling_plan(n_samples=800, batch_size=64, epochs=1)
>>> plan
(0.08, 12)
>>> budget = ProposalBudget(
...     DPConfig(target_epsilon=8.0, noise_multiplier=1.1), *plan)
>>> budget.can_afford_next()
True
>>> round(budget.epsilon_after(4), 2)
3.91
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from colearning.core.exceptions import ConfigError, require_extra
from colearning.core.interface import DiffPrivBudget

ACCOUNTANTS = ("rdp", "prv")

# opacus' default RDP orders stop at 63; larger ones give tighter bounds (and silence
# opacus' "optimal order is the largest alpha" warning) when little is spent per step.
_RDP_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + list(range(64, 257, 8))


@dataclass(frozen=True)
class DPConfig:
    """How a learner trains privately: the budget and the DP-SGD settings.

    Parameters
    ----------
    target_epsilon
        The total epsilon this learner may spend over all its proposals; > 0.
    target_delta
        The delta of the guarantee, in (0, 1); choose it well below 1 / (rows of
        training data), e.g. 1e-5.
    max_grad_norm
        Per-sample gradients are clipped to this L2 norm; > 0.
    noise_multiplier
        Standard deviation of the Gaussian noise, in units of ``max_grad_norm``; > 0.
        Give this *or* ``planned_proposals``; with neither, 1.0.
    planned_proposals
        Derive the noise multiplier so that exactly this many proposals fit in the
        budget (opacus' ``get_noise_multiplier``); >= 1.
    accountant
        ``"rdp"`` (Rényi DP, the default) or ``"prv"`` (privacy random variables,
        tighter and slower).
    noise_seed
        ``None`` (default): DP-SGD's noise and batch sampling come from a secret seed
        drawn from the operating system, as the guarantee requires. An integer makes
        proposals reproducible, for tests and research only: anyone who knows it can
        regenerate the noise and subtract it, which voids the guarantee.
    """

    target_epsilon: float
    target_delta: float = 1e-5
    max_grad_norm: float = 1.0
    noise_multiplier: float | None = None
    planned_proposals: int | None = None
    accountant: str = "rdp"
    noise_seed: int | None = None

    def __post_init__(self) -> None:
        if not (_is_real(self.target_epsilon) and 0 < self.target_epsilon < math.inf):
            raise ConfigError(
                f"target_epsilon must be a finite number > 0; got {self.target_epsilon!r} "
                "(typical values are 1 to 10)"
            )
        if not (_is_real(self.target_delta) and 0 < self.target_delta < 1):
            raise ConfigError(
                f"target_delta must be in (0, 1); got {self.target_delta!r} (use e.g. 1e-5, "
                "well below 1 / rows of training data)"
            )
        if not (_is_real(self.max_grad_norm) and 0 < self.max_grad_norm < math.inf):
            raise ConfigError(
                f"max_grad_norm must be a finite number > 0; got {self.max_grad_norm!r} "
                "(1.0 is a common choice)"
            )
        if self.noise_multiplier is not None and self.planned_proposals is not None:
            raise ConfigError(
                "give noise_multiplier or planned_proposals, not both; got "
                f"noise_multiplier={self.noise_multiplier} and "
                f"planned_proposals={self.planned_proposals}"
            )
        if self.noise_multiplier is not None and not (
            _is_real(self.noise_multiplier) and 0 < self.noise_multiplier < math.inf
        ):
            raise ConfigError(
                f"noise_multiplier must be a finite number > 0; got {self.noise_multiplier!r}"
            )
        if self.planned_proposals is not None and not (
            isinstance(self.planned_proposals, int)
            and not isinstance(self.planned_proposals, bool)
            and self.planned_proposals >= 1
        ):
            raise ConfigError(
                f"planned_proposals must be an integer >= 1; got {self.planned_proposals!r}"
            )
        if self.accountant not in ACCOUNTANTS:
            raise ConfigError(
                f"accountant must be one of {', '.join(ACCOUNTANTS)}; got {self.accountant!r}"
            )
        if self.noise_seed is not None and not (
            isinstance(self.noise_seed, int) and self.noise_seed >= 0
        ):
            raise ConfigError(
                f"noise_seed must be None or an integer >= 0; got {self.noise_seed!r}"
            )


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sampling_plan(
    n_samples: int, batch_size: int, epochs: int = 1, num_batches: int | None = None
) -> tuple[float, int]:
    """The Poisson sampling rate and the DP-SGD steps of one proposal.

    Each step draws every training row independently with probability
    ``sample_rate = batch_size / n_samples``; an epoch is ``int(1 / sample_rate)`` steps
    (as in opacus' ``DPDataLoader``); ``num_batches``, if given, is the number of steps.

    Examples
    --------
    >>> sampling_plan(1000, 100, epochs=2)
    (0.1, 20)
    >>> sampling_plan(1000, 100, num_batches=5)
    (0.1, 5)
    """
    if n_samples < 1:
        raise ConfigError(f"a private learner needs training data; got {n_samples} rows")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    sample_rate = min(1.0, batch_size / n_samples)
    if num_batches is not None:
        return sample_rate, int(num_batches)
    return sample_rate, int(epochs) * max(1, int(1 / sample_rate))


def epsilon_spent(
    proposals: int,
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps_per_proposal: int,
    delta: float,
    accountant: str = "rdp",
) -> float:
    """Epsilon spent (at ``delta``) after ``proposals`` proposals of DP-SGD.

    Examples
    --------
    >>> epsilon_spent(0, noise_multiplier=1.0, sample_rate=0.1, steps_per_proposal=10,
    ...               delta=1e-5)
    0.0
    """
    if proposals < 0:
        raise ConfigError(f"proposals must be >= 0; got {proposals}")
    if proposals == 0:
        return 0.0
    return _epsilon(
        float(noise_multiplier),
        float(sample_rate),
        proposals * steps_per_proposal,
        float(delta),
        accountant,
    )


@functools.lru_cache(maxsize=4096)
def _epsilon(
    noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str
) -> float:
    """Epsilon after ``steps`` DP-SGD steps; cached, since learners with the same
    settings ask the same questions (an RDP evaluation takes about 0.15 s)."""
    require_extra("opacus", "privacy", "privacy accounting")
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=accountant)
    # Every proposal runs identical steps, so the whole history is one entry.
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta=delta, **_orders(accountant)))


def _orders(accountant: str) -> dict[str, list[float]]:
    return {"alphas": _RDP_ORDERS} if accountant == "rdp" else {}


def noise_for_budget(
    target_epsilon: float,
    target_delta: float,
    *,
    sample_rate: float,
    steps_per_proposal: int,
    proposals: int,
    accountant: str = "rdp",
) -> float:
    """The noise multiplier that lets exactly ``proposals`` proposals fit in the budget
    (the smallest found by opacus' bisection, to 0.01 in epsilon; cached)."""
    try:
        return _noise(
            float(target_epsilon),
            float(target_delta),
            float(sample_rate),
            proposals * steps_per_proposal,
            accountant,
        )
    except ValueError as exc:
        raise ConfigError(
            f"no noise multiplier fits {proposals} proposals of {steps_per_proposal} steps "
            f"in target_epsilon={target_epsilon}: {exc} (plan fewer proposals or raise "
            "target_epsilon)"
        ) from exc


@functools.lru_cache(maxsize=256)
def _noise(
    target_epsilon: float, target_delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    require_extra("opacus", "privacy", "privacy accounting")
    from opacus.accountants.utils import get_noise_multiplier

    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
            **_orders(accountant),
        )
    )


class ProposalBudget:
    """Counts a learner's proposals and answers what they cost.

    The state is one integer, ``proposals``; :meth:`restore` sets it when an experiment
    resumes, and the spend is recomputed from it.

    Parameters
    ----------
    config
        The budget and DP-SGD settings.
    sample_rate, steps_per_proposal
        From :func:`sampling_plan`.
    """

    def __init__(self, config: DPConfig, sample_rate: float, steps_per_proposal: int) -> None:
        self.config = config
        self.sample_rate = sample_rate
        self.steps_per_proposal = steps_per_proposal
        if config.noise_multiplier is not None:
            self.noise_multiplier = float(config.noise_multiplier)
        elif config.planned_proposals is not None:
            self.noise_multiplier = noise_for_budget(
                config.target_epsilon,
                config.target_delta,
                sample_rate=sample_rate,
                steps_per_proposal=steps_per_proposal,
                proposals=config.planned_proposals,
                accountant=config.accountant,
            )
        else:
            self.noise_multiplier = 1.0
        self.proposals = 0
        self._spent: dict[int, float] = {0: 0.0}

    def epsilon_after(self, proposals: int) -> float:
        """Epsilon spent once ``proposals`` proposals have been made (cached)."""
        if proposals not in self._spent:
            self._spent[proposals] = epsilon_spent(
                proposals,
                noise_multiplier=self.noise_multiplier,
                sample_rate=self.sample_rate,
                steps_per_proposal=self.steps_per_proposal,
                delta=self.config.target_delta,
                accountant=self.config.accountant,
            )
        return self._spent[proposals]

    @property
    def consumed_epsilon(self) -> float:
        """Epsilon spent by the proposals made so far."""
        return self.epsilon_after(self.proposals)

    def can_afford_next(self) -> bool:
        """Whether one more proposal keeps the spend within ``target_epsilon``."""
        return self.epsilon_after(self.proposals + 1) <= self.config.target_epsilon

    def affordable_proposals(self, limit: int = 10_000) -> int:
        """How many proposals fit in the budget in all (at most ``limit``)."""
        lo, hi = 0, 1
        while hi <= limit and self.epsilon_after(hi) <= self.config.target_epsilon:
            lo, hi = hi, hi * 2
        hi = min(hi, limit + 1)
        while hi - lo > 1:  # epsilon grows with proposals: bisect the last that fits
            mid = (lo + hi) // 2
            if self.epsilon_after(mid) <= self.config.target_epsilon:
                lo = mid
            else:
                hi = mid
        return lo

    def record_proposal(self) -> None:
        """Count one proposal made."""
        self.proposals += 1

    def restore(self, proposals_made: int) -> None:
        """Set the count of proposals made (on resume)."""
        if not (isinstance(proposals_made, int) and proposals_made >= 0):
            raise ConfigError(f"proposals_made must be an integer >= 0; got {proposals_made!r}")
        self.proposals = proposals_made

    def budget(self) -> DiffPrivBudget:
        """The budget as reported in a :class:`~colearning.TrainingSummary`."""
        return DiffPrivBudget(
            target_epsilon=self.config.target_epsilon,
            target_delta=self.config.target_delta,
            consumed_epsilon=self.consumed_epsilon,
            consumed_delta=self.config.target_delta if self.proposals else 0.0,
        )
