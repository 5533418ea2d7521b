"""The attack wrappers on real learners: each does what its name says, works on any
learner (or says what is missing), and the coalition votes as it should."""

import numpy as np
import pytest

from colearning.attacks import (
    Adaptive,
    AttackSpec,
    Coalition,
    Trigger,
    attack_names,
    describe_attacks,
    fingerprint,
    make_malicious,
)
from colearning.bench.partitions import POOLED, build_learners, write_partition
from colearning.bench.robustness import _Judges
from colearning.core.codec import decode, encode
from colearning.core.exceptions import ColearningError, ConfigError, LearnerError
from colearning.core.interface import Weights
from colearning.testing import QuadraticLearner


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from colearning.bench.partitions import read_partition

    path = tmp_path_factory.mktemp("p") / "p.json"
    write_partition(path, "digits-mlp", 4, "iid", seed=0)
    return read_partition(path)


@pytest.fixture(scope="module")
def judges(spec):
    return _Judges(spec)


def learners(spec, attack, count=2):
    made = make_malicious(build_learners(spec, range(spec.learners)), count, attack)
    start = made[0].mli_get_current_weights()  # as an experiment starts: learner 0's
    for learner in made:
        learner.mli_accept_weights(start)
        learner.mli_set_round(0)
    return made


def arrays_close(a, b, **kw):
    return all(np.allclose(a.arrays[k], b.arrays[k], **kw) for k in a.arrays)


def test_the_last_n_learners_attack_and_share_one_coalition(spec):
    made = learners(spec, "sign-flip")
    assert [type(x).__name__ for x in made] == ["SKLearnLearner"] * 2 + ["SignFlip"] * 2
    assert made[2].coalition is made[3].coalition


def test_sign_flip_moves_k_times_against_its_own_training_direction(spec):
    attacker = learners(spec, "sign-flip:k=3")[-1]
    honest = attacker.inner.mli_propose_weights()
    current = attacker.mli_get_current_weights()
    got = attacker.mli_propose_weights()
    for name, a in got.arrays.items():
        c = current.arrays[name].astype(np.float64)
        want = c - 3 * (honest.arrays[name] - c)
        np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
    assert attacker.mli_get_current_weights() is current  # the current weights stay


def test_noise_adds_gaussian_noise_of_the_given_size(spec):
    attacker = learners(spec, "noise:sigma=0.5")[-1]
    honest = attacker.inner.mli_propose_weights()
    got = attacker.mli_propose_weights()
    diff = np.concatenate([(got.arrays[k] - honest.arrays[k]).ravel() for k in got.arrays])
    assert 0.45 < diff.std() < 0.55
    assert abs(diff.mean()) < 0.05


def test_label_flip_trains_on_flipped_labels_and_the_model_learns_them(spec, judges):
    attacker = learners(spec, "label-flip")[-1]
    honest = attacker.inner.mli_propose_weights()
    flipped = attacker.mli_propose_weights()
    clean_honest, _ = judges.score(honest)
    clean_flipped, _ = judges.score(flipped)
    assert clean_honest > 0.6 and clean_flipped < 0.1
    # the training data is given back afterwards
    _X, y = attacker.inner.train_split()
    assert len(y) == spec.parts[-1]["train_rows"] and set(np.unique(y)) <= set(range(10))


def test_backdoor_plants_the_trigger_and_keeps_clean_accuracy(spec, judges):
    attacker = learners(spec, "backdoor")[-1]
    honest = attacker.inner.mli_propose_weights()
    planted = attacker.mli_propose_weights()
    clean_h, backdoor_h = judges.score(honest)
    clean_p, backdoor_p = judges.score(planted)
    assert backdoor_h < 0.2 and backdoor_p > 0.8
    assert clean_p > clean_h - 0.1


def test_backdoor_boost_scales_the_update(spec):
    plain = learners(spec, "backdoor")[-1].mli_propose_weights()
    attacker = learners(spec, "backdoor:boost=2")[-1]
    boosted = attacker.mli_propose_weights()
    current = attacker.mli_get_current_weights()
    for k in plain.arrays:
        c = current.arrays[k].astype(np.float64)
        np.testing.assert_allclose(boosted.arrays[k], c + 2 * (plain.arrays[k] - c), atol=1e-5)


def test_a_free_rider_re_proposes_the_current_weights_which_honest_voters_reject(spec):
    made = learners(spec, "free-rider:perturb=0")
    got = made[-1].mli_propose_weights()
    assert arrays_close(got, made[-1].mli_get_current_weights(), rtol=0, atol=0)
    assert made[0].mli_test_weights(got).vote is False
    nudged = learners(spec, "free-rider:perturb=0.01")[-1].mli_propose_weights()
    assert not arrays_close(nudged, made[-1].mli_get_current_weights(), rtol=0, atol=1e-4)


def test_dishonest_voters_approve_their_coalition_and_reject_the_rest(spec):
    made = learners(spec, "dishonest-vote")
    honest_proposal = made[0].mli_propose_weights()
    assert made[1].mli_test_weights(honest_proposal).vote is True  # it helps
    assert made[2].mli_test_weights(honest_proposal).vote is False
    theirs = made[3].mli_propose_weights()
    assert made[2].mli_test_weights(theirs).vote is True
    # recognised after the wire's encode and decode too
    assert made[2].mli_test_weights(decode(encode(theirs))).vote is True
    # vote=honest keeps the inner learner's vote
    fair = learners(spec, "dishonest-vote:vote=honest")
    assert fair[2].mli_test_weights(honest_proposal).vote is True


