"""Whatever a clumsy or hostile user types ends in a clean refusal or a correct result.

A clean refusal: exit code 2 (the input), 4 (something stored is damaged) or 74 (a
file could not be written), one line on stderr naming the value and the fix, no
traceback, and nothing committed changed. A correct result: exit code 0 and an
experiment directory that ``colearn verify`` passes, holding the rounds asked for.

Most command lines run in this process (``main(argv)``) on a task with no framework,
so hundreds can be generated; the ones about processes (Ctrl-C, two writers, a kill
mid-creation, a full disk, a read-only copy) run ``colearn`` for real.
"""

import contextlib
import ctypes
import importlib.util
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from colearning.cli import exit_codes
from colearning.cli.main import main
from colearning.core.store import opened
from colearning.core.verify import verify


@pytest.fixture(scope="module", autouse=True)
def toy_task():
    """The framework-free task "toy-cli" (``toy_task.py``), registered only while these
    tests run (registered at import, it would join every other module's tasks)."""
    from colearning.tasks import registry

    spec = importlib.util.spec_from_file_location(
        "toy_task", Path(__file__).with_name("toy_task.py")
    )
    assert spec is not None and spec.loader is not None
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    toy.register()
    yield
    registry._TASKS.pop(toy.NAME, None)


REFUSED = {exit_codes.USAGE, exit_codes.DAMAGED, exit_codes.IO_ERROR}


def colearn_here(*argv, cwd=None):
    """``main(argv)`` in this process: (exit code, stdout, stderr). Anything but an
    exit code escaping it (an exception: a traceback for a user) fails the test."""
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse's own refusals (usage + one error line)
                code = exc.code
    finally:
        os.chdir(before)
    return code, out.getvalue(), err.getvalue()


