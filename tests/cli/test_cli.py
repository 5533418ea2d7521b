"""The command line as a user meets it: real subprocesses, real experiment directories."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from colearning.cli.main import main
from colearning.core.store import opened

COLEARN = [sys.executable, "-m", "colearning.cli.main"]
FAST = ["--task", "digits-sgd", "--learners", "3", "--rounds", "3", "--partition", "iid"]


def colearn(*args, check=True, **kw):
    proc = subprocess.run([*COLEARN, *map(str, args)], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"colearn {args} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def snapshot(directory):
    with opened(directory) as store:
        return store.to_json()


def test_run_prints_rounds_and_summary_and_commits(tmp_path):
    out = tmp_path / "exp"
    proc = colearn("run", *FAST, "--out", out)
    assert "round  proposer" in proc.stdout
    assert "collective model" in proc.stdout and "pooled data" in proc.stdout
    assert "learner-2 alone" in proc.stdout
    data = snapshot(out)
    assert [r["round_index"] for r in data["rounds"]] == [0, 1, 2]
    assert data["summary"]["collective"]["score"] > 0.5


def test_json_format_keeps_stdout_pure(tmp_path):
    proc = colearn("run", *FAST, "--out", tmp_path / "e", "--format", "json")
    data = json.loads(proc.stdout)
    assert len(data["rounds"]) == 3
    assert data["summary"]["metric"] == "accuracy"
    assert set(data["rounds"][0]["votes"][0]) >= {"learner_id", "vote", "vote_score", "test_score"}


def test_toml_config_with_overrides(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'task = "digits-sgd"\nlearners = 2\nrounds = 5\npartition = "iid"\nseed = 3\n'
        f'out = "{tmp_path / "from-toml"}"\n'
    )
    colearn("run", config, "-c", "rounds=2", "-c", "threshold=1.0", "--no-baselines")
    data = snapshot(tmp_path / "from-toml")
    assert len(data["rounds"]) == 2
    assert data["config"]["vote_threshold"] == 1.0 and data["config"]["seed"] == 3
    assert "individual" not in data["summary"]


def test_tasks_lists_the_bundled_tasks(capsys):
    assert main(["tasks"]) == 0
    listed = capsys.readouterr().out
    for name in ("digits-mlp", "mnist-mlp", "digits-sgd"):
        assert name in listed


BAD = [
    (["--task", "no-such-task"], "unknown task 'no-such-task'"),
    (["--task", "digits-sgd", "--threshold", "1.5"], "vote_threshold must be in [0, 1]; got 1.5"),
    (["--task", "digits-sgd", "--learners", "0"], "learners must be a whole number >= 1; got 0"),
    (["--task", "digits-sgd", "--partition", "zipf:2"], "partition must be"),
    (["--task", "digits-sgd", "--learners", "400", "--partition", "iid"], "learner"),
    (["--task", "digits-sgd", "-c", "params.nonsense=1"], "has no option 'nonsense'"),
    (["--task", "digits-sgd", "-c", "oops"], "must look like key=value"),
    (["missing.toml"], "config file missing.toml does not exist"),
    (["--task", "cifar10-cnn", "--data-dir", "nowhere"], "no CIFAR-10 batch files in nowhere"),
    (["--task", "mnist-cnn-dp", "-c", "params.epsilon=0"], "epsilon must be a number > 0; got 0"),
    (["--task", "digits-sgd", "--mode", "aggregate", "--combiner", "avg"], "combiner must be one"),
    (["--task", "digits-sgd", "--mode", "screened", "--proposer", "random"], "proposers=K"),
    (["--task", "digits-sgd", "--mode", "aggregate", "--proposers", "0"], "proposers must be"),
    (["--task", "digits-sgd", "--proposers", "2"], "a single round has one proposer"),
    (["--task", "digits-sgd", "--mode", "aggregate", "--server-lr", "0"], "got 0.0"),
    (["--task", "digits-sgd", "--mode", "aggregate", "--server-momentum", "1"], "in [0, 1)"),
    (["--task", "digits-sgd", "--server-momentum", "0.9"], "a single round has one proposal"),
    (["--task", "digits-sgd", "--split", "0.5,0.5,0.2"], "that sum to 1, e.g. 0.5,0.3,0.2"),
    (["--task", "digits-sgd", "--split", "0.6/0.2/0.2"], "split must be three shares"),
    (["--task", "digits-sgd", "--split", "0.995,0.004,0.001"], "must each be at least 0.01"),
]
if shutil.which("nvidia-smi") is None:  # on a GPU machine device='cuda' is valid input
    BAD.append((["--task", "mnist-cnn", "-c", "params.device=cuda"], "no CUDA GPU is visible"))


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    proc = colearn("run", *args, "--out", tmp_path / "never", check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_bad_directories_for_resume_and_plot(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.csv").write_text("a,b\n")
    for args in (
        ["run", "--resume", tmp_path / "foreign"],
        ["run", "--resume", tmp_path / "missing"],
        ["plot", tmp_path / "foreign"],
        ["export", tmp_path / "foreign"],
    ):
        proc = colearn(*args, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert (
            "not a colearning experiment directory" in proc.stderr
            or "not a directory" in proc.stderr
        )
    assert (tmp_path / "foreign" / "data.csv").read_text() == "a,b\n"
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "experiment.sqlite").write_bytes(os.urandom(4096))
    proc = colearn("run", "--resume", tmp_path / "garbled", check=False)
    assert (
        proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    )


def test_existing_out_and_changed_resume_are_refused_without_loss(tmp_path):
    out = tmp_path / "exp"
    colearn("run", *FAST, "--out", out, "--no-baselines")
    before = snapshot(out)
    proc = colearn("run", *FAST, "--out", out, check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr
    proc = colearn("run", "--resume", out, "--threshold", "0.9", check=False)
    assert proc.returncode == 2
    assert "was run with vote_threshold=0.5; got vote_threshold=0.9" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(out) == before


def test_resume_can_extend_rounds(tmp_path):
    out = tmp_path / "exp"
    colearn("run", *FAST, "--out", out, "--no-baselines")
    colearn("run", "--resume", out, "--rounds", "5")
    assert [r["round_index"] for r in snapshot(out)["rounds"]] == [0, 1, 2, 3, 4]


def committed_rounds(directory: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{directory / 'experiment.sqlite'}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


PAUSED_RUN = Path(__file__).with_name("paused_run.py")


def killed_at(point: str, round_index: int, out: Path, args: list[str]) -> None:
    """Run colearn until it pauses at ``point`` of ``round_index``, then SIGKILL it."""
    marker = out.parent / f"{out.name}.paused"
    victim = subprocess.Popen(
        [
            sys.executable,
            str(PAUSED_RUN),
            str(marker),
            point,
            str(round_index),
            "--",
            "run",
            *args,
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # the child blocks once it has written the marker: no race with the kill
        deadline = time.monotonic() + 300
        while not marker.exists():
            if victim.poll() is not None:
                raise AssertionError(f"the run ended before pausing: {victim.stderr.read()}")
            if time.monotonic() > deadline:
                raise AssertionError("the run never reached its pause point")
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait()
        victim.stderr.close()


KILL_ARGS = [
    "--task",
    "digits-mlp",
    "--learners",
    "4",
    "--rounds",
    "8",
    "--seed",
    "7",
    "--partition",
    "dirichlet:0.5",
    "--no-baselines",
]
MODES = {
    "single": [],
    "screened": ["--mode", "screened"],
    # a robust combiner over a sample of proposers, then FedAvgM's server step
    "momentum": [
        "--mode",
        "aggregate",
        "--combiner",
        "trimmed-mean",
        "--proposers",
        "3",
        "--server-lr",
        "1.2",
        "--server-momentum",
        "0.9",
    ],
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted run of each mode, made once."""
    made = {}

    def run(mode):
        if mode not in made:
            out = tmp_path_factory.mktemp(f"whole-{mode}") / "exp"
            colearn("run", *KILL_ARGS, *MODES[mode], "--out", out)
            made[mode] = snapshot(out)
        return made[mode]

    return run


