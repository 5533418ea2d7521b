"""``colearn run --processes`` / ``--remote`` and ``colearn learner serve`` as users run
them: the same final weights over every transport, no process left behind, readable
refusals."""

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import COLEARN, env

FAST = [
    "--task",
    "digits-sgd",
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


@pytest.mark.slow
def test_processes_remote_and_in_process_runs_end_with_the_same_weights(tmp_path, serve):
    colearn("run", *FAST, "--out", tmp_path / "local")
    want = final_id(tmp_path / "local")

    mark, environ = marked()
    colearn("run", *FAST, "--processes", "--out", tmp_path / "procs", environ=environ)
    assert final_id(tmp_path / "procs") == want
    assert survivors(mark) == []  # success leaves nothing behind
    colearn("run", *FAST, "--processes", "--no-pipeline", "--out", tmp_path / "plain")
    assert final_id(tmp_path / "plain") == want

    servers = [
        serve(
            "--task",
            "digits-sgd",
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
    proc = colearn(
        "run",
        "--remote",
        remote,
        "--insecure",
        "--rounds",
        "3",
        "--out",
        tmp_path / "remote",
        "--format",
        "json",
    )
    data = json.loads(proc.stdout)
    assert data["summary"]["final_weights_id"] == want
    assert final_id(tmp_path / "remote") == want
    assert "tested" in servers[0].log.read_text()


@pytest.mark.slow
def test_a_killed_coordinator_resumes_against_the_same_learners(tmp_path, serve):
    colearn(
        "run",
        *FAST[:4],
        "--rounds",
        "6",
        "--partition",
        "iid",
        "--no-baselines",
        "--out",
        tmp_path / "whole",
    )
    want = final_id(tmp_path / "whole")
    servers = [
        serve(
            "--task",
            "digits-sgd",
            "--share",
            f"{i}/3",
            "--partition",
            "iid",
            "--insecure",
            name=f"learner-{i}",
        )
        for i in range(3)
    ]
    remote = ",".join(s.address for s in servers)
    out = tmp_path / "remote"
    coordinator = subprocess.Popen(
        [*COLEARN, "run", "--remote", remote, "--insecure", "--rounds", "6", "--out", str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
    )
    for line in coordinator.stdout:  # wait for a committed round, then kill it
        if line.strip().startswith("1  learner-1"):
            break
    coordinator.kill()
    coordinator.wait()
    colearn("run", "--resume", out, "--insecure")
    assert final_id(out) == want


@pytest.mark.slow
def test_processes_are_gone_after_a_failure_and_after_ctrl_c(tmp_path):
    mark, environ = marked()
    proc = colearn(
        "run",
        "--task",
        "digits-sgd",
        "--learners",
        "2",
        "--processes",
        "--out",
        tmp_path / "x",
        "-c",
        "params.epochs=0",
        check=False,
        environ=environ,
    )
    assert proc.returncode == 2 and "epochs" in proc.stderr
    assert wait_gone(mark) == []

    mark, environ = marked()
    coordinator = subprocess.Popen(
        [
            *COLEARN,
            "run",
            "--task",
            "digits-sgd",
            "--learners",
            "3",
            "--rounds",
            "500",
            "--processes",
            "--out",
            str(tmp_path / "y"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    for line in coordinator.stdout:
        if line.strip().startswith("0  learner-0"):
            break
    assert len(survivors(mark)) == 4  # the coordinator and its three servers
    coordinator.send_signal(signal.SIGINT)
    _, err = coordinator.communicate(timeout=120)
    assert coordinator.returncode == 130, err
    assert "--resume" in err
    assert wait_gone(mark) == []


@pytest.mark.slow
def test_servers_die_with_a_coordinator_killed_by_sigkill(tmp_path):
    mark, environ = marked()
    coordinator = subprocess.Popen(
        [
            *COLEARN,
            "run",
            "--task",
            "digits-sgd",
            "--learners",
            "2",
            "--rounds",
            "500",
            "--processes",
            "--out",
            str(tmp_path / "z"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=environ,
    )
    for line in coordinator.stdout:
        if line.strip().startswith("0  learner-0"):
            break
    coordinator.kill()
    coordinator.wait()
    assert wait_gone(mark) == []


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
    ],
)
def test_bad_input_is_refused_in_one_line(tmp_path, args, message):
    proc = colearn(*args, check=False, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_certs_init_and_issue(tmp_path):
    d = tmp_path / "certs"
    colearn("certs", "init", d)
    colearn("certs", "issue", d, "learner-0", "coordinator")
    assert {p.name for p in d.iterdir()} >= {"ca.pem", "learner-0.pem", "coordinator.key"}
    assert oct((d / "learner-0.key").stat().st_mode & 0o777) == "0o600"
    again = colearn("certs", "init", d, check=False)
    assert again.returncode == 2 and "already holds a CA" in again.stderr