def assert_clean_refusal(code, err, command="run"):
    assert code in REFUSED, (code, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith(f"colearn {command}: error: "), err
    if lines[0].startswith("experiment directory: "):
        # with --format json the directory is announced on stderr before the data
        # load, whose refusals (a partition the rows cannot fill) come after it; the
        # callers check that nothing was made
        lines = lines[1:]
    if not lines[0].startswith("usage:"):  # argparse prints its usage line first
        assert len(lines) == 1, err


def assert_correct_run(directory, rounds):
    report = verify(directory)
    assert report.ok, report.damage
    assert report.rounds == rounds


# -- the command lines the issue lists ----------------------------------------------------

FAST = ["--task", "toy-cli", "--learners", "2", "--rounds", "1", "--no-baselines"]

ISSUE = [
    (["-c", "out=5"], "out must be a directory path (a string); got 5 (int)"),
    (["-c", "out=[1]"], "out must be a directory path (a string); got [1] (list)"),
    (["-c", "data_dir=5"], "data_dir must be a string; got 5 (int)"),
    (["-c", "params=5"], "-c params=... must be a table"),
    (["-c", 'task=["toy-cli"]'], "task must be a string; got ['toy-cli'] (list)"),
    (["--learners", "1000000000000"], "learners must be at most 10000; got 1000000000000"),
    (["--learners", "100000"], "learners must be at most 10000; got 100000"),
    (["--learners", "31"], "31 learners need at least 310 rows"),
    (["--partition", "shards:99999999999999999999"], "shards:K takes K <= 1000000"),
    (["--partition", ""], "partition must not be empty; got ''"),
    (["--out", ""], "out must name a directory; got ''"),
    (["--out", "/proc/x"], "cannot create the experiment directory /proc/x"),
    (["--out", "/etc/passwd/x"], "/etc/passwd is a file, not a directory"),
    (["--out", "x" * 300], "the path is longer than the operating system allows"),
    (["-c", "timeout=true"], "timeout must be a number of seconds > 0; got True (bool)"),
    (["-c", 'baselines="no"'], "baselines must be true or false; got 'no' (str)"),
    (["-c", "timeout=1e300"], "timeout must be at most 31536000 seconds"),
    (["--seed", "99999999999999999999"], "seed must be at most 9223372036854775807"),
    (["-c", "rounds=1e400"], "rounds must be a whole number in [0, 10000000]; got inf"),
    (["-c", "learners=true"], "learners must be a whole number in [1, 10000]; got True"),
    (["--resume", ""], "--resume needs an experiment directory"),
    (["-c", "rounds=5\nlearners=9"], "spans several lines"),
    # refused once the data are loaded, after --format json announced the directory
    # on stderr (found by the generated command lines below)
    (["--partition", "shards:200", "--format", "json"], "more than it has rows"),
]


@pytest.mark.parametrize("args, message", ISSUE)
def test_the_issues_command_lines_are_refused_in_one_line(tmp_path, args, message):
    flags = list(FAST)
    for flag in ("--learners", "--rounds", "--task", "--no-baselines"):
        key = flag[2:].removeprefix("no-")
        if any(a.startswith(key + "=") for a in args):  # let the override reach it
            i = flags.index(flag)
            del flags[i : i + (1 if flag == "--no-baselines" else 2)]
    if "--resume" in args:
        flags = []
    given_out = {"--out", "--resume"} & set(args) or any(a.startswith("out=") for a in args)
    out = [] if given_out else ["--out", "e"]
    code, _, err = colearn_here("run", *flags, *args, *out, cwd=tmp_path)
    assert_clean_refusal(code, err)
    assert message in err, err
    assert not (tmp_path / "e").exists()


def test_a_toml_file_with_two_spellings_of_one_setting_is_refused(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('task = "toy-cli"\nthreshold = 0.5\nvote_threshold = 0.9\n')
    code, _, err = colearn_here("run", config, "--out", tmp_path / "e")
    assert_clean_refusal(code, err)
    assert "sets vote_threshold twice, as 'threshold' and as 'vote_threshold'" in err
    config.write_text('task = "toy-cli"\ndata-dir = "a"\ndata_dir = "b"\n')
    code, _, err = colearn_here("run", config, "--out", tmp_path / "e")
    assert "sets data_dir twice" in err


@pytest.mark.parametrize(
    "toml, message",
    [
        ("timeout = true", "timeout must be a number of seconds > 0; got True (bool)"),
        ('baselines = "no"', "baselines must be true or false; got 'no' (str)"),
        ("out = 5", "out must be a directory path (a string); got 5 (int)"),
        ("params = 5", "params must be a table of task options; got 5"),
        ('data_dir = ""', "data_dir must not be empty"),
        ("seed = 1979-05-27", "seed must be a whole number"),
        ("[params]\nunused = 1979-05-27", "task option unused must be a number"),
    ],
)
def test_wrong_types_in_toml_are_refused_not_taken(tmp_path, toml, message):
    config = tmp_path / "run.toml"
    config.write_text(f'task = "toy-cli"\nrounds = 1\n{toml}\n')
    out = [] if toml.startswith("out") else ["--out", tmp_path / "e"]
    code, _, err = colearn_here("run", config, *out, cwd=tmp_path)
    assert_clean_refusal(code, err)
    assert message in err, err
    assert not (tmp_path / "e").exists()


# -- generated command lines ------------------------------------------------------------

# each setting's valid values, then hostile ones; a value is valid 7 times in 10, so
# that generated lines run experiments as well as get refused
FLAGS = {
    "--task": (["toy-cli"], ["", "no-such-task", " toy-cli", "TOY-CLI"]),
    "--learners": (["1", "2", "3"], ["0", "-1", "1000000000000", "31", "abc", "1e3", "", "3.0"]),
    "--rounds": (["0", "1", "2"], ["-1", "99999999999", "x", "2.5"]),
    "--threshold": (["0.5", "1", "0", "-0", "0.25"], ["1.5", "nan", "inf", "x", ""]),
    "--partition": (
        ["iid", "dirichlet:0.5", "shards:2", " IID "],
        [
            "",
            "shards:99999999999999999999",
            "shards:0",
            "zipf:2",
            "dirichlet:1e308",
            "iid:3",
            "shards:200",
        ],
    ),
    "--seed": (["0", "7", "9223372036854775807"], ["-3", "99999999999999999999999", "x"]),
    "--proposer": (["round-robin", "random"], ["loudest", ""]),
    "--timeout": (["10", "0.5", "31536000"], ["0", "-1", "nan", "inf", "1e300", "x"]),
    "--data-dir": (["nowhere", "/dev/null"], [""]),
    "--format": (["text", "json"], ["yaml"]),
}
OVERRIDES = {  # -c KEY=VALUE
    "rounds": (["1", "2"], ["1e400", "true", '"2"', "[1]", "-1", "9999999999999999999999"]),
    "learners": (["2", "3"], ["true", "0", "nan", "{a=1}"]),
    "threshold": (["0.5", "1.0"], ["2", '"half"', "nan"]),
    "vote_threshold": (["0.5"], ["-1", "true"]),
    "seed": (["3", "0"], ["-1", "1979-05-27", "1.5"]),
    "timeout": (["5"], ["true", "0", "inf", '"5"']),
    "baselines": (["false", "true"], ['"no"', "0", "1"]),
    "partition": (['"iid"', '"shards:2"'], ['""', "5", '"shards:x"']),
    "data_dir": (['"d"'], ["5", '""', "[1]"]),
    "data-dir": (['"d"'], ["{}"]),
    "params.unused": (["2", '"x"', "[1, 2]"], ["nan", "1979-05-27"]),
    "params": (["{unused=2}", "{}"], ["5", '"x"', "[[[[[[1]]]]]]"]),
    "task": (['"toy-cli"'], ['["toy-cli"]', "5", '""']),
    "out": (['"from-c"'], ["5", "[1]", '""']),
    "proposer": (['"random"'], ['"best"', "1"]),
}
HOSTILE_KEYS = ["params.nope", "nonsense", "", "params.", "a.b.c", "roundz", ".rounds"]
TOML = {  # key = value lines of a TOML file
    "task": (['"toy-cli"'], ['["toy-cli"]', "5", '""']),
    "learners": (["2", "3"], ["true", "0", "1e3", '"3"', "1000000000000"]),
    "rounds": (["1", "2"], ["-1", "true", "1.5", "99999999999"]),
    "threshold": (["0.5"], ["1.5", "nan"]),
    "vote_threshold": (["0.5", "1.0"], ['"0.5"', "inf"]),
    "partition": (['"iid"', '"dirichlet:0.5"'], ['""', '"shards:0"', "2"]),
    "seed": (["1"], ["-1", "1979-05-27"]),
    "timeout": (["30"], ["true", "-inf", "0"]),
    "baselines": (["false"], ['"no"', "1"]),
    "data-dir": (['"d"'], ["7"]),
    "data_dir": (['"d"'], ['""']),
    "proposer": (['"round-robin"'], ['"fair"']),
    "params": (["{unused = 3}"], ["5", '"p"']),
    "task_params": (["{unused = 4}"], ["[1]"]),
    "out": (['"from-toml"'], ["5", '""']),
    "oops": ([], ["1"]),
}


def pick(draw, choices):
    valid, hostile = choices
    if valid and (not hostile or draw(st.integers(0, 9)) < 7):
        return draw(st.sampled_from(valid))
    return draw(st.sampled_from(hostile) | st.text(max_size=5))


@st.composite
def command_lines(draw):
    argv = ["run"]
    files = {}
    if draw(st.integers(0, 3)) == 0:
        keys = draw(st.lists(st.sampled_from(sorted(TOML)), unique=True, max_size=5))
        lines = [f"{key} = {pick(draw, TOML[key])}" for key in keys]
        if draw(st.booleans()):
            lines.insert(0, 'task = "toy-cli"')  # (a key twice is TOML's own error)
        files["run.toml"] = "\n".join(lines)
        argv.append("run.toml")
    for flag in draw(st.lists(st.sampled_from(sorted(FLAGS)), unique=True, max_size=6)):
        argv += [flag, pick(draw, FLAGS[flag])]
    if "--task" not in argv and "run.toml" not in argv and draw(st.integers(0, 9)) < 8:
        argv += ["--task", "toy-cli"]
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 9)) < 8:
            key = draw(st.sampled_from(sorted(OVERRIDES)))
            argv += ["-c", f"{key}={pick(draw, OVERRIDES[key])}"]
        else:
            argv += ["-c", f"{draw(st.sampled_from(HOSTILE_KEYS))}={draw(st.text(max_size=4))}"]
    if draw(st.booleans()):
        argv.append("--no-baselines")
    out = draw(st.sampled_from(["e", "e", "e", "e", None, "", "existing", "a-file", "x" * 300]))
    if out is not None:
        argv += ["--out", out]
    return argv, files  # (every valid rounds value, and toy-cli's default, is at most 2)


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """An experiment that generated command lines may name with --out: it must come
    out unchanged (copied for each example)."""
    directory = tmp_path_factory.mktemp("existing") / "existing"
    code, _, err = colearn_here(
        "run", "--task", "toy-cli", "--rounds", "1", "--out", directory, "--no-baselines"
    )
    assert code == 0, err
    return directory, json.dumps(snapshot(directory))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=command_lines())