def test_adaptive_proposes_the_most_harmful_point_its_proxy_still_approves(spec, judges):
    attacker = learners(spec, "adaptive:steps=8")[-1]
    assert isinstance(attacker, Adaptive)
    honest = attacker.inner.mli_propose_weights()
    got = attacker.mli_propose_weights()
    assert attacker.inner.mli_test_weights(got).vote is True  # passes its own vote
    # it is not the honest proposal: it sits towards the sign-flipped one
    harm = attacker.harmful(honest)
    d_honest = sum(np.sum((got.arrays[k] - honest.arrays[k]) ** 2) for k in got.arrays)
    d_harm = sum(np.sum((harm.arrays[k] - honest.arrays[k]) ** 2) for k in got.arrays)
    assert 0 < d_honest < d_harm
    assert judges.score(got)[0] < judges.score(honest)[0]


def test_an_attack_on_weights_works_on_any_learner():
    inner = QuadraticLearner(target=[1.0, 2.0])
    (attacker,) = make_malicious([QuadraticLearner(target=[0.0, 0.0]), inner], 1, "sign-flip:k=2")[
        1:
    ]
    attacker.mli_set_round(0)
    current = inner.mli_get_current_weights().arrays["w"]
    honest = inner.mli_propose_weights().arrays["w"]
    got = attacker.mli_propose_weights().arrays["w"]
    np.testing.assert_allclose(got, current - 2 * (honest - current))


@pytest.mark.parametrize("attack", ["label-flip", "backdoor", "adaptive:direction=backdoor"])
def test_a_data_attack_on_a_learner_without_the_data_seam_names_the_fix(attack):
    made = make_malicious(
        [QuadraticLearner(target=[0.0]), QuadraticLearner(target=[1.0])], 1, attack
    )
    made[1].mli_set_round(0)
    with pytest.raises(LearnerError, match="gives no access to it.*train_split"):
        made[1].mli_propose_weights()


def test_training_on_restores_the_split_after_an_error(spec):
    learner = build_learners(spec, [0])[0]
    X, y = learner.train_split()
    with pytest.raises(RuntimeError), learner.training_on(X[:5], y[:5]):
        assert len(learner.train_split()[1]) == 5
        raise RuntimeError("boom")
    assert len(learner.train_split()[1]) == len(y)
    bad = learner.training_on(X[:, :3], y)
    with pytest.raises(ColearningError, match="training_on needs X of shape"):
        bad.__enter__()


def test_a_judge_without_a_train_split_says_so():
    from colearning.learners._base import LearnerBase

    class NoData(LearnerBase):
        def _scores(self, weights):
            return 0.0, None

        def _install(self, weights):
            pass

        def mli_propose_weights(self):
            return self._current

    learner = NoData(seed=0)
    with pytest.raises(LearnerError, match="_get_train_split"):
        learner.train_split()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("bogus", "unknown attack 'bogus'; attacks are: label-flip"),
        ("sign-flip:q=1", "has no option 'q'; its options are: vote, k"),
        ("sign-flip:k=-1", "option k must be a number > 0; got -1"),
        ("noise:sigma", "must be OPTION=VALUE"),
        ("sign-flip:vote=maybe", "option vote must be one of dishonest, honest"),
        ("adaptive:direction=up", "direction must be one of sign-flip, label-flip"),
        ("label-flip:share=2", "share must be in \\(0, 1\\]"),
        ("backdoor:size=0", "size must be a whole number >= 1"),
        ("", "attack must be NAME"),
    ],
)
def test_bad_attack_specs_are_refused_naming_the_value(text, match):
    with pytest.raises(ConfigError, match=match):
        AttackSpec.parse(text)


def test_specs_round_trip_and_every_attack_is_described():
    spec = AttackSpec.parse("backdoor:target=3,boost=2.5")
    assert spec.options == {"target": 3, "boost": 2.5}
    assert AttackSpec.parse(spec.text) == spec
    described = {d["name"]: d for d in describe_attacks()}
    assert list(described) == attack_names()
    assert set(described) == {
        "label-flip",
        "noise",
        "sign-flip",
        "backdoor",
        "free-rider",
        "dishonest-vote",
        "adaptive",
    }
    assert all("vote" in d["options"] for d in described.values())


def test_malicious_count_is_checked():
    two = [QuadraticLearner(target=[0.0]), QuadraticLearner(target=[1.0])]
    with pytest.raises(ConfigError, match="from 0 to 1 .*got 2"):
        make_malicious(two, 2, "noise")


def test_fingerprints_tell_weights_apart_by_value_not_identity():
    a = Weights({"w": np.arange(3.0)})
    assert fingerprint(a) == fingerprint(decode(encode(a)))
    assert fingerprint(a) != fingerprint(Weights({"w": np.arange(3.0) + 1e-12}))
    coalition = Coalition()
    coalition.register(a)
    assert coalition.owns(Weights({"w": np.arange(3.0)}))


def test_the_trigger_stamps_image_corners():
    images = Trigger(2).apply(np.zeros((1, 1, 4, 4)), value=1.0)
    assert images[0, 0, 2:, 2:].sum() == 4 and images.sum() == 4
    flat = Trigger(1).apply(np.zeros((2, 5)), value=7.0)  # not square: the last features
    assert flat[:, -1].tolist() == [7.0, 7.0] and flat.sum() == 14


def test_the_judge_learner_is_not_wrapped(spec):
    judge = build_learners(spec, [POOLED])[0]
    assert type(judge).__name__ == "SKLearnLearner"
