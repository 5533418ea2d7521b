"""The benchmark against Flower, this project's side: partition files, the grid's
bookkeeping, the tables. (Flower's side runs in .venv-bench, outside the test suite.)"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from colearning.bench.collaboration import Cell, ours_speed, run_grid, tree_rss
from colearning.bench.partitions import (
    POOLED,
    build_learners,
    learner_shares,
    read_partition,
    write_partition,
)
from colearning.bench.report import accuracy_table, fedavg_at_epochs, summarize_cell
from colearning.data import load_dataset, partition_dataset


def test_a_partition_file_gives_back_the_shares_colearn_run_uses(tmp_path):
    path = tmp_path / "p.json"
    write_partition(path, "digits-sgd", 4, "dirichlet:0.5", seed=2)
    spec = read_partition(path)
    expected = partition_dataset(load_dataset("digits"), 4, "dirichlet:0.5", seed=2)
    for got, want in zip(learner_shares(spec), expected, strict=True):
        for a, b in ((got.train, want.train), (got.vote, want.vote), (got.test, want.test)):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    assert [p["train_rows"] for p in spec.parts] == [p.sizes[0] for p in expected]
    judge = build_learners(spec, [POOLED])[0]
    assert judge.mli_test_weights(judge.mli_get_current_weights()).test_score is not None


def test_fedavg_at_equal_epochs_reads_the_last_round_within_them():
    flower = {"scores": [0.1, 0.5, 0.7, 0.8], "epochs_per_round": 10}
    assert fedavg_at_epochs(flower, 0) == 0.1
    assert fedavg_at_epochs(flower, 19) == 0.5
    assert fedavg_at_epochs(flower, 20) == 0.7
    assert fedavg_at_epochs(flower, 1000) == 0.8


def fake_cell(seed, single, aggregate, fedavg, pooled, alone):
    def mode(final, epochs_per_round):
        return {
            "scores": [0.1, final],
            "epochs": [0, epochs_per_round],
            "accepted": 1,
            "proposals": 2,
        }

    return {
        "cell": {"task": "t", "learners": 2, "partition": "iid", "seed": seed, "rounds": 1},
        "ours": {
            "modes": {"single": mode(single, 5), "aggregate": mode(aggregate, 10)},
            "alone": {"final": [alone, alone - 0.1], "best_by_round": [0.1, alone]},
            "pooled": {"scores": [0.1, pooled]},
            "peak_rss_mib": 100.0,
            "epochs_per_proposal": 5,
        },
        "flower": {"scores": [0.1, fedavg], "epochs_per_round": 10, "peak_rss_mib": 900.0},
    }


def test_the_table_averages_seeds_and_checks_each_goal():
    cells = [fake_cell(0, 0.80, 0.90, 0.88, 0.91, 0.85), fake_cell(1, 0.82, 0.94, 0.90, 0.93, 0.87)]
    row = summarize_cell(cells[0])
    assert row["modes"]["single"]["fedavg_at_epochs"] == 0.1  # 5 epochs < one FedAvg round
    assert row["modes"]["aggregate"]["fedavg_at_epochs"] == 0.88
    table = accuracy_table(cells)
    line = table.splitlines()[2]
    assert "| t | 2 | iid | 1 | 0,1 | 0.810 | 0.920 | 0.860 | 0.920 | 0.890 |" in line
    assert "| aggregate | yes yes yes yes |" in line
    worse = [fake_cell(0, 0.80, 0.86, 0.88, 0.91, 0.87)]
    assert "| aggregate | NO NO NO NO |" in accuracy_table(worse).splitlines()[2]


def test_a_mode_played_on_some_seeds_is_shown_with_its_count_and_not_made_best():
    cells = [fake_cell(0, 0.80, 0.90, 0.88, 0.91, 0.85), fake_cell(1, 0.82, 0.94, 0.90, 0.93, 0.87)]
    cells[0]["ours"]["modes"]["single"]["scores"][-1] = 0.99  # best, on one seed only
    del cells[1]["ours"]["modes"]["single"]
    line = accuracy_table(cells).splitlines()[2]
    assert "| 0.990 (1 of 2 seeds) | 0.920 |" in line
    assert "| aggregate | yes yes yes yes |" in line


def test_a_mode_played_on_no_seed_of_a_row_is_a_dash_not_a_zero():
    played = fake_cell(0, 0.80, 0.90, 0.88, 0.91, 0.85)
    played["ours"]["modes"]["screened"] = dict(played["ours"]["modes"]["single"])
    other = fake_cell(0, 0.80, 0.90, 0.88, 0.91, 0.85)
    other["cell"]["learners"] = 3
    lines = accuracy_table([played, other]).splitlines()
    assert "| 0.800 | 0.900 | 0.800 |" in lines[2] and "| 1 of 1/1 of 1/1 of 1 |" in lines[2]
    assert "| 0.800 | 0.900 | - |" in lines[3] and "| 1 of 1/1 of 1/- |" in lines[3]
    assert "seeds)" not in lines[3] and "0 of 0" not in lines[3]


def test_a_goal_met_exactly_is_not_failed_by_the_last_bits_of_a_float():
    # FedAvg's 0.1 + 0.2 is 0.30000000000000004 in binary floating point: a mode that
    # ends at 0.3 reaches it
    line = accuracy_table([fake_cell(0, 0.2, 0.3, 0.1 + 0.2, 0.31, 0.25)]).splitlines()[2]
    assert "| aggregate | yes yes yes yes |" in line


def test_a_cell_that_cannot_be_partitioned_is_recorded_not_run(tmp_path):
    cell = Cell("digits-sgd", 400, "iid", 0, 2)
    results = run_grid([cell], tmp_path, flower_python=None, log=lambda line: None)
    assert "fewer than the 10 each learner needs" in results[0]["error"]
    assert "not run" in accuracy_table(results)
    # the grid resumes: a cell on disk is not played again
    again = run_grid([cell], tmp_path, flower_python=None, log=pytest.fail)
    assert again == results


def test_the_speed_job_times_every_round_of_every_mode():
    for settings in ({"mode": "single"}, {"mode": "screened", "proposers": 2}):
        job = {"learners": 4, "rounds": 3, "settings": settings, "store": True, "launched": 0.0}
        got = ours_speed(job)
        assert len(got["round_seconds"]) == 2 and got["first_round_end"] > 0


def test_each_speed_mode_is_timed_as_the_grid_plays_it():
    # the momentum mode is aggregate rounds with the server step, not screened ones
    from colearning import ConfigError
    from colearning.bench.collaboration import MODES, speed_settings

    for mode in MODES:
        settings = speed_settings(mode, 4)
        assert settings["mode"] == MODES[mode]["mode"], mode
        for key in ("server_lr", "server_momentum"):
            assert settings.get(key) == MODES[mode].get(key), (mode, key)
        job = {"learners": 4, "rounds": 3, "settings": settings, "store": False, "launched": 0.0}
        got = ours_speed(json.loads(json.dumps(job)))  # it travels to the timed process as JSON
        assert len(got["round_seconds"]) == 2, mode
    with pytest.raises(ConfigError, match="modes must be among"):
        speed_settings("fastest", 4)


def test_tree_rss_counts_children_too():
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, numpy; x = numpy.ones(2**24); sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        alone = tree_rss(child.pid)
        for _ in range(200):  # until the child has its 128 MiB
            if (alone := tree_rss(child.pid)) > 2**27:
                break
            __import__("time").sleep(0.05)
        assert tree_rss(os.getpid()) >= alone > 2**27
    finally:
        child.communicate(b"")


@pytest.mark.slow
def test_a_small_grid_cell_plays_every_mode_and_the_baselines(tmp_path):
    cell = Cell("digits-sgd", 3, "iid", 0, 2)
    (result,) = run_grid([cell], tmp_path, flower_python=None, log=lambda line: None)
    ours = result["ours"]
    assert set(ours["modes"]) == {"single", "aggregate", "screened", "momentum"}
    assert ours["modes"]["single"]["epochs"] == [0, 5, 10]
    assert ours["modes"]["aggregate"]["epochs"] == [0, 15, 30]
    assert ours["modes"]["momentum"]["epochs"] == [0, 15, 30]
    for m in ours["modes"].values():
        assert len(m["scores"]) == 3 and all(0 <= s <= 1 for s in m["scores"])
    assert len(ours["alone"]["final"]) == 3 and len(ours["pooled"]["scores"]) == 3
    assert ours["peak_rss_mib"] > 10
    saved = json.loads((tmp_path / "raw" / f"{cell.key}.json").read_text())
    assert saved["ours"]["modes"] == ours["modes"]


@pytest.mark.slow
def test_a_mode_asked_of_a_played_cell_is_added_to_it_and_the_rest_kept(tmp_path):
    cell = Cell("digits-sgd", 3, "iid", 0, 2)
    quiet = {"flower_python": None, "log": lambda line: None}
    (first,) = run_grid([cell], tmp_path, modes=("single",), **quiet)
    (grown,) = run_grid([cell], tmp_path, modes=("single", "momentum"), **quiet)
    (fresh,) = run_grid([cell], tmp_path / "fresh", modes=("momentum",), **quiet)
    assert set(grown["ours"]["modes"]) == {"single", "momentum"}
    assert grown["ours"]["modes"]["single"] == first["ours"]["modes"]["single"]
    assert grown["ours"]["alone"] == first["ours"]["alone"]
    # played on the same partition, the added mode scores as in a grid of its own
    assert (
        grown["ours"]["modes"]["momentum"]["scores"] == fresh["ours"]["modes"]["momentum"]["scores"]
    )
    saved = json.loads((tmp_path / "raw" / f"{cell.key}.json").read_text())
    assert saved["ours"]["modes"] == grown["ours"]["modes"]


def test_speed_runs_pool_every_processs_rounds_but_their_first():
    from colearning.bench.collaboration import _median_round, pool_runs

    runs = [
        {"round_seconds": [9.0, 1.0, 1.0], "first_round_end": 3.0, "peak_rss_mib": 40.0},
        {"round_seconds": [9.0, 5.0, 5.0], "first_round_end": 1.0, "peak_rss_mib": 60.0},
        {"round_seconds": [9.0, 2.0, 2.0], "first_round_end": 2.0, "peak_rss_mib": 50.0},
    ]
    for r in runs:
        r["wall_seconds"] = 1.0
    got = pool_runs(runs)
    assert got["round_seconds"] == [9.0, 1.0, 1.0, 5.0, 5.0, 2.0, 2.0]
    assert _median_round(got) == 2.0  # one slow process does not set the figure
    assert got["first_round_end"] == 2.0 and got["peak_rss_mib"] == 60.0
    assert got["processes"] == 3


def test_the_half_momentum_mode_is_asked_for_not_played_by_default():
    from colearning.bench.collaboration import GRID_MODES, MODES, _grid_settings
    from colearning.cli.main import _parser

    cell = Cell("digits-sgd", 100, "iid", 0, 2)
    assert _grid_settings("momentum-0.5", cell) == {
        "mode": "aggregate",
        "combiner": "mean",
        "server_momentum": 0.5,
    }
    assert "momentum-0.5" in MODES and "momentum-0.5" not in GRID_MODES
    args = _parser().parse_args(["bench", "collaboration"])
    assert args.modes == list(GRID_MODES)


def test_flowers_side_is_added_to_a_cell_played_without_it(tmp_path, monkeypatch):
    """The grid's bookkeeping only: Flower's side itself runs in .venv-bench (the
    benchmark's committed figures), so here the subprocess that would run it is replaced
    and what it is asked, and what is kept, are checked."""
    import colearning.bench.collaboration as collaboration

    cell = Cell("digits-sgd", 3, "iid", 0, 2)
    quiet = {"log": lambda line: None}
    (first,) = run_grid([cell], tmp_path, flower_python=None, **quiet)
    assert first["flower"] is None
    rows = (tmp_path / "partitions" / f"{cell.key}.json").read_text()
    asked = []

    def flower_side(command, job, workdir):
        asked.append((command, job))
        return {"scores": [0.1, 0.2, 0.3], "epochs_per_round": 15, "wall_seconds": 1.0}

    monkeypatch.setattr(collaboration, "spawn", flower_side)
    (grown,) = run_grid([cell], tmp_path, flower_python="/flower/python", **quiet)
    ((command, job),) = asked
    assert command[0] == "/flower/python" and command[1].endswith("flower_side.py")
    assert job == {
        "kind": "accuracy",
        "partition_file": str(tmp_path / "partitions" / f"{cell.key}.json"),
        "rounds": 2,
    }
    assert (tmp_path / "partitions" / f"{cell.key}.json").read_text() == rows  # same rows
    assert grown["ours"] == first["ours"]  # this project's side is not played again
    assert grown["flower"]["scores"] == [0.1, 0.2, 0.3]
    saved = json.loads((tmp_path / "raw" / f"{cell.key}.json").read_text())
    assert saved["flower"] == grown["flower"]
    run_grid([cell], tmp_path, flower_python="/flower/python", **quiet)
    assert len(asked) == 1  # a cell with Flower's side is left as it is
