"""The committee-size calculator is exact: checked against brute force, and against
Monte-Carlo draws of real committees with a tolerance set by the sample size."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from colearning import ConfigError
from colearning.core.plans import CommitteePlanner, RoundRobin, SeededRandomness
from colearning.scale import (
    approvals_needed,
    committee_risk,
    committee_risk_exact,
    committee_size,
    committee_table,
    malicious_count,
)

#: Standard errors a Monte-Carlo estimate may stray from the exact value. At 5, a
#: correct formula fails one check in about 1.7 million; a wrong one (off by even a
#: few standard errors' worth) cannot hide. The draws are seeded, so a run repeats.
Z = 5.0


def brute_force(learners, malicious, size, threshold):
    population = range(learners - 1)  # the non-proposers; the first `malicious` are bad
    needed = approvals_needed(size, threshold)
    hits = total = 0
    for committee in itertools.combinations(population, size):
        total += 1
        hits += sum(1 for c in committee if c < malicious) >= needed
    return Fraction(hits, total)


@pytest.mark.parametrize("threshold", [0.5, 2 / 3, 0.3, 1.0])
def test_the_risk_is_the_exact_count_of_committees(threshold):
    for learners, malicious in [(8, 0), (8, 3), (9, 4), (10, 9)]:
        for size in range(1, learners):
            exact = committee_risk_exact(learners, malicious, size, threshold)
            assert exact == brute_force(learners, malicious, size, threshold)


def tolerance(p, draws):
    return Z * math.sqrt(max(p * (1 - p), 1 / draws) / draws)


@pytest.mark.parametrize(
    "learners, share, size",
    [(200, 0.2, 9), (200, 0.33, 15), (1000, 0.1, 4), (101, 0.4, 21)],
)
def test_real_committee_draws_agree_with_the_exact_risk(learners, share, size):
    """Committees drawn by the planner itself (the SHA-256 draw), round after round."""
    malicious = malicious_count(learners, share)
    ids = [f"learner-{i}" for i in range(learners)]
    planner = CommitteePlanner(RoundRobin(), size, SeededRandomness(11))
    draws = 4000
    hits = 0
    for r in range(draws):
        plan = planner.plan(r, ids)
        proposer = ids.index(plan.proposers[0])
        # the worst case: every malicious learner is a non-proposer (the first ones)
        others = [i for i in range(learners) if i != proposer]
        bad = {ids[i] for i in others[:malicious]}
        hits += sum(1 for c in plan.committee if c in bad) >= approvals_needed(size, 0.5)
    exact = committee_risk(learners, malicious, size)
    assert 0.01 < exact < 0.99  # a regime where sampling can see the difference
    assert abs(hits / draws - exact) <= tolerance(exact, draws)


@pytest.mark.parametrize(
    "learners, share, size, threshold",
    [(10_000, 0.2, 21, 0.5), (10_000, 0.33, 51, 0.5), (1000, 0.2, 12, 2 / 3), (100, 0.1, 3, 0.5)],
)
def test_many_sampled_committees_agree_with_the_exact_risk(learners, share, size, threshold):
    """A million hypergeometric draws (NumPy's sampler) for sizes too large to enumerate."""
    malicious = malicious_count(learners, share)
    rng = np.random.default_rng(5)
    draws = 1_000_000
    counts = rng.hypergeometric(malicious, learners - 1 - malicious, size, size=draws)
    estimate = float(np.mean(counts >= approvals_needed(size, threshold)))
    exact = committee_risk(learners, malicious, size, threshold)
    assert exact > 1e-4  # enough hits among a million for the check to mean something
    assert abs(estimate - exact) <= tolerance(exact, draws)


def test_the_smallest_size_is_the_first_below_the_risk():
    size = committee_size(1000, 0.2, 1e-6)
    assert size.risk < 1e-6 and size.malicious == 200
    assert all(committee_risk(1000, 200, k) >= 1e-6 for k in range(1, size.committee))
    assert size.approvals_needed == approvals_needed(size.committee, 0.5)


def test_the_risk_is_not_monotone_so_every_size_is_tried():
    # an even committee needs as many approvals as the odd one above it: riskier
    risks = [committee_risk(1000, 200, k) for k in range(1, 30)]
    assert any(b > a for a, b in itertools.pairwise(risks))


def test_the_table_covers_every_case():
    table = committee_table()
    assert len(table) == 27 and all(row is not None for row in table)
    by = {
        (r.learners, r.malicious, round(math.log10(1 / t))): r.committee
        for r, t in zip(table, [1e-3, 1e-6, 1e-9] * 9, strict=True)
    }
    assert by[(10_000, 2000, 6)] == committee_size(10_000, 0.2, 1e-6).committee
    # a larger share of malicious learners needs a larger committee
    for n in (100, 1000, 10_000):
        for t in (3, 6, 9):
            sizes = [by[(n, malicious_count(n, f), t)] for f in (0.1, 0.2, 0.33)]
            assert sizes == sorted(sizes)


def test_no_committee_is_safe_when_the_malicious_can_carry_everyone():
    with pytest.raises(ConfigError, match="no committee is safe"):
        committee_size(10, 0.5, 1e-6)
    with pytest.raises(ConfigError, match="no committee is safe"):
        committee_size(100, 0.3, 1e-6, vote_threshold=0.25)


def test_the_table_in_the_docs_is_the_computed_one():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "scale.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 1") and "|" in line[2:]]
    got = [[int(cell.replace(",", "")) for cell in row.strip("| ").split(" | ")] for row in rows]
    table = committee_table()
    expected = [
        [n] + [r.committee for r in table[i * 9 : (i + 1) * 9]]
        for i, n in enumerate((100, 1000, 10_000))
    ]
    assert got == expected
