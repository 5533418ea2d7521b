"""``colearn run --processes`` / ``--remote`` and ``colearn learner serve`` as users run
them: the same final weights over every transport, no process left behind, readable
refusals."""

import dataclasses
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import COLEARN, HERE, env

#: A bundled task in NumPy alone (no framework to import in each of a test's processes).
FAST = [
    "--task",
    "synthetic-softmax",
    "--learners",
    "3",
    "--rounds",
    "3",
    "--partition",
    "iid",
    "--no-baselines",
]


def colearn(*args, check=True, environ=None, **kw):
    proc = subprocess.run(
        [*COLEARN, *map(str, args)], capture_output=True, text=True, env=environ or env(), **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"colearn {args} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def final_id(directory):
    from colearning.core.store import opened

    with opened(directory) as store:
        return store.current_weights_id()


@pytest.fixture(scope="module")
def reference_id():
    """The in-process run's final weights id for FAST (played here, in this process)."""
    from colearning.tasks.runner import RunConfig, run_task

    config = RunConfig(
        task="synthetic-softmax", learners=3, rounds=3, partition="iid", baselines=False
    )
    return run_task(config).result.final_weights_id


def marked():
    """An environment whose processes (and their children) can be found afterwards."""
    mark = uuid.uuid4().hex
    return mark, env(COLEARN_TEST_MARK=mark)


def survivors(mark):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"COLEARN_TEST_MARK={mark}".encode() in environ:
            found.append(int(pid))
    return found


def wait_gone(mark):
    # the children are ending (SIGTERM from the kernel or the coordinator); wait for the
    # condition, bounded only against a hang
    import time

    deadline = time.monotonic() + 60
    while survivors(mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    return survivors(mark)


def first_round(proc):
    """Read ``proc``'s table until round 0 is committed."""
    for line in proc.stdout:
        if line.strip().startswith("0  learner-0"):
            return
    raise AssertionError("the run ended before its first round")


@pytest.mark.slow
def test_processes_with_a_split_end_with_the_in_process_weights(tmp_path):
    """--split reaches the forked servers: their shares are the coordinator's."""
    from colearning.tasks.runner import RunConfig, run_task

    split = ["--split", "0.4,0.4,0.2"]
    colearn("run", *FAST, *split, "--processes", "--out", tmp_path / "p")
    config = RunConfig(
        task="synthetic-softmax",
        learners=3,
        rounds=3,
        partition="iid",
        baselines=False,
        split="0.4,0.4,0.2",
    )
    expected = run_task(config).result.final_weights_id
    assert final_id(tmp_path / "p") == expected
    default = RunConfig(task="synthetic-softmax", learners=3, rounds=3, partition="iid")
    assert (
        expected != run_task(dataclasses.replace(default, baselines=False)).result.final_weights_id
    )


@pytest.mark.slow
def test_processes_over_mutual_tls_end_with_the_in_process_weights(tmp_path, reference_id, capsys):
    """--processes with --certs: servers forked by the launcher, each with its own
    certificate, checking the coordinator's; the same final weights id as in process
    (pipelined, the default; unpipelined runs end alike: tests/core/test_pipeline.py)."""
    from colearning.cli.main import main
    from colearning.network import tls

    certs = tmp_path / "certs"  # (colearn certs itself: test_certs_init_and_issue)
    tls.init_ca(certs)
    for name in ("learner-0", "learner-1", "learner-2", "coordinator"):
        tls.issue(certs, name)
    mark, environ = marked()
    proc = colearn(
        "run",
        *FAST,
        "--processes",
        "--certs",
        certs,
        "--out",
        tmp_path / "procs",
        "--format",
        "json",
        environ=environ,
    )
    assert json.loads(proc.stdout)["summary"]["pipeline"]["started"] >= 1
    assert final_id(tmp_path / "procs") == reference_id
    assert survivors(mark) == []  # success leaves nothing behind

    # a missing certificate is found before anything starts; a broken one, by its server
    (certs / "learner-2.pem").unlink()
    (certs / "learner-1.pem").write_text("not a certificate")
    capsys.readouterr()
    code = main(["run", *FAST, "--processes", "--certs", str(certs), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err  # (in this process: refused before anything starts)
    assert code == 2
    assert "colearn certs issue" in err and "learner-2" in err
    assert not (tmp_path / "x").exists()
    tls.issue(certs, "learner-2")
    broken = colearn(
        "run",
        *FAST,
        "--processes",
        "--certs",
        certs,
        "--out",
        tmp_path / "y",
        check=False,
        environ=environ,
    )
    assert broken.returncode == 2, broken.stderr
    assert "learner-1's server exited with code 2 before it was ready" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1
    assert wait_gone(mark) == []


@pytest.mark.slow
def test_a_remote_run_killed_and_resumed_ends_with_the_in_process_weights(
    tmp_path, serve, reference_id, capsys
):
    """Real `colearn learner serve` processes driven with --remote; the coordinator is
    SIGKILLed after a committed round and resumed against the same learners."""
    servers = [
        serve(
            "--task",
            "synthetic-softmax",
            "--share",
            f"{i}/3",
            "--partition",
            "iid",
            "--seed",
            "0",
            "--insecure",
            name=f"learner-{i}",
        )
        for i in range(3)
    ]
    remote = ",".join(s.address for s in servers)
    out = tmp_path / "remote"
    coordinator = subprocess.Popen(
        [*COLEARN, "run", "--remote", remote, "--insecure", "--rounds", "3", "--out", str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    first_round(coordinator)  # committed: now kill it
    coordinator.kill()
    coordinator.wait()
    from colearning.cli.main import main

    # resumed here, in this process (the same `colearn` main), against the same servers
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--insecure", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["final_weights_id"] == reference_id
    assert final_id(out) == reference_id
    assert "tested" in servers[0].log.read_text()

    # the coordinator rebuilds the task's learner to export the verified final weights
    import numpy as np
    import onnxruntime as ort

    from colearning.tasks.export import final_learner
    from colearning.tasks.runner import RunConfig, build

    assert main(["export", str(out), "--format", "onnx", "-o", str(tmp_path / "model.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    X = build(RunConfig(task="synthetic-softmax", learners=3)).parts[0].test[0].astype(np.float32)
    labels = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_array_equal(labels, final_learner(out).predict(X))


@pytest.mark.slow
def test_no_server_outlives_a_failed_interrupted_or_killed_coordinator(tmp_path):
    """The launcher and its servers end with the coordinator: when it fails after they
    started, on Ctrl-C (exit 130, with the --resume hint) and on SIGKILL."""
    mark, environ = marked()
    failed = colearn(
        "run",
        "--task",
        "mnist-cnn",
        "--data-dir",
        tmp_path / "none",
        "--learners",
        "2",
        "--processes",
        "--out",
        tmp_path / "x",
        check=False,
        environ=environ,
    )
    assert failed.returncode == 2 and "Traceback" not in failed.stderr, failed.stderr
    assert wait_gone(mark) == []

    def start(mark_env, out):
        return subprocess.Popen(
            [
                *COLEARN,
                "run",
                "--task",
                "synthetic-softmax",
                "--learners",
                "2",
                "--rounds",
                "500",
                "--processes",
                "--out",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=mark_env,
        )

    int_mark, int_env = marked()
    kill_mark, kill_env = marked()
    interrupted, killed = start(int_env, tmp_path / "y"), start(kill_env, tmp_path / "z")
    first_round(interrupted)
    first_round(killed)
    assert len(survivors(int_mark)) == 4  # the coordinator, the launcher and 2 servers
    interrupted.send_signal(signal.SIGINT)
    killed.kill()
    _, err = interrupted.communicate(timeout=120)
    killed.communicate(timeout=120)
    assert interrupted.returncode == 130, err
    assert "--resume" in err
    assert wait_gone(int_mark) == []
    assert wait_gone(kill_mark) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["learner", "serve", "--task", "digits-sgd"],
            "--certs DIR (mutual TLS) or an explicit --insecure",
        ),
        (
            ["learner", "serve", "--task", "digits-sgd", "--share", "5/5", "--insecure"],
            "INDEX must be in 0..COUNT-1",
        ),
        (
            ["learner", "serve", "--task", "digits-sgd", "--share", "two", "--insecure"],
            "INDEX/COUNT",
        ),
        (
            ["learner", "serve", "--factory", "factories:not_a_learner", "--id", "a", "--insecure"],
            "must return a colearning.MachineLearningInterface",
        ),
        (
            ["learner", "serve", "--factory", "nowhere:f", "--id", "a", "--insecure"],
            "cannot import",
        ),
        (
            ["learner", "serve", "--task", "digits-sgd", "--id", "x", "--certs", "/nonexistent"],
            "colearn certs init /nonexistent",
        ),
        (["run", "--remote", "127.0.0.1:1", "--out", "o"], "--certs DIR"),
        (["run", "--remote", "nohost", "--insecure", "--out", "o"], "HOST:PORT"),
        (
            [
                "run",
                "--remote",
                "127.0.0.1:1",
                "--insecure",
                "--out",
                "o",
                "--connect-timeout",
                "1",
            ],
            "cannot use learner-0 at 127.0.0.1:1",
        ),
        (
            ["run", "--remote", "127.0.0.1:1", "--insecure", "--out", "o", "--learners", "3"],
            "with --remote the learners hold",
        ),
        (["certs", "issue", "/nonexistent", "bad name"], "a certificate name must be"),
        (
            ["learner", "serve", "--task", "digits-sgd", "--insecure", "--split", "0.5,0.3,0.2"],
            "--split divides a share of the data set; it needs --share I/N",
        ),
        (
            ["learner", "serve", "--task", "digits-sgd", "--insecure", "--coordinator-name", "a"],
            "--coordinator-name checks the client's certificate; it needs --certs DIR",
        ),
        (
            [
                "learner",
                "serve",
                "--task",
                "digits-sgd",
                "--id",
                "x",
                "--certs",
                "c",
                "--coordinator-name",
                "no good",
            ],
            "a certificate name must be",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line(tmp_path, monkeypatch, capsys, args, message):
    # in this process (colearn's main, as the console script calls it): a refusal comes
    # before anything is loaded, and eleven interpreters would cost more than the checks
    from colearning.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))  # the factories module
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_certs_init_and_issue(tmp_path, capsys):
    from colearning.cli.main import main

    d = tmp_path / "certs"
    assert main(["certs", "init", str(d)]) == 0
    assert main(["certs", "issue", str(d), "learner-0", "coordinator"]) == 0
    assert {p.name for p in d.iterdir()} >= {"ca.pem", "learner-0.pem", "coordinator.key"}
    assert oct((d / "learner-0.key").stat().st_mode & 0o777) == "0o600"
    capsys.readouterr()
    assert main(["certs", "init", str(d)]) == 2
    assert "already holds a CA" in capsys.readouterr().err


def test_the_two_machine_walk_through_is_what_colearn_takes(tmp_path, monkeypatch, capsys):
    """Every `colearn ...` line of docs/network.md's shell blocks is parsed by colearn's
    own parser (a flag renamed or dropped fails here), and the certificate commands are
    run as written (the rest needs other machines: the tests above play them on one)."""
    import re
    import shlex

    from colearning.cli.main import _parser, main

    page = (HERE.parents[1] / "docs" / "network.md").read_text()
    lines = [
        line.split("  #")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", page, flags=re.S)
        for line in block.splitlines()
        if line.startswith("colearn ")
    ]
    assert len(lines) >= 5, lines
    assert any("learner serve" in line for line in lines)
    assert any("--remote" in line for line in lines)
    for line in lines:
        argv = shlex.split(line)[1:]
        try:
            _parser().parse_args(argv)
        except SystemExit as exc:
            raise AssertionError(f"docs/network.md: colearn cannot parse {line!r}") from exc
    monkeypatch.chdir(tmp_path)
    for line in lines:
        if line.startswith("colearn certs "):
            assert main(shlex.split(line)[1:]) == 0, capsys.readouterr().err
    assert {"ca.pem", "learner-0.pem", "learner-1.key", "coordinator.pem"} <= {
        p.name for p in (tmp_path / "certs").iterdir()
    }
