"""Every registered task runs end to end through `colearn run`, for a few rounds.

Each run is small (3 learners, 2 rounds, light options) so the whole matrix stays
inside the suite's time budget; accuracy is measured by the benchmarks, not here.
"""

import json

import numpy as np
import pytest

from colearning.cli.main import main
from colearning.tasks import list_tasks

LIGHT = {
    "mnist-cnn": ["-c", "params.epochs=1", "-c", "params.num_batches=3"],
    "mnist-cnn-dp": ["-c", "params.epochs=1", "-c", "params.secret_noise=false"],
    "cifar10-cnn": ["-c", "params.epochs=1"],
    "cifar10-resnet18": ["-c", "params.epochs=1", "-c", "params.batch_size=16"],
    "mnist-keras": ["-c", "params.model=dense"],
    "digits-mlp": [],
}
HEAVY = {"cifar10-resnet18", "mnist-keras", "mnist-cnn-dp"}


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    from colearning.data.cifar import write_cifar_batches

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(180, 3, 32, 32), dtype=np.uint8)
    y = np.arange(180) % 10
    return write_cifar_batches(tmp_path_factory.mktemp("cifar"), X, y, test_rows=30)


def test_the_matrix_covers_every_task():
    assert {t.name for t in list_tasks()} >= set(LIGHT) | {"iris-forest", "diabetes-xgb"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(t.name, marks=pytest.mark.slow) if t.name in HEAVY else t.name
        for t in list_tasks()
    ],
)
def test_task_runs_in_colearn_run(name, tmp_path, capsys, cifar_dir):
    args = [
        "run",
        "--task",
        name,
        "--learners",
        "3",
        "--rounds",
        "2",
        "--partition",
        "iid",
        "--out",
        str(tmp_path / "exp"),
        "--no-baselines",
        "--format",
        "json",
    ]
    if name.startswith("cifar10"):
        args += ["--data-dir", str(cifar_dir)]
    assert main(args + LIGHT.get(name, [])) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["round_index"] for r in result["rounds"]] == [0, 1]
    assert result["summary"]["collective"]["score"] is not None
    for record in result["rounds"]:
        if record["status"] != "skipped":
            scores = [v["vote_score"] for v in record["votes"]]
            assert all(s is not None and np.isfinite(s) for s in scores)
    assert (tmp_path / "exp" / "experiment.sqlite").is_file()


@pytest.mark.parametrize(
    "name", [t.name for t in list_tasks() if t.name not in HEAVY and t.name != "cifar10-cnn"]
)
def test_exported_onnx_model_predicts_like_the_learner(name, tmp_path, capsys):
    """`colearn export --format onnx` writes the final model; onnxruntime runs it on the
    test split and agrees with the learner's own predictions."""
    import onnxruntime as ort

    from colearning.tasks.export import final_learner
    from colearning.tasks.runner import RunConfig, build

    out = tmp_path / "exp"
    common = ["--task", name, "--learners", "3", "--rounds", "2", "--partition", "iid"]
    assert main(["run", *common, "--out", str(out), "--no-baselines", *LIGHT.get(name, [])]) == 0
    assert main(["export", str(out), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()

    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    params = dict(a.split("=", 1) for a in LIGHT.get(name, [])[1::2])
    config = RunConfig(
        task=name,
        learners=3,
        rounds=2,
        partition="iid",
        params={k.removeprefix("params."): v for k, v in params.items()},
    )
    X = build(config).parts[0].test[0]
    feed = X.astype(np.float32)
    expected_rank = len(session.get_inputs()[0].shape)
    feed = feed.reshape(len(X), *X.shape[1:]) if expected_rank == X.ndim else feed
    first = session.run(None, {session.get_inputs()[0].name: feed})[0]
    assert len(first) == len(X) and np.isfinite(first.astype(float)).all()
    learner = final_learner(out)
    if hasattr(learner, "predict"):
        mine = np.asarray(learner.predict(X))
        got = first.argmax(axis=1) if first.ndim == 2 and first.shape[1] > 1 else first.ravel()
        if np.issubdtype(mine.dtype, np.integer):
            assert np.mean(got == mine) >= 0.99
        else:
            np.testing.assert_allclose(got, mine.ravel(), rtol=1e-3, atol=1e-3)
