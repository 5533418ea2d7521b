"""`colearn run --ray-address`: joining a Ray cluster that was started on its own
(`ray start --head`, a real cluster of separate processes, with token authentication),
ending with the in-process weights, and leaving the cluster running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from colearning.cli.main import main

RUN = [
    "run",
    "--task",
    "synthetic-softmax",
    "--learners",
    "12",
    "--rounds",
    "5",
    "--committee",
    "5",
    "--no-baselines",
    "-c",
    "params.rows=720",
    "--format",
    "json",
]
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def said(log: Any) -> str:
    log.flush()
    log.seek(0)
    return str(log.read())[-3000:]


def cluster_up(address: str, env: dict[str, str]) -> bool:
    got = subprocess.run(
        [RAY, "status", "--address", address],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return got.returncode == 0


def start_head(env: dict[str, str], temp_dir: str, log_path: Path) -> tuple[Any, str]:
    """``ray start --head --block`` on fresh ports, up: ``(its process, its address)``;
    what it printed is in the failure's message if it does not come up."""
    address = f"127.0.0.1:{free_port()}"
    with open(log_path, "w+") as log:
        head = subprocess.Popen(
            [
                RAY,
                "start",
                "--head",
                "--block",
                "--node-ip-address",
                "127.0.0.1",
                "--port",
                address.rsplit(":", 1)[1],
                "--num-cpus",
                "2",
                "--include-dashboard",
                "false",
                # the two fixed defaults (10001, 52365), which any other Ray on this
                # machine may hold (the suite's own, in another test process)
                "--ray-client-server-port",
                str(free_port()),
                "--dashboard-agent-listen-port",
                str(free_port()),
                "--temp-dir",
                temp_dir,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not cluster_up(address, env):
            if head.poll() is not None:
                raise AssertionError(f"ray start --head ended by itself: {said(log)}")
            if time.monotonic() > deadline:
                stop(head)
                raise AssertionError(f"the Ray head did not come up in 120 s: {said(log)}")
            time.sleep(1)
    return head, address


def stop(head: Any) -> None:
    head.send_signal(signal.SIGTERM)  # --block: the head stops what it started
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)  # and anything left of its session


@pytest.mark.slow
def test_colearn_run_joins_a_running_cluster_and_leaves_it_running(tmp_path, capsys):
    assert main([*RUN, "--out", str(tmp_path / "local")]) == 0
    local = json.loads(capsys.readouterr().out)

    # A short temporary directory: Ray's socket paths must fit in 107 bytes. Its own
    # home, holding the cluster's token: the cluster runs with token authentication,
    # and the run joins it with the same token, as a node of a real cluster would. None
    # of this process's Ray variables are passed on: a ``ray.init()`` earlier in this
    # process (the suite's ``ray_session``) set RAY_AUTH_MODE=token for its own cluster,
    # and a head started with it but without a token ends at once.
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as short:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(tmp_path), RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
        subprocess.run(
            [RAY, "get-auth-token", "--generate"], env=env, capture_output=True, check=True
        )
        assert (tmp_path / ".ray" / "auth_token").exists()
        head, address = start_head(env, short, tmp_path / "ray-head.log")
        try:
            joined = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "colearning.cli.main",
                    *RUN,
                    "--out",
                    str(tmp_path / "cluster"),
                    "--ray-address",
                    address,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert joined.returncode == 0, joined.stderr
            remote = json.loads(joined.stdout)
            assert remote["final_weights_id"] == local["final_weights_id"]
            assert [r["committee"] for r in remote["rounds"]] == [
                r["committee"] for r in local["rounds"]
            ]
            # it ran there (its driver and actor workers logged into the cluster's
            # session), and closing the pool left the cluster running
            logs = [p.name for p in (Path(short) / "session_latest" / "logs").iterdir()]
            assert any(name.startswith("python-core-driver-") for name in logs), logs
            assert any(name.startswith("python-core-worker-") for name in logs), logs
            assert cluster_up(address, env)
        finally:
            stop(head)
        # the head stopped: its port takes no connection any more
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", int(address.rsplit(":", 1)[1])))
