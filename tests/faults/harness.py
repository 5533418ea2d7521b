"""Kill the coordinator with SIGKILL at named points and resume: nothing may be lost.

A *case* is a round mode (the ``colearn run`` flags of :data:`MODES`) and a schedule
of kills, each a point of ``tests/cli/paused_run.py`` (:data:`POINTS`) in a round.
:func:`play` runs ``colearn run`` paused at the first kill, SIGKILLs it there (the
marker proves the point was reached: the child blocks once it wrote it), resumes with
``colearn run --resume`` paused at the next kill, and so on; the last resume runs to the
end. The case passes when

- after every kill the directory holds exactly the rounds the point implies
  (:func:`committed_after`): none half-committed, none lost;
- the resumed run ends with the uninterrupted run's final weights id, round by round
  the same statuses and weights ids;
- ``colearn verify DIR`` exits 0 (and ``colearn ledger verify DIR`` with a ledger).

A round for each kill is chosen from the uninterrupted run's record (the first one,
from the rounds committed so far on, where the point can be reached: ``blob-write``
needs an accepted round, ``screen`` a screened one), so the schedule follows what the
run does rather than hoping. ``tests/faults`` runs small schedules; ``bench/faults.py``
runs every point in every mode, one kill a run, and prints the table.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLI_TESTS = ROOT / "tests" / "cli"
PAUSED_RUN = CLI_TESTS / "paused_run.py"
TOY = CLI_TESTS / "toy_task.py"  # colearn with the framework-free task "toy-cli"

sys.path.insert(0, str(CLI_TESTS))
from paused_run import POINTS  # noqa: E402

ROUNDS = 6
BASE = [
    "--task",
    "toy-cli",
    "--learners",
    "4",
    "--seed",
    "7",
    "--partition",
    "dirichlet:0.5",
    "--no-baselines",
]
MODES: dict[str, list[str]] = {
    "single": [],
    "aggregate": ["--mode", "aggregate", "--combiner", "trimmed-mean", "--proposers", "3"],
    # FedAvgM's server step: a resumed run reads the momentum's model back from the store
    "momentum": ["--mode", "aggregate", "--proposers", "3", "--server-momentum", "0.9"],
    "screened": ["--mode", "screened", "--proposers", "2"],
    "committee": ["--committee", "2"],
    "aggregate-committee": ["--mode", "aggregate", "--proposers", "2", "--committee", "2"],
    "screened-committee": ["--mode", "screened", "--proposers", "2", "--committee", "2"],
    "evm": ["--ledger", "evm"],
}
#: points outside any round (the round given is ignored)
UNROUNDED = ("create", "created", "initial-blob", "deploy", "summary")
LEDGER_ONLY = ("deploy", "chain-block")


def points_for(mode: str, chain_url: str | None = None) -> list[str]:
    """Every point a run in ``mode`` reaches (on the node at ``chain_url``, with the
    ledger: ``chain-block`` is the embedded chain's)."""
    found = []
    for p in POINTS:
        if p in LEDGER_ONLY and mode != "evm":
            continue
        if p == "chain-block" and chain_url is not None:
            continue
        flags = MODES[mode]
        if p == "screen" and "screened" not in flags:
            continue
        if p == "combine" and not ("aggregate" in flags or "screened" in flags):
            continue
        found.append(p)
    return found


@dataclass
class Reference:
    """The uninterrupted run of a mode."""

    final_weights_id: str
    rounds: list[dict[str, Any]]

    def outline(self) -> list[tuple[str, str]]:
        return [(r["status"], r["weights_id"]) for r in self.rounds]


@dataclass
class Kill:
    point: str
    round_index: int
    committed: int  # rounds in the directory after the kill
    seconds: float


@dataclass
class Outcome:
    mode: str
    kills: list[Kill]
    final_weights_id: str
    same_final_id: bool
    same_rounds: bool
    verify_ok: bool
    ledger_verify_ok: bool | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.same_final_id
            and self.same_rounds
            and self.verify_ok
            and self.ledger_verify_ok is not False
        )


def run_args(mode: str, rounds: int = ROUNDS, chain_url: str | None = None) -> list[str]:
    extra = ["--chain-url", chain_url] if chain_url else []
    return [*BASE, "--rounds", str(rounds), *MODES[mode], *extra]


def colearn(*args: Any, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(TOY), *map(str, args)], capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"colearn {args} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def snapshot(directory: Path) -> Reference:
    from colearning.core.store import opened

    with opened(directory) as store:
        data = store.to_json()
    return Reference(data["final_weights_id"], data["rounds"])


def reference(
    mode: str, out: Path, rounds: int = ROUNDS, chain_url: str | None = None
) -> Reference:
    colearn("run", *run_args(mode, rounds, chain_url), "--out", out)
    return snapshot(out)


def committed_rounds(directory: Path) -> int | None:
    """Rounds in the directory (read without the store: it may be half-made); ``None``
    where there is no experiment."""
    db = directory / "experiment.sqlite"
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0])
    finally:
        conn.close()


def committed_after(point: str, round_index: int, total: int) -> int | None:
    """The rounds a kill at ``point`` of ``round_index`` leaves committed."""
    if point == "create":
        return None  # no directory at all
    if point in ("created", "initial-blob", "deploy"):
        return 0
    if point == "summary":
        return total
    if point == "committed":
        return round_index + 1
    return round_index


def reaches(point: str, record: dict[str, Any]) -> bool:
    """Whether a round like ``record`` (of the uninterrupted run) reaches ``point``."""
    candidate = record.get("candidate") is not None
    if point in ("blob-write", "commit", "adopt"):
        return bool(record["status"] == "accepted")
    if point == "screen":
        return any(p.get("screening") for p in record["proposals"])
    if point in ("validate", "encode", "voted", "decide", "decided", "combine"):
        return candidate
    return True


