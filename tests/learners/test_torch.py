"""TorchLearner: the contract, determinism, scoring, and refusing bad weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from colearning import ConfigError, Experiment, Weights, WeightsError, id_of
from colearning.data.types import LearnerData
from colearning.learners.torch import TorchLearner, round_seed
from colearning.testing import check_learner


def tiny_data(n: int = 120, seed: int = 0, vote: int = 30, test: int = 30) -> LearnerData:
    """Two classes of 1x4x4 images, told apart by their mean brightness."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n + vote + test)
    X = (rng.normal(size=(len(y), 1, 4, 4)) + (2 * y - 1)[:, None, None, None] * 0.7).astype(
        np.float32
    )
    return LearnerData(
        train=(X[:n], y[:n]),
        vote=(X[n : n + vote], y[n : n + vote]),
        test=(X[n + vote :], y[n + vote :]),
    )


def tiny_model(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    """Conv + BatchNorm (buffers travel as weights) + dropout (global RNG)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(3 * 2 * 2, 2),
    )


def make(**kwargs) -> TorchLearner:
    data = kwargs.pop("data", None) or tiny_data()
    model = kwargs.pop("model", None) or tiny_model()
    kwargs.setdefault("batch_size", 16)
    return TorchLearner(model, data, **kwargs)


class ForwardCounter:
    """Counts forward passes of a model (and of its deep copies: hooks are copied)."""

    def __init__(self, model: nn.Module) -> None:
        self.calls = 0
        model.register_forward_hook(self)

    def __call__(self, *args: object) -> None:
        self.calls += 1

    def __deepcopy__(self, memo: dict) -> ForwardCounter:
        return self  # the learner's scratch copy of the model counts here too


def state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}


# -- contract -------------------------------------------------------------------------------


def test_check_learner_passes():
    check_learner(make())


def test_weights_are_the_state_dict_as_cpu_arrays():
    learner = make()
    weights = learner.mli_get_current_weights()
    assert list(weights.arrays) == list(learner.model.state_dict())
    assert "1.running_mean" in weights.arrays
    assert weights.arrays["1.num_batches_tracked"].dtype == np.int64
    assert all(isinstance(a, np.ndarray) for a in weights.arrays.values())


def test_propose_and_test_leave_the_current_model_alone():
    learner = make()
    before_id = id_of(learner.mli_get_current_weights())
    before = state(learner.model)
    proposal = learner.mli_propose_weights()
    learner.mli_test_weights(proposal)
    assert id_of(learner.mli_get_current_weights()) == before_id
    after = state(learner.model)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert proposal != learner.mli_get_current_weights()  # it did train something


def test_accept_installs_the_weights_in_the_model():
    learner = make()
    proposal = learner.mli_propose_weights()
    learner.mli_accept_weights(proposal)
    assert learner.mli_get_current_weights() == proposal
    installed = state(learner.model)
    assert all(np.array_equal(installed[k], a) for k, a in proposal.arrays.items())


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_and_round_give_identical_proposals():
    a, b = make(model=tiny_model(dropout=0.3)), make(model=tiny_model(dropout=0.3))
    a.mli_set_round(3)
    b.mli_set_round(3)
    torch.manual_seed(123)  # the global RNG must not matter
    pa = a.mli_propose_weights()
    torch.manual_seed(456)
    pb = b.mli_propose_weights()
    assert pa == pb
    b.mli_set_round(4)
    assert b.mli_propose_weights() != pa
    c = make(model=tiny_model(dropout=0.3), seed=1)
    c.mli_set_round(3)
    assert c.mli_propose_weights() != pa


def test_propose_leaves_the_global_rng_as_it_was():
    learner = make(model=tiny_model(dropout=0.3))
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    learner.mli_propose_weights()
    assert torch.equal(torch.rand(3), expected)


def test_rounds_advance_when_the_caller_never_sets_them():
    learner = make()
    first = learner.mli_propose_weights()
    second = learner.mli_propose_weights()
    assert first != second  # same weights, fresh data order
    learner.mli_set_round(0)
    assert learner.mli_propose_weights() == first


def test_round_seed_is_stable():
    assert round_seed(0, 0) == round_seed(0, 0)
    assert len({round_seed(s, r) for s in range(3) for r in range(3)}) == 9
    assert 0 <= round_seed(2**40, 10**6) < 2**63


def test_reset_optimizer_false_keeps_optimizer_state_between_proposals():
    fresh, kept = make(), make(reset_optimizer=False)
    for learner in (fresh, kept):
        learner.mli_set_round(0)
        learner.mli_propose_weights()
        learner.mli_set_round(0)
    assert fresh.mli_propose_weights() != kept.mli_propose_weights()


def test_num_batches_trains_exactly_that_many_batches():
    model = tiny_model()
    counter = ForwardCounter(model)
    learner = make(model=model, num_batches=11)  # 120 rows / 16 = 8 batches an epoch
    counter.calls = 0
    learner.mli_propose_weights()
    assert counter.calls == 11


# -- scoring --------------------------------------------------------------------------------


def test_single_batch_vote_loss_is_the_mean_loss():
    learner = make()
    X, y = tiny_data().vote
    assert len(y) <= learner.eval_batch_size  # one batch
    proposal = learner.mli_propose_weights()
    verdict = learner.mli_test_weights(proposal)
    model = tiny_model()
    model.load_state_dict({k: torch.from_numpy(np.array(a)) for k, a in proposal.arrays.items()})
    model.eval()
    with torch.no_grad():
        by_hand = nn.functional.cross_entropy(model(torch.from_numpy(X)), torch.from_numpy(y))
    assert verdict.vote_score == pytest.approx(float(by_hand), rel=1e-6)


def test_vote_loss_weights_batches_by_their_size():
    learner = make(eval_batch_size=4)  # 30 vote rows: seven batches of 4, one of 2
    X, y = tiny_data().vote
    score = learner.current_vote_score()
    learner.model.eval()
    with torch.no_grad():
        out = learner.model(torch.from_numpy(X))
        per_row = nn.functional.cross_entropy(out, torch.from_numpy(y), reduction="none")
        batch_means = [float(per_row[i : i + 4].mean()) for i in range(0, 30, 4)]
    assert score == pytest.approx(float(per_row.mean()), rel=1e-6)
    assert score != pytest.approx(float(np.mean(batch_means)), rel=1e-6)  # the trap


def test_test_score_is_accuracy_for_class_labels():
    learner = make()
    verdict = learner.mli_test_weights(learner.mli_get_current_weights())
    X, y = tiny_data().test
    with torch.no_grad():
        pred = learner.model.eval()(torch.from_numpy(X)).argmax(1).numpy()
    assert verdict.test_score == pytest.approx(float(np.mean(pred == y)))
    assert verdict.vote is False  # the current weights are not better than themselves


def test_callable_vote_metric_and_its_direction():
    calls = []

    def mean_top_logit(y_true: np.ndarray, outputs: np.ndarray) -> float:
        calls.append((y_true.shape, outputs.shape))
        return float(outputs.max(axis=1).mean())

    learner = make(vote_metric=mean_top_logit, higher_is_better=True)
    verdict = learner.mli_test_weights(learner.mli_propose_weights())
    assert calls and calls[-1] == ((30,), (30, 2))
    assert verdict.vote == (verdict.vote_score > learner.current_vote_score())
    with pytest.raises(ConfigError, match="higher_is_better must be given"):
        make(vote_metric=mean_top_logit)
    with pytest.raises(ConfigError, match="vote_metric must be one of 'loss', 'accuracy', .*'f1'"):
        make(vote_metric="f1")
    with pytest.raises(ConfigError, match="vote_metric 'rmse' is a regression metric"):
        make(vote_metric="rmse")


def test_accept_reuses_the_vote_score_of_the_tested_weights():
    model = tiny_model()
    counter = ForwardCounter(model)
    learner = make(model=model, eval_batch_size=8)  # vote: 4 batches, test: 4 batches
    proposal = learner.mli_propose_weights()
    counter.calls = 0
    learner.mli_test_weights(proposal)
    # the proposal's vote and test sets, then the current weights' (one scoring path)
    assert counter.calls == 4 + 4 + 4 + 4
    tested_score = learner.mli_test_weights(proposal).vote_score
    counter.calls = 0
    learner.mli_accept_weights(proposal)
    assert counter.calls == 0
    assert learner.current_vote_score() == tested_score
    learner.mli_test_weights(learner.mli_propose_weights())
    counter.calls -= 8  # the proposal's training forwards (120 rows / 16)
    assert counter.calls == 4 + 4  # the current model's score was not computed again


def test_accepting_untested_weights_scores_them_when_needed():
    model = tiny_model()
    counter = ForwardCounter(model)
    learner = make(model=model, eval_batch_size=8)
    other = make(seed=5).mli_propose_weights()  # never tested by `learner`
    learner.mli_accept_weights(other)
    counter.calls = 0
    assert learner.current_vote_score() == learner.mli_test_weights(other).vote_score
    assert counter.calls == 4 + 4  # scored once (vote and test), then reused


# -- bad input ------------------------------------------------------------------------------


def _bad_weights(learner: TorchLearner) -> dict[str, Weights]:
    arrays = dict(learner.mli_get_current_weights().arrays)
    renamed = {("_module." + k): v for k, v in arrays.items()}
    reshaped = {**arrays, "5.weight": np.zeros((3, 12), np.float32)}
    recast = {**arrays, "5.weight": arrays["5.weight"].astype(np.float64)}
    nan = arrays["5.bias"].copy()
    nan[0] = np.nan
    return {
        "names": Weights(renamed),
        "shape": Weights(reshaped),
        "dtype": Weights(recast),
        "nan": Weights({**arrays, "5.bias": nan}),
        "missing": Weights({k: v for k, v in arrays.items() if k != "5.bias"}),
    }


@pytest.mark.parametrize("problem", ["names", "shape", "dtype", "nan", "missing"])
def test_bad_weights_raise_and_change_nothing(problem):
    learner = make()
    before = id_of(learner.mli_get_current_weights())
    model_before = state(learner.model)
    bad = _bad_weights(learner)[problem]
    with pytest.raises(WeightsError):
        learner.mli_test_weights(bad)
    with pytest.raises(WeightsError):
        learner.mli_accept_weights(bad)
    assert id_of(learner.mli_get_current_weights()) == before
    assert all(np.array_equal(model_before[k], v) for k, v in state(learner.model).items())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match=r"device='cuda' but no CUDA GPU is visible to PyTorch"):
        make(device="cuda")


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("epochs", 0, "epochs must be an integer >= 1"),
        ("batch_size", 2.5, "batch_size must be an integer >= 1"),
        ("num_batches", 0, "num_batches must be an integer >= 1"),
        ("seed", -1, "seed must be an integer >= 0"),
        ("device", "tpu:x", "device must be 'cpu' or 'cuda'"),
    ],
)
def test_bad_options_are_config_errors(option, value, match):
    with pytest.raises(ConfigError, match=match):
        make(**{option: value})


def test_empty_vote_set_is_refused():
    data = tiny_data()
    empty = LearnerData(train=data.train, vote=(data.vote[0][:0], data.vote[1][:0]), test=data.test)
    with pytest.raises(Exception, match="vote set is empty"):
        make(data=empty)


# -- data loaders, export, experiments --------------------------------------------------------


def _loaders(data: LearnerData) -> tuple[DataLoader, DataLoader, DataLoader]:
    def loader(xy, shuffle=False):
        dataset = TensorDataset(torch.from_numpy(xy[0]), torch.from_numpy(xy[1]))
        return DataLoader(dataset, batch_size=16, shuffle=shuffle)

    return loader(data.train, shuffle=True), loader(data.vote), loader(data.test)


def test_data_loaders_work_and_are_deterministic():
    data = tiny_data()
    a = TorchLearner(tiny_model(), _loaders(data))
    b = TorchLearner(tiny_model(), _loaders(data))
    check_learner(a)
    a.mli_set_round(2)
    b.mli_set_round(2)
    pa, pb = a.mli_propose_weights(), b.mli_propose_weights()
    assert pa == pb
    # the same data as arrays scores the same
    arrays = make()
    assert a.mli_test_weights(pa).vote_score == pytest.approx(
        arrays.mli_test_weights(pa).vote_score, rel=1e-6
    )


def test_onnx_export_predicts_what_torch_predicts():
    import onnxruntime as ort

    learner = make()
    learner.mli_accept_weights(learner.mli_propose_weights())  # BN stats are not the init
    exported = learner.mli_get_current_model()
    assert exported.model_format.value == "onnx"
    session = ort.InferenceSession(exported.model, providers=["CPUExecutionProvider"])
    X, _ = tiny_data().test
    (onnx_out,) = session.run(None, {"input": X})
    with torch.no_grad():
        torch_out = learner.model.eval()(torch.from_numpy(X)).numpy()
    assert onnx_out.shape == (30, 2)
    np.testing.assert_allclose(onnx_out, torch_out, rtol=1e-4, atol=1e-5)
    assert (onnx_out.argmax(1) == torch_out.argmax(1)).all()
    (one,) = session.run(None, {"input": X[:1]})  # the batch size is dynamic
    assert one.shape == (1, 2)


def test_experiment_of_torch_learners_improves_and_ends_in_agreement():
    learners = [make(data=tiny_data(seed=i), model=tiny_model(seed=i), seed=i) for i in range(3)]
    initial = learners[0].mli_get_current_weights()  # the experiment starts from learner 0's
    with Experiment(learners) as experiment:
        result = experiment.run(rounds=4)
    assert any(r.accepted for r in result.rounds)
    assert all(lr.mli_get_current_weights() == result.final_weights for lr in learners)
    judge = learners[0]
    assert judge.mli_test_weights(result.final_weights).test_score > (
        judge.mli_test_weights(initial).test_score + 0.1
    )


def test_calibrated_log_loss_votes_on_the_softmax_and_ignores_a_rescaling():
    from colearning.learners.metrics import calibrated_log_loss

    learner = make(vote_metric="calibrated_log_loss")
    for r in range(3):
        learner.mli_set_round(r)
        learner.mli_accept_weights(learner.mli_propose_weights())
    start = learner.mli_get_current_weights()
    last = [k for k in start.arrays if k.startswith("5.")]  # the final Linear layer

    def scaled(factor: float) -> Weights:
        return Weights({k: a * factor if k in last else a for k, a in start.arrays.items()})

    X, y = tiny_data().vote
    current = scaled(4.0)  # over-confident: the fitted temperature is above 1
    learner.mli_accept_weights(current)
    with torch.no_grad():
        logits = learner.model.eval()(torch.from_numpy(X)).double()
    loss, t = calibrated_log_loss(y, torch.softmax(logits, 1).numpy())
    assert t > 1.0
    assert learner.current_vote_score() == pytest.approx(loss, rel=1e-9)
    verdict = learner.mli_test_weights(scaled(6.0))
    assert verdict.vote_score == pytest.approx(loss, rel=1e-6)