# A real task (digits-mlp) killed at three points; tests/faults kills the framework-free
# toy task at every point of every mode.
@pytest.mark.slow
@pytest.mark.parametrize(
    "point, mode",
    [("round", "single"), ("commit", "screened"), ("validate", "momentum")],
)
def test_kill_9_mid_run_then_resume_matches_uninterrupted(tmp_path, point, mode, uninterrupted):
    args, whole = [*KILL_ARGS, *MODES[mode]], uninterrupted(mode)
    # the round to kill in: an accepted one, so "commit" stops after its blob is written
    at = next(
        r["round_index"]
        for r in whole["rounds"]
        if r["status"] == "accepted" and r["round_index"] >= 2
    )
    killed_at(point, at, tmp_path / "killed", args)
    assert committed_rounds(tmp_path / "killed") == at

    proc = colearn("run", "--resume", tmp_path / "killed")
    assert f"resuming at round {at}" in proc.stdout
    resumed = snapshot(tmp_path / "killed")
    assert [r["round_index"] for r in resumed["rounds"]] == list(range(8))
    assert resumed["final_weights_id"] == whole["final_weights_id"]
    for a, b in zip(resumed["rounds"], whole["rounds"], strict=True):
        assert (a["status"], a["weights_id"]) == (b["status"], b["weights_id"])
        assert _same_but_seconds(a, b)
        assert a["candidate"] == b["candidate"]
    assert {r["mode"] for r in resumed["rounds"]} == {"aggregate" if mode == "momentum" else mode}


