"""Collective learning at scale: committees of voters and a Ray pool for clusters.

- :mod:`colearning.scale.committees`: how large a sampled committee must be for a
  bounded risk that malicious voters carry a round on their own (exact, hypergeometric);
  the committees themselves are a plan (:class:`colearning.core.plans.CommitteePlanner`,
  ``Experiment(committee=K)``, ``colearn run --committee K``).
- :class:`RayPool` (``pip install 'colearning[ray]'``): thousands of learners packed
  into Ray actors, on one machine or a multi-node cluster (``colearn run --pool ray``).

``import colearning.scale`` does not import Ray; asking for :class:`RayPool` does.

Examples
--------
>>> from colearning.scale import committee_size
>>> committee_size(1_000, malicious_share=0.2, risk=1e-6).committee
49
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from colearning.scale.committees import (
    CommitteeSize,
    approvals_needed,
    committee_risk,
    committee_risk_exact,
    committee_size,
    committee_table,
    malicious_count,
)

if TYPE_CHECKING:
    from colearning.scale.ray_pool import RayPool, RayPoolError, ray_pool_factory

__all__ = [
    "CommitteeSize",
    "RayPool",
    "RayPoolError",
    "approvals_needed",
    "committee_risk",
    "committee_risk_exact",
    "committee_size",
    "committee_table",
    "malicious_count",
    "ray_pool_factory",
]

_RAY = {"RayPool", "RayPoolError", "ray_pool_factory"}


def __getattr__(name: str) -> Any:
    if name in _RAY:
        from colearning.scale import ray_pool

        value = getattr(ray_pool, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'colearning.scale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
