import numpy as np
import pytest

from colearning import ConfigError, Experiment, ExperimentStore, StoreError
from colearning.core.driver import ProposerSkippedWarning
from colearning.core.experiment import choose_proposer
from colearning.testing import FaultyLearner, QuadraticLearner


def quads(n, **kw):
    return [QuadraticLearner(target=[1.0, 2.0, 3.0], seed=i, **kw) for i in range(n)]


def test_learners_start_from_learner_zeros_weights():
    learners = [QuadraticLearner(target=[1.0], start=[float(i)]) for i in range(3)]
    Experiment(learners)
    assert {float(x.mli_get_current_weights().arrays["w"][0]) for x in learners} == {0.0}


def test_run_improves_and_keeps_everyone_in_sync():
    learners = quads(4)
    result = Experiment(learners).run(rounds=12)
    assert [r.round_index for r in result.rounds] == list(range(12))
    assert [r.proposer_id for r in result.rounds[:5]] == [f"learner-{i % 4}" for i in range(5)]
    assert any(r.accepted for r in result.rounds)
    final = learners[0].mli_get_current_weights()
    assert all(x.mli_get_current_weights() == final for x in learners)
    assert result.final_weights == final
    assert np.abs(final.arrays["w"] - [1, 2, 3]).max() < 0.5


def test_random_proposer_is_seeded_per_round():
    picks = [choose_proposer("random", r, 7, seed=3) for r in range(50)]
    assert picks == [choose_proposer("random", r, 7, seed=3) for r in range(50)]
    assert len(set(picks)) > 3
    assert picks != [choose_proposer("random", r, 7, seed=4) for r in range(50)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vote_threshold": 2.0}, "vote_threshold must be in"),
        ({"proposer": "best"}, "one of round-robin, random"),
        ({"timeout": 0}, r"timeout must be a number of seconds in \(0, 31536000\]"),
        ({"timeout": float("inf")}, "timeout must be a number of seconds in"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Experiment(quads(2), **kwargs)


def test_no_learners():
    with pytest.raises(ConfigError, match="at least 1 learner"):
        Experiment([])


def test_a_failing_learner_does_not_stop_the_experiment():
    learners = quads(3)
    learners[1] = FaultyLearner(learners[1], "raise", on={"test", "propose"})
    with pytest.warns(ProposerSkippedWarning, match="learner-1's turn was skipped"):
        result = Experiment(learners).run(rounds=6)
    assert len(result.rounds) == 6
    assert result.rounds[1].status == "skipped" and "injected" in result.rounds[1].reason
    assert all("injected" in r.votes[1].error for r in result.rounds if r.status != "skipped")


def test_rounds_are_committed_and_resume_matches_uninterrupted(tmp_path):
    full = Experiment(
        quads(3),
        store=ExperimentStore.create(
            tmp_path / "a", {"k": 1}, ["learner-0", "learner-1", "learner-2"]
        ),
    )
    expected = full.run(rounds=9).final_weights_id
    full.close()

    store = ExperimentStore.create(tmp_path / "b", {"k": 1}, [f"learner-{i}" for i in range(3)])
    first = Experiment(quads(3), store=store)
    first.run(rounds=4)
    first.close()
    # fresh learners, as after a crash: they must be brought back to the committed model
    store = ExperimentStore.open(tmp_path / "b")
    assert len(store.rounds()) == 4
    resumed = Experiment(quads(3), store=store)
    assert resumed.next_round == 4
    result = resumed.run(rounds=9)
    assert result.final_weights_id == expected
    assert [r.round_index for r in store.rounds()] == list(range(9))


def test_resume_refuses_other_learners(tmp_path):
    with Experiment(
        quads(2), store=ExperimentStore.create(tmp_path / "x", {}, ["learner-0", "learner-1"])
    ) as first:
        first.run(2)
    with pytest.raises(StoreError, match="same learners"):
        Experiment(quads(3), store=ExperimentStore.open(tmp_path / "x"))


def test_observers_see_each_committed_round():
    seen = []
    Experiment(quads(2), observers=[seen.append]).run(3)
    assert [r.round_index for r in seen] == [0, 1, 2]


def test_restore_progress_is_told_proposals_made(tmp_path):
    class Counting(QuadraticLearner):
        restored = None

        def mli_restore_progress(self, proposals_made):
            self.restored = proposals_made

    ids = [f"learner-{i}" for i in range(3)]
    Experiment(quads(3), store=ExperimentStore.create(tmp_path / "e", {}, ids)).run(7)
    learners = [Counting(target=[1.0, 2.0, 3.0], seed=i) for i in range(3)]
    Experiment(learners, store=ExperimentStore.open(tmp_path / "e"))
    assert [x.restored for x in learners] == [3, 2, 2]


def test_an_experiment_that_cannot_start_leaves_no_thread_and_its_store_open(tmp_path):
    # A learner refuses the starting weights: the constructor raises, the worker threads
    # its pool started for that batch end, and the store it was given stays the
    # caller's (open, usable).
    import threading
    import time

    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(3)]
    learners[1] = FaultyLearner(learners[1], "raise", on={"accept"})
    ids = ["learner-0", "learner-1", "learner-2"]
    store = ExperimentStore.create(tmp_path / "e", {}, ids)
    before = {t.ident for t in threading.enumerate()}
    try:
        with pytest.raises(Exception, match="refused the shared starting weights"):
            Experiment(learners, store=store)
        # (told to stop, an idle worker exits at once; a loaded machine may take a while)
        deadline = time.monotonic() + 10
        while True:
            left = [t.name for t in threading.enumerate() if t.ident not in before]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert left == []
        assert store.rounds() == []  # still open and readable
    finally:
        store.close()
