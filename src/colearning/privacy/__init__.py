"""Differential privacy: budgets, accounting and DP-SGD training.

``DPConfig`` and the accounting helpers need neither torch nor opacus until an epsilon
is computed; ``DPTorchLearner`` (``colearning.privacy.opacus_dp``) needs the
``privacy`` extra (``pip install 'colearning[torch,privacy]'``) and is imported on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from colearning.privacy.accounting import (
    DPConfig,
    ProposalBudget,
    epsilon_spent,
    noise_for_budget,
    sampling_plan,
)

if TYPE_CHECKING:
    from colearning.privacy.opacus_dp import DPTorchLearner, check_model_for_dp

__all__ = [
    "DPConfig",
    "DPTorchLearner",
    "ProposalBudget",
    "check_model_for_dp",
    "epsilon_spent",
    "noise_for_budget",
    "sampling_plan",
]


def __getattr__(name: str) -> Any:
    if name in ("DPTorchLearner", "check_model_for_dp"):
        from colearning.privacy import opacus_dp

        return getattr(opacus_dp, name)
    raise AttributeError(f"module 'colearning.privacy' has no attribute {name!r}")