def test_generated_command_lines_end_in_a_refusal_or_a_correct_run(tmp_path, existing, case):
    argv, files = case
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        here = Path(tmp)
        for name, text in files.items():
            (here / name).write_text(text)
        (here / "a-file").write_text("mine")
        shutil.copytree(existing[0], here / "existing")
        code, out, err = colearn_here(*argv, cwd=here)
        event(f"exit {code}")  # --hypothesis-show-statistics counts the outcomes
        assert (here / "a-file").read_text() == "mine"
        assert json.dumps(snapshot(here / "existing")) == existing[1]  # nothing changed
        if code == exit_codes.OK:
            shown = re.search(r"experiment directory: (.*)", out + err)
            assert shown, (argv, out, err)
            with opened(here / shown.group(1)) as store:
                rounds = store.config["rounds"]
            assert_correct_run(here / shown.group(1), rounds)
        else:
            assert_clean_refusal(code, err)
            made = [p.name for p in here.iterdir() if p.name not in {"existing", "a-file", *files}]
            assert made in ([], ["runs"]), (argv, made, err)  # no half-made directory


def snapshot(directory):
    with opened(directory) as store:
        return store.to_json()


# -- plot, export, show, verify -----------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    directory = tmp_path_factory.mktemp("done") / "e"
    code, _, err = colearn_here("run", "--task", "toy-cli", "--rounds", "3", "--out", directory)
    assert code == 0, err
    return directory