def choose_round(
    point: str, ref: Reference, start: int, earliest: int = 1, status: str | None = None
) -> int:
    """The first round from ``earliest`` on (so that a committed round is restored on
    resume), else from ``start`` on, of the uninterrupted run that reaches ``point``;
    with ``status`` (``"accepted"`` or ``"rejected"``), the first such round of that
    outcome."""
    if point in UNROUNDED:
        return 0
    for first in (max(start, earliest), start):
        for r in ref.rounds[first:]:
            if (status is None or r["status"] == status) and reaches(point, r):
                return int(r["round_index"])
    kind = "" if status is None else f" {status}"
    raise AssertionError(f"no{kind} round from {start} on reaches {point!r}")


def points_in(
    mode: str, ref: Reference, status: str, chain_url: str | None = None
) -> list[tuple[str, int]]:
    """Every point of ``mode`` inside a round, with the first round from round 1 on of
    the uninterrupted run that has ``status`` and reaches the point; the points no such
    round reaches are left out (``blob-write`` in a rejected round, ``validate`` in a
    screened round whose every proposal failed its screening)."""
    found = []
    for point in points_for(mode, chain_url):
        if point in UNROUNDED:
            continue
        try:
            found.append((point, choose_round(point, ref, 0, status=status)))
        except AssertionError:
            continue
    return found


def kill_at(point: str, round_index: int, args: Sequence[Any], marker: Path) -> float:
    """Run ``colearn ARGS`` until it pauses at ``point`` of ``round_index``, SIGKILL it
    there; returns the seconds it ran."""
    marker.unlink(missing_ok=True)
    start = time.perf_counter()
    victim = subprocess.Popen(
        [sys.executable, str(PAUSED_RUN), str(marker), point, str(round_index), "--", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        # the child blocks once it has written the marker: no race with the kill
        while not marker.exists():
            if victim.poll() is not None:
                err = victim.stderr.read().decode() if victim.stderr else ""
                raise AssertionError(
                    f"the run ended (exit {victim.returncode}) before reaching {point!r} of "
                    f"round {round_index}:\n{err}"
                )
            if time.monotonic() > deadline:  # a hang, not a speed bound
                raise AssertionError(f"the run never reached {point!r} of round {round_index}")
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait()
        if victim.stderr:
            victim.stderr.close()
    assert victim.returncode == -signal.SIGKILL, victim.returncode
    return time.perf_counter() - start


def _cli(*argv: Any) -> tuple[int, str]:
    """``colearn ARGV`` as a user runs it (a process of its own: the reading commands
    load no task); its exit code and output."""
    proc = subprocess.run(
        [sys.executable, "-m", "colearning.cli.main", *map(str, argv)],
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout + proc.stderr


def play(
    mode: str,
    schedule: Sequence[str | tuple[str, int]],
    ref: Reference,
    workdir: Path,
    *,
    rounds: int = ROUNDS,
    chain_url: str | None = None,
) -> Outcome:
    """Kill a run of ``mode`` at each point of ``schedule`` in turn (a name: the first
    round from the committed ones on that reaches it; or ``(name, round)``), resuming
    after each, then resume to the end and compare with ``ref``."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "exp"
    marker = workdir / "paused"
    start = time.perf_counter()
    kills: list[Kill] = []
    for step in schedule:
        point, at = (step, None) if isinstance(step, str) else step
        done = committed_rounds(out) or 0
        if at is None:
            at = choose_round(point, ref, done)
        if out.exists():
            args: list[Any] = ["run", "--resume", out]
        else:
            args = ["run", *run_args(mode, rounds, chain_url), "--out", out]
        seconds = kill_at(point, at, args, marker)
        left = committed_rounds(out)
        expected = committed_after(point, at, rounds)
        assert left == expected, (
            f"{mode}: killed at {point!r} of round {at}, the directory holds {left} "
            f"rounds; expected {expected}"
        )
        kills.append(Kill(point, at, left or 0, seconds))
    if out.exists():
        finish = colearn("run", "--resume", out, "--format", "json")
    else:
        finish = colearn(
            "run", *run_args(mode, rounds, chain_url), "--out", out, "--format", "json"
        )
    summary = json.loads(finish.stdout)["summary"]
    got = snapshot(out)
    notes = []
    if summary["final_weights_id"] != got.final_weights_id:
        notes.append("the summary's final weights differ from the store's")
    code, text = _cli("verify", out)
    verify_ok = code == 0 and "intact" in text
    if not verify_ok or "note:" in text:  # a resumed run leaves nothing unfinished
        notes.append(f"colearn verify: {text.strip()}")
    ledger_ok = None
    if mode == "evm":
        lcode, ltext = _cli("ledger", "verify", out)
        ledger_ok = lcode == 0
        if not ledger_ok:
            notes.append(f"colearn ledger verify: {ltext.strip()}")
    return Outcome(
        mode=mode,
        kills=kills,
        final_weights_id=got.final_weights_id,
        same_final_id=got.final_weights_id == ref.final_weights_id
        and summary["final_weights_id"] == ref.final_weights_id,
        same_rounds=got.outline() == ref.outline(),
        verify_ok=verify_ok,
        ledger_verify_ok=ledger_ok,
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def assert_ok(outcome: Outcome) -> None:
    assert outcome.same_final_id, (outcome.mode, outcome.kills, outcome.final_weights_id)
    assert outcome.same_rounds, (outcome.mode, outcome.kills)
    assert outcome.verify_ok, outcome.notes
    assert outcome.ledger_verify_ok is not False, outcome.notes
    assert not outcome.notes, outcome.notes
