"""Differential privacy: the budget is checked before training and never overspent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from colearning import (
    ConfigError,
    ErrorCodes,
    Experiment,
    ExperimentStore,
    id_of,
)
from colearning.core.driver import BUDGET_EXHAUSTED
from colearning.data.types import LearnerData
from colearning.learners.torch import TorchLearner
from colearning.privacy import (
    DPConfig,
    DPTorchLearner,
    ProposalBudget,
    epsilon_spent,
    sampling_plan,
)
from colearning.testing import check_learner

pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")


def tiny_data(n: int = 60, seed: int = 0) -> LearnerData:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n + 40)
    X = (rng.normal(size=(len(y), 6)) + np.eye(3, 6)[y] * 2).astype(np.float32)
    return LearnerData(
        train=(X[:n], y[:n]), vote=(X[n : n + 20], y[n : n + 20]), test=(X[n + 20 :], y[n + 20 :])
    )


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def private(epsilon: float = 50.0, data: LearnerData | None = None, **kwargs) -> DPTorchLearner:
    config = {
        k: kwargs.pop(k)
        for k in (
            "noise_multiplier",
            "planned_proposals",
            "noise_seed",
            "accountant",
            "max_grad_norm",
        )
        if k in kwargs
    }
    config.setdefault("noise_seed", 0)
    if "planned_proposals" not in config:
        config.setdefault("noise_multiplier", 1.0)
    kwargs.setdefault("batch_size", 10)
    return DPTorchLearner(
        kwargs.pop("model", None) or tiny_model(),
        data or tiny_data(),
        privacy=DPConfig(target_epsilon=epsilon, **config),
        **kwargs,
    )


class ForwardCounter:
    def __init__(self, model: nn.Module) -> None:
        self.calls = 0
        model.register_forward_hook(self)

    def __call__(self, *args: object) -> None:
        self.calls += 1

    def __deepcopy__(self, memo: dict) -> ForwardCounter:
        return self


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"target_epsilon": 0.0}, "target_epsilon must be a finite number > 0"),
        ({"target_epsilon": -1.0}, "target_epsilon must be a finite number > 0"),
        ({"target_epsilon": 1.0, "target_delta": 0.0}, r"target_delta must be in \(0, 1\)"),
        ({"target_epsilon": 1.0, "target_delta": 1.0}, r"target_delta must be in \(0, 1\)"),
        (
            {"target_epsilon": 1.0, "max_grad_norm": 0.0},
            "max_grad_norm must be a finite number > 0",
        ),
        ({"target_epsilon": 1.0, "noise_multiplier": 0.0}, "noise_multiplier must be"),
        ({"target_epsilon": 1.0, "noise_multiplier": 1.0, "planned_proposals": 3}, "not both"),
        ({"target_epsilon": 1.0, "accountant": "moments"}, "accountant must be one of"),
    ],
)
def test_bad_privacy_settings_are_config_errors(settings, match):
    with pytest.raises(ConfigError, match=match):
        DPConfig(**settings)


def test_batchnorm_model_is_refused_with_the_fix():
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    with pytest.raises(ConfigError, match="GroupNorm"):
        DPTorchLearner(model, tiny_data(), privacy=DPConfig(target_epsilon=1.0))


# -- the contract and the weights -----------------------------------------------------------


def test_check_learner_passes():
    check_learner(private())


def test_private_and_plain_weights_are_interchangeable():
    dp, plain = private(), TorchLearner(tiny_model(), tiny_data(), batch_size=10)
    dp_proposal, plain_proposal = dp.mli_propose_weights(), plain.mli_propose_weights()
    assert (
        list(dp_proposal.arrays)
        == list(plain_proposal.arrays)
        == ["0.weight", "0.bias", "2.weight", "2.bias"]
    )
    for name, array in dp_proposal.arrays.items():
        assert array.shape == plain_proposal.arrays[name].shape
        assert array.dtype == plain_proposal.arrays[name].dtype
    # each takes the other's proposals
    plain.mli_test_weights(dp_proposal)
    plain.mli_accept_weights(dp_proposal)
    dp.mli_test_weights(plain_proposal)
    dp.mli_accept_weights(plain_proposal)
    assert dp.mli_get_current_weights() == plain_proposal
    # opacus' wrapper is gone after training: no hooks, no per-sample attributes left
    assert not any(hasattr(p, "grad_sample") for p in dp._work.parameters())
    assert not dp._work._forward_hooks and not dp._work[0]._forward_hooks


def test_every_proposal_carries_its_budget():
    learner = private(epsilon=50.0)
    spent = []
    for _ in range(3):
        summary = learner.mli_propose_weights().training_summary
        assert summary is not None and summary.error_code is None
        assert summary.dp_budget.target_epsilon == 50.0
        assert summary.dp_budget.consumed_delta == 1e-5
        spent.append(summary.dp_budget.consumed_epsilon)
    assert 0 < spent[0] < spent[1] < spent[2] <= 50.0
    assert spent[2] == pytest.approx(learner.budget.epsilon_after(3))


def test_proposals_are_reproducible_with_a_noise_seed_and_secret_without():
    a, b = private(noise_seed=3), private(noise_seed=3)
    a.mli_set_round(1)
    b.mli_set_round(1)
    assert a.mli_propose_weights() == b.mli_propose_weights()
    c, d = private(noise_seed=None), private(noise_seed=None)
    assert c.mli_propose_weights() != d.mli_propose_weights()


# -- the budget -----------------------------------------------------------------------------


def test_spend_never_exceeds_the_target_and_the_refusal_comes_before_training():
    model = tiny_model()
    counter = ForwardCounter(model)
    learner = private(epsilon=6.0, model=model, noise_multiplier=1.5)
    fits = learner.budget.affordable_proposals()
    assert 2 <= fits <= 20  # the test is about the edge: reach it
    for _ in range(fits):
        weights = learner.mli_propose_weights()
        assert weights.training_summary.error_code is None
        assert weights.training_summary.dp_budget.consumed_epsilon <= 6.0
    assert learner.budget.epsilon_after(fits) <= 6.0 < learner.budget.epsilon_after(fits + 1)

    current = learner.mli_get_current_weights()
    counter.calls = 0
    for _ in range(3):
        refused = learner.mli_propose_weights()
        assert refused.training_summary.error_code is ErrorCodes.DP_BUDGET_EXCEEDED
        assert refused == current  # the current weights, untrained
        assert refused.training_summary.dp_budget.consumed_epsilon == pytest.approx(
            learner.budget.epsilon_after(fits)
        )
    assert counter.calls == 0  # not one forward pass: nothing was trained
    assert learner.budget.proposals == fits


def test_planned_proposals_fit_exactly():
    learner = private(epsilon=3.0, planned_proposals=4)
    assert learner.budget.affordable_proposals() == 4
    assert learner.noise_multiplier > 0


def test_restored_progress_gives_the_same_spend():
    made = private(epsilon=20.0)
    for _ in range(3):
        made.mli_propose_weights()
    resumed = private(epsilon=20.0)
    resumed.mli_restore_progress(3)
    assert resumed.budget.consumed_epsilon == made.budget.consumed_epsilon > 0
    nxt_made = made.mli_propose_weights().training_summary.dp_budget
    nxt_resumed = resumed.mli_propose_weights().training_summary.dp_budget
    assert nxt_resumed == nxt_made
    with pytest.raises(ConfigError):
        resumed.mli_restore_progress(-1)


def test_accounting_matches_opacus_step_by_step():
    from opacus.accountants import RDPAccountant

    q, steps = sampling_plan(n_samples=60, batch_size=10, epochs=2)
    assert (q, steps) == (pytest.approx(1 / 6), 12)
    accountant = RDPAccountant()
    for _ in range(3 * steps):
        accountant.step(noise_multiplier=1.0, sample_rate=q)
    ours = epsilon_spent(
        3, noise_multiplier=1.0, sample_rate=q, steps_per_proposal=steps, delta=1e-5
    )
    theirs = accountant.get_epsilon(delta=1e-5)
    assert ours <= theirs + 1e-9  # more RDP orders: never looser
    assert ours == pytest.approx(theirs, rel=0.05)


def test_budget_object_counts_and_restores():
    budget = ProposalBudget(DPConfig(target_epsilon=5.0, noise_multiplier=1.0), 0.1, 10)
    assert budget.consumed_epsilon == 0.0 and budget.budget().consumed_delta == 0.0
    budget.record_proposal()
    assert budget.consumed_epsilon == budget.epsilon_after(1) > 0


# -- training details -----------------------------------------------------------------------


def test_empty_poisson_draws_still_take_a_noisy_step():
    # batch_size 1 of 20 rows: each draw is empty with probability 0.95**20 = 0.36
    data = tiny_data(n=20)
    learner = private(data=data, batch_size=1, epsilon=1e4)
    draws = [len(y) for _, y in learner._poisson_batches(torch.Generator().manual_seed(0))]
    assert 0 in draws and len(draws) == 20
    proposal = learner.mli_propose_weights()
    assert proposal != learner.mli_get_current_weights()
    assert all(np.isfinite(a).all() for a in proposal.arrays.values())


def test_data_loaders_train_privately():
    data = tiny_data()

    def loader(xy, shuffle=False):
        return DataLoader(
            TensorDataset(torch.from_numpy(xy[0]), torch.from_numpy(xy[1])),
            batch_size=10,
            shuffle=shuffle,
        )

    learner = DPTorchLearner(
        tiny_model(),
        (loader(data.train, True), loader(data.vote), loader(data.test)),
        privacy=DPConfig(target_epsilon=50.0, noise_multiplier=1.0, noise_seed=0),
    )
    assert (learner.sample_rate, learner.steps_per_proposal) == (pytest.approx(1 / 6), 6)
    proposal = learner.mli_propose_weights()
    assert proposal.training_summary.dp_budget.consumed_epsilon > 0
    learner.mli_test_weights(proposal)


# -- in an experiment -----------------------------------------------------------------------


def _dp_learners(n: int = 3) -> list[DPTorchLearner]:
    return [
        private(epsilon=4.0, planned_proposals=2, data=tiny_data(seed=i), model=tiny_model(i))
        for i in range(n)
    ]


def test_experiment_skips_exhausted_learners_and_stops():
    learners = _dp_learners()
    with Experiment(learners) as experiment:
        result = experiment.run(rounds=30)
    statuses = [r.status for r in result.rounds]
    assert len(result.rounds) == 9  # 3 learners x 2 proposals, then one refusal each
    assert "skipped" not in statuses[:6]
    assert statuses[6:] == ["skipped"] * 3
    assert all(r.reason == BUDGET_EXHAUSTED for r in result.rounds[6:])
    assert result.stopped_early and BUDGET_EXHAUSTED in result.stopped_early
    for record in result.rounds:
        assert record.dp_budget is not None
        assert record.dp_budget.consumed_epsilon <= record.dp_budget.target_epsilon == 4.0
    assert [lr.budget.proposals for lr in learners] == [2, 2, 2]


def test_resumed_experiment_restores_each_accountant(tmp_path):
    ids = [f"learner-{i}" for i in range(3)]
    store = ExperimentStore.create(tmp_path / "dp", {}, ids)
    with Experiment(_dp_learners(), store=store) as first:
        first.run(rounds=4)  # proposers 0, 1, 2, 0
    learners = _dp_learners()  # fresh processes: accountants at zero
    with Experiment(learners, store=ExperimentStore.open(tmp_path / "dp")) as resumed:
        assert [lr.budget.proposals for lr in learners] == [2, 1, 1]
        result = resumed.run(rounds=30)
    assert [r.status for r in result.rounds[6:]] == ["skipped"] * 3
    assert len(result.rounds) == 9
    assert id_of(result.final_weights) == id_of(learners[0].mli_get_current_weights())