def _same_but_seconds(a, b):
    """The same proposals and screening votes, call durations aside."""

    def strip(proposals):
        return [
            {
                **{k: v for k, v in p.items() if k != "seconds"},
                "screening": [{**v, "seconds": 0} for v in p["screening"]],
            }
            for p in proposals
        ]

    return strip(a["proposals"]) == strip(b["proposals"])


def test_aggregate_and_screened_runs_record_their_candidates(tmp_path):
    out = tmp_path / "agg"
    proc = colearn(
        "run", *FAST, "--mode", "aggregate", "--combiner", "median", "--out", out, "--plot"
    )
    assert "mode aggregate (median)" in proc.stdout
    data = snapshot(out)
    assert data["config"]["mode"] == "aggregate" and data["config"]["combiner"] == "median"
    for r in data["rounds"]:
        assert r["mode"] == "aggregate" and len(r["proposals"]) == 3
        assert r["candidate"]["combiner"] == "median"
        assert r["decision"]["eligible"] == 3  # every learner votes on the combination
    assert (out / "plot.png").stat().st_size > 10_000
    out = tmp_path / "scr"
    colearn("run", *FAST, "--mode", "screened", "--proposers", "2", "--out", out, "--no-baselines")
    for r in snapshot(out)["rounds"]:
        assert len(r["proposals"]) == 2
        assert all(len(p["screening"]) == 3 for p in r["proposals"])
        assert all(p["screened"]["eligible"] == 2 for p in r["proposals"])


def test_plot_show_and_export(tmp_path):
    out = tmp_path / "exp"
    colearn("run", *FAST, "--out", out, "--plot")
    png = out / "plot.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    shown = colearn("show", out).stdout
    assert "collective model" in shown and shown.count("\n") > 5
    exported = colearn("export", out, "--format", "json", "-o", tmp_path / "r.json")
    assert "results written" in exported.stdout
    assert json.loads((tmp_path / "r.json").read_text())["final_weights_id"]
    colearn("export", out, "--format", "safetensors", "-o", tmp_path / "w.safetensors")
    from colearning import decode, id_of

    weights = decode((tmp_path / "w.safetensors").read_bytes())
    assert id_of(weights) == snapshot(out)["final_weights_id"]


def test_export_onnx_predicts_like_the_final_learner(tmp_path):
    import numpy as np
    import onnxruntime as ort

    from colearning.tasks.export import final_learner
    from colearning.tasks.runner import RunConfig, build

    out = tmp_path / "exp"
    colearn(
        "run",
        "--task",
        "digits-mlp",
        "--learners",
        "3",
        "--rounds",
        "3",
        "--out",
        out,
        "--no-baselines",
    )
    proc = colearn("export", out, "--format", "onnx", "-o", tmp_path / "model.onnx")
    assert "ONNX" in proc.stdout
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    X = build(RunConfig(task="digits-mlp", learners=3, rounds=3)).parts[0].test[0]
    labels = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]
    np.testing.assert_array_equal(labels, final_learner(out).predict(X))


@pytest.mark.parametrize(
    "args, message",
    [
        (["collaboration", "--flower-python", "nowhere/python"], "no Flower environment at"),
        (["collaboration", "--no-flower", "--rounds", "0"], "rounds must be a whole number"),
        ([], "name a benchmark: colearn bench collaboration"),
    ],
)
def test_bench_refuses_bad_input_in_one_line(tmp_path, args, message):
    out = ["--out", tmp_path / "b"] if args else []
    proc = colearn("bench", *args, *out, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b" / "raw").exists()
