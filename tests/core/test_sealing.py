"""What the store records is what every learner holds: accepted weights are sealed."""

import numpy as np
import pytest

from colearning import Experiment, ExperimentStore, Weights, id_of, run_one_round
from colearning.core.codec import encode, sealed_arrays
from colearning.core.weights_ref import WeightsRef
from colearning.testing import QuadraticLearner


class Aliasing(QuadraticLearner):
    """A clumsy learner: it proposes into one buffer that it keeps and rewrites in place
    on its next turn, and its second proposal is a bad one."""

    turns = 0

    def mli_propose_weights(self):
        self.turns += 1
        new = super().mli_propose_weights().arrays["w"]
        if not hasattr(self, "buffer"):
            self.buffer = np.zeros_like(new)
        self.buffer[...] = new if self.turns == 1 else new + 100.0
        return Weights({"w": self.buffer})


def held(learners):
    return {id_of(learner.mli_get_current_weights()) for learner in learners}


def test_a_proposer_editing_its_array_after_acceptance_changes_no_model(tmp_path):
    learners = [Aliasing(target=[1.0, 2.0], seed=i) for i in range(3)]
    ids = [f"learner-{i}" for i in range(3)]
    with Experiment(learners, store=ExperimentStore.create(tmp_path / "e", {}, ids)) as e:
        for total in range(1, 7):
            e.run(total)
            # each learner's second turn rewrites the buffer everyone adopted earlier
            assert held(learners) == {e.current_weights_id}
        statuses = [r.status for r in e.rounds]
    assert statuses[:3] == ["accepted"] * 3 and "rejected" in statuses[3:]
    with ExperimentStore.open(tmp_path / "e") as store:
        assert store.current_weights_id() == id_of(learners[0].mli_get_current_weights())


def test_the_initial_weights_are_sealed_too():
    class EditsItsOwn(QuadraticLearner):
        def mli_propose_weights(self):
            self._weights.weights["w"][...] = 9.0  # trains in place: its own business
            return Weights({"w": np.full(2, 7.0)})

    owner = EditsItsOwn(target=[1.0, 2.0], seed=0)
    owner._weights = Weights({"w": np.zeros(2)})  # a writable array of its own
    others = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in (1, 2)]
    with Experiment([owner, *others]) as e:
        start = e.current_weights_id
        e.run(1)
        assert {id_of(x.mli_get_current_weights()) for x in others} <= {
            start,
            e.current_weights_id,
        }
        assert e.rounds[0].previous_weights_id == start


def test_run_one_round_hands_out_sealed_weights():
    learners = [QuadraticLearner(target=[1.0, 1.0], seed=i) for i in range(3)]
    verdicts, accepted = run_one_round(0, learners)
    assert accepted
    adopted = learners[1].mli_get_current_weights().arrays["w"]
    with pytest.raises(ValueError, match="read-only|WRITEABLE"):
        adopted[0] = 5.0
    with pytest.raises(ValueError, match="WRITEABLE"):
        adopted.flags.writeable = True  # the buffer behind it is immutable bytes
    assert verdicts[1].weights is not None


def test_sealed_weights_keep_the_payload_form_and_the_id():
    torch = pytest.importorskip("torch")
    state = {"layer.weight": torch.ones(2, 3), "layer.bias": torch.zeros(3)}
    ref = WeightsRef.of(Weights(state))
    sealed = ref.sealed()
    assert sealed.weights_id == ref.weights_id == id_of(sealed.weights)
    payload = sealed.weights.weights
    assert list(payload) == ["layer.weight", "layer.bias"]
    assert all(isinstance(t, torch.Tensor) for t in payload.values())
    state["layer.weight"][0, 0] = 9.0  # the learner's tensor, not the sealed one
    assert sealed.weights.arrays["layer.weight"][0, 0] == 1.0


def test_lists_numbers_and_0d_arrays_survive_sealing_as_they_survive_the_codec():
    from colearning import decode

    for payload in ([np.ones(2), np.zeros((1, 2))], 3.5, np.float32(2.0), {"e": np.zeros(0)}):
        ref = WeightsRef.of(Weights(payload))
        sealed = ref.sealed()
        assert sealed.weights == ref.weights
        # the form a learner in another process would get
        assert type(sealed.weights.weights) is type(decode(ref.blob()).weights)


def test_sealed_arrays_are_views_of_the_blob_and_refuse_mutable_buffers():
    blob = encode(Weights({"a": np.arange(6.0).reshape(2, 3), "b": np.ones(2, np.float32)}))
    views = sealed_arrays(blob)
    assert views["a"].base is not None and not views["a"].flags.writeable
    np.testing.assert_array_equal(views["a"], np.arange(6.0).reshape(2, 3))
    with pytest.raises(Exception, match="immutable bytes"):
        sealed_arrays(bytearray(blob))
