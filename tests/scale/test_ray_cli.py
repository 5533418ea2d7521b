"""`colearn run --pool ray`: the same experiment as in process; a pool that starts its own
Ray leaves no process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from colearning.cli.main import main

RUN = [
    "run",
    "--task",
    "synthetic-softmax",
    "--learners",
    "40",
    "--rounds",
    "6",
    "--committee",
    "9",
    "--no-baselines",
    "-c",
    "params.rows=2400",
    "--format",
    "json",
]


@pytest.mark.usefixtures("ray_session")
def test_colearn_run_on_ray_ends_with_the_in_process_weights(tmp_path, capsys):
    assert main([*RUN, "--out", str(tmp_path / "local")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*RUN, "--out", str(tmp_path / "ray"), "--pool", "ray", "--ray-actors", "3"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["final_weights_id"] == local["final_weights_id"]
    assert [r["committee"] for r in remote["rounds"]] == [r["committee"] for r in local["rounds"]]
    # and a resume on Ray continues it exactly as in process
    assert main(["run", "--resume", str(tmp_path / "ray"), "--rounds", "8", "--pool", "ray"]) == 0
    assert main(["run", "--resume", str(tmp_path / "local"), "--rounds", "8"]) == 0
    capsys.readouterr()
    from colearning.core.store import opened

    with opened(tmp_path / "ray") as a, opened(tmp_path / "local") as b:
        assert a.current_weights_id() == b.current_weights_id()


CHILD = textwrap.dedent(
    """
    import json, os, sys
    import ray
    from colearning import Experiment
    from colearning.scale import RayPool
    from colearning.testing import QuadraticLearner

    def descendants():
        children = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue
                children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [os.getpid()]
        while todo:
            for child in children.get(todo.pop(), []):
                out.append(child)
                todo.append(child)
        return out

    pool = RayPool([QuadraticLearner(target=[1.0], seed=i) for i in range(4)], actors=2)
    assert ray.is_initialized()
    with Experiment(pool) as experiment:  # closes the pool, which shuts its Ray down
        experiment.run(3)
        during = descendants()
    print(json.dumps({"during": during, "after": descendants(), "up": ray.is_initialized()}))
    """
)


@pytest.mark.slow
def test_a_pool_that_starts_ray_stops_it_and_leaves_no_process(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}  # Ray writes ~/.ray/auth_token
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["during"]) >= 3  # Ray's own processes and the actors' workers
    assert report["after"] == [] and report["up"] is False
    assert (tmp_path / ".ray" / "auth_token").exists()  # in the temporary home, not ~