def test_plot_and_export_outputs_are_checked_and_said_exactly(finished, tmp_path):
    code, _, err = colearn_here("plot", finished, "-o", tmp_path / "p.txt")
    assert_clean_refusal(code, err, "plot")
    assert "must end in .png" in err
    (tmp_path / "somedir").mkdir()
    code, out, _ = colearn_here("plot", finished, "-o", tmp_path / "somedir")
    assert code == 0 and f"plot written to {tmp_path / 'somedir' / 'plot.png'}" in out
    assert (tmp_path / "somedir" / "plot.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = colearn_here("plot", finished, "-o", tmp_path / "noext")
    assert code == 0 and (tmp_path / "noext.png").is_file() and "noext.png" in out
    code, out, _ = colearn_here("export", finished, "-o", tmp_path / "nope" / "x.json")
    assert code == 0 and json.loads((tmp_path / "nope" / "x.json").read_text())["rounds"]
    code, out, _ = colearn_here("export", finished, "-o", tmp_path / "somedir")
    assert code == 0 and (tmp_path / "somedir" / "results.json").is_file()
    (tmp_path / "file").write_text("x")
    code, _, err = colearn_here("export", finished, "-o", tmp_path / "file" / "x.json")
    assert_clean_refusal(code, err, "export")
    before = (finished / "experiment.sqlite").read_bytes()
    for target in ("experiment.sqlite", "blobs"):
        code, _, err = colearn_here(
            "export", finished, "--format", "safetensors", "-o", finished / target
        )
        assert_clean_refusal(code, err, "export")
        assert "would overwrite the experiment's own files" in err
    assert (finished / "experiment.sqlite").read_bytes() == before


def test_verify_says_intact_or_lists_each_problem(finished, tmp_path):
    code, out, _ = colearn_here("verify", finished)
    assert code == 0 and "intact: 3 rounds" in out and "chain head" in out
    damaged = tmp_path / "d"
    shutil.copytree(finished, damaged)
    import sqlite3

    conn = sqlite3.connect(damaged / "experiment.sqlite")
    conn.execute(
        "UPDATE rounds SET record_json = replace(record_json, 'learner-1', 'learner-7') "
        "WHERE round_index = 1"
    )
    conn.commit()
    conn.close()
    code, out, _ = colearn_here("verify", damaged)
    assert code == exit_codes.DAMAGED
    assert "DAMAGED" in out and "  round 1: its record was changed after it was committed" in out
    code, out, _ = colearn_here("verify", damaged, "--format", "json")
    report = json.loads(out)
    assert code == exit_codes.DAMAGED and not report["ok"]
    assert {d["round_index"] for d in report["damage"]} == {1}
    for command in ("show", "plot", "export"):
        code, _, err = colearn_here(command, damaged)
        assert_clean_refusal(code, err, command)
        assert code == exit_codes.DAMAGED
        assert "round 1: " in err and f"colearn verify {damaged}" in err


def test_a_damaged_summary_is_named_and_the_rounds_still_verify(finished, tmp_path):
    import sqlite3

    damaged = tmp_path / "d"
    shutil.copytree(finished, damaged)
    conn = sqlite3.connect(damaged / "experiment.sqlite")
    conn.execute("UPDATE meta SET value = '{\"metric\": 5}' WHERE key = 'summary'")
    conn.commit()
    conn.close()
    for command in ("show", "plot"):
        code, out, err = colearn_here(command, damaged)
        assert_clean_refusal(code, err, command)
        assert "summary" in err and out == ""  # all of the output or none of it


def test_exit_codes_and_their_help_are_complete():
    codes = {
        name: value
        for name, value in vars(exit_codes).items()
        if name.isupper() and isinstance(value, int)
    }
    assert set(codes.values()) == set(exit_codes.HELP)
    assert len(set(codes.values())) == len(codes)  # no two names for one code
    table = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for code in codes.values():
        assert re.search(rf"^\| {code} \|", table, re.M), f"docs/cli.md lacks exit code {code}"


# -- processes: Ctrl-C, two writers, a kill mid-creation, a full disk, read-only ----------

PAUSED_RUN = Path(__file__).with_name("paused_run.py")
COLEARN = [sys.executable, str(Path(__file__).with_name("toy_task.py"))]  # colearn + toy-cli
SGD = ["--task", "toy-cli", "--learners", "3", "--rounds", "5", "--no-baselines"]


def paused(point, at, args, cwd, marker):
    """Start ``colearn run ARGS`` paused at ``point`` of round ``at``; returns once it
    is paused there (it blocks until signalled: no race)."""
    child = subprocess.Popen(
        [sys.executable, str(PAUSED_RUN), str(marker), point, str(at), "--", "run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(f"the run ended before pausing: {child.stderr.read()}")
        assert time.monotonic() < deadline, "the run never reached its pause point"
        time.sleep(0.05)
    return child


def run(*args, **kw):
    return subprocess.run([*COLEARN, *map(str, args)], capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_ctrl_c_names_the_real_directory_at_the_start_and_at_the_end(tmp_path):
    child = paused("round", 2, SGD, tmp_path, tmp_path / "marker")  # default --out
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert child.returncode == exit_codes.INTERRUPTED, err
    directory = re.search(r"^experiment directory: (runs/toy-cli-\S+)$", out, re.M).group(1)
    assert "Traceback" not in err and "DIR" not in err
    assert f"continue with `colearn run --resume {directory}`" in err
    with opened(tmp_path / directory) as store:
        assert len(store.rounds()) == 2
    resumed = run("run", "--resume", directory, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_correct_run(tmp_path / directory, 5)


@pytest.mark.slow
def test_a_second_writer_gets_one_line_naming_the_first(tmp_path):
    out = tmp_path / "e"
    first = paused("round", 2, [*SGD, "--out", out], tmp_path, tmp_path / "marker")
    try:
        second = run("run", "--resume", out)
        assert_clean_refusal(second.returncode, second.stderr)
        assert f"being written by another process (pid {first.pid})" in second.stderr
    finally:
        first.kill()
        first.communicate()
    again = run("run", "--resume", out)
    assert again.returncode == 0, again.stderr
    assert_correct_run(out, 5)


@pytest.mark.slow
def test_a_run_killed_while_creating_its_directory_leaves_none(tmp_path):
    out = tmp_path / "e"
    child = paused("create", 0, [*SGD, "--out", out], tmp_path, tmp_path / "marker")
    child.kill()
    child.communicate()
    assert not out.exists()
    assert [p.name for p in tmp_path.glob(".e.partial-*")]  # the half-made one, aside
    resume = run("run", "--resume", out)
    assert_clean_refusal(resume.returncode, resume.stderr)
    fresh = run("run", *SGD, "--out", out)
    assert fresh.returncode == 0, fresh.stderr
    assert_correct_run(out, 5)
    assert not list(tmp_path.glob(".e.partial-*"))  # a dead process's leftover is removed


def file_size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_full_disk_stops_the_run_in_one_line_and_it_resumes_alike(tmp_path):
    whole = run("run", *SGD, "--rounds", "12", "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "e"
    full = run("run", *SGD, "--rounds", "12", "--out", out, preexec_fn=file_size_limit(120_000))
    assert_clean_refusal(full.returncode, full.stderr)
    assert full.returncode == exit_codes.IO_ERROR
    assert "Every round committed before is intact" in full.stderr
    assert f"`colearn run --resume {out}`" in full.stderr
    report = verify(out)
    assert report.ok and 0 < report.rounds < 12, (report.rounds, report.damage)
    resumed = run("run", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert snapshot(out)["final_weights_id"] == snapshot(tmp_path / "whole")["final_weights_id"]


libc = ctypes.CDLL(None, use_errno=True)


def without_privileges():
    """Drop every capability (root without CAP_DAC_OVERRIDE obeys file permissions, so
    a read-only directory is read-only even to root)."""
    prctl = getattr(libc, "prctl", None)  # Linux; elsewhere a non-root user needs none
    for cap in range(64 if prctl is not None else 0):
        prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


@pytest.mark.slow
def test_a_read_only_copy_can_be_shown_plotted_exported_and_verified(tmp_path):
    done = tmp_path / "done"
    assert run("run", *SGD, "--out", done).returncode == 0
    killed = tmp_path / "killed"  # a kill -9 leaves a write-ahead log behind
    child = paused("round", 3, [*SGD, "--out", killed], tmp_path, tmp_path / "marker")
    child.kill()
    child.communicate()
    assert (killed / "experiment.sqlite-wal").exists()
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for source, rounds in ((done, 5), (killed, 3)):
        copy = tmp_path / f"ro-{source.name}"
        shutil.copytree(source, copy)
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            probe = subprocess.run(
                [sys.executable, "-c", f"open({str(copy / 'probe')!r}, 'w')"],
                preexec_fn=without_privileges,
                capture_output=True,
                text=True,
            )
            assert "PermissionError" in probe.stderr, "the copy is not read-only to colearn"
            kw = {
                "preexec_fn": without_privileges,
                "env": {**os.environ, "MPLCONFIGDIR": str(outputs)},
            }
            shown = run("show", copy, **kw)
            assert shown.returncode == 0, shown.stderr
            assert len(re.findall(r"^ +\d+  learner-", shown.stdout, re.M)) == rounds
            plotted = run("plot", copy, "-o", outputs / f"{source.name}.png", **kw)
            assert plotted.returncode == 0, plotted.stderr
            exported = run(
                "export",
                copy,
                "--format",
                "safetensors",
                "-o",
                outputs / f"{source.name}.safetensors",
                **kw,
            )
            assert exported.returncode == 0, exported.stderr
            checked = run("verify", copy, **kw)
            assert checked.returncode == 0 and f"intact: {rounds} rounds" in checked.stdout
            resumed = run("run", "--resume", copy, **kw)  # writing it is refused, in one line
            assert_clean_refusal(resumed.returncode, resumed.stderr)
            assert resumed.returncode == exit_codes.IO_ERROR
            assert sorted(p.name for p in copy.iterdir()) == sorted(
                p.name for p in source.iterdir()
            )
        finally:
            for path in [copy, *copy.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.parametrize("command", ["show", "plot", "export", "verify"])
@pytest.mark.parametrize(
    "directory", ["", "/dev/null", "/proc", "missing", "a-file", "x" * 300, "/etc/passwd/x"]
)
def test_reading_commands_refuse_what_is_not_an_experiment(tmp_path, command, directory):
    (tmp_path / "a-file").write_text("mine")
    code, out, err = colearn_here(command, directory, cwd=tmp_path)
    assert_clean_refusal(code, err, command)
    assert code == exit_codes.USAGE and out == ""
    assert (tmp_path / "a-file").read_text() == "mine"
