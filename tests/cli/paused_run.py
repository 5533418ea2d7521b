"""Run ``colearn`` with a pause at a chosen point, for kill-and-resume tests.

    python paused_run.py MARKER POINT ROUND -- [colearn arguments...]

When the run reaches ``POINT`` of round ``ROUND`` it writes ``MARKER`` and blocks
until it is killed, so a test can SIGKILL it at exactly that point: no race between the
test and the child (it cannot finish before the kill, and the marker proves the point
was reached). The points, in the order a run meets them (:data:`POINTS`; ROUND is
ignored by the points outside rounds):

- ``create``: mid-creation of the experiment directory (its database is built under
  a temporary name beside it, not yet renamed into place);
- ``created``: the directory is in place, its initial weights are not stored yet;
- ``initial-blob``: the initial weights' blob is written, their id is not recorded;
- ``deploy`` (``--ledger evm``): the contract's address is recorded, the deployment
  transaction is not sent;
- ``round``: the start of the round, after every earlier round was committed;
- ``propose``: mid-propose (the proposals are back in the pool; nothing is checked);
- ``screen`` (screened rounds): mid-screening (the first proposal was sent to its
  voters; no screening vote is back yet);
- ``combine`` (aggregate and screened rounds): mid-combination of the proposals;
- ``validate``: mid-validation (the candidate was sent; no vote is back yet);
- ``encode``: the candidate is being encoded and hashed (on the encoder thread, or in
  the round's thread for small weights);
- ``voted``: every vote is back (and signed, with a ledger); nothing is decided;
- ``decide``: the decider was asked (with ``--ledger evm``: no transaction sent yet);
- ``chain-block`` (``--ledger evm``, embedded chain): the round's transaction is
  applied and its block mined, the block's database transaction is not committed;
- ``decided``: the decision is made (on chain, with a ledger); nobody adopted it;
- ``adopt``: the accepted weights were adopted by the pool; nothing is committed;
- ``commit-start``: the round is being committed; nothing of it is written yet;
- ``blob-write``: mid-blob-write (half the accepted blob is in its temporary file);
- ``commit`` (also ``blob-written``): mid-commit (the accepted blob is in place; the
  round's rows are not);
- ``rows``: the round's rows are inserted in an open transaction, not committed;
- ``sql-commit``: the chain head is written too; the ``COMMIT`` is about to run;
- ``committed``: the round is durable; the observers (the progress table) have not
  seen it;
- ``summary``: every round is committed; the summary is being written.

A round that does not reach a point (``blob-write`` in a rejected round, ``screen``
in a single round) runs on, so the run ends without writing the marker: the test
fails, rather than killing somewhere else.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

POINTS = (
    "create",
    "created",
    "initial-blob",
    "deploy",
    "round",
    "propose",
    "screen",
    "combine",
    "validate",
    "encode",
    "voted",
    "decide",
    "chain-block",
    "decided",
    "adopt",
    "commit-start",
    "blob-write",
    "commit",
    "rows",
    "sql-commit",
    "committed",
    "summary",
)
ALIASES = {"blob-written": "commit"}


class _Pause:
    def __init__(self, marker: Path, at: int) -> None:
        self.marker = marker
        self.at = at
        self.round: int | None = None  # the round being played (or committed)
        self.screening = False  # inside a screened round's own vote on one proposal

    def here(self) -> None:
        self.marker.write_text("paused\n")
        threading.Event().wait()  # until killed

    def in_round(self) -> bool:
        return self.round == self.at


def _wrap(owner: Any, name: str, before: Callable[..., None] | None = None, after: Any = None):
    """Replace ``owner.name`` by a function calling ``before(*args)``, the original, then
    ``after(result, *args)``."""
    original = getattr(owner, name)

    def wrapped(*args: Any, **kw: Any) -> Any:
        if before is not None:
            before(*args, **kw)
        result = original(*args, **kw)
        if after is not None:
            after(result, *args, **kw)
        return result

    setattr(owner, name, wrapped)
    return original


def install(point: str, pause: _Pause) -> None:
    """Patch colearning so that the run pauses at ``point`` (one of :data:`POINTS`)."""
    from colearning.core import driver, experiment, observers, store

    point = ALIASES.get(point, point)
    if point not in POINTS:
        raise SystemExit(f"unknown point {point!r}; use one of {', '.join(POINTS)}")

    # every point inside a round knows which round is played (or committed)
    def round_of(pool: Any, plan: Any, **kw: Any) -> None:
        pause.round = plan.round_index

    _wrap(experiment, "play_round", before=round_of)

    def committing(self: Any, record: Any, blob: Any = None) -> None:
        pause.round = record.round_index

    def screen_in(*args: Any, **kw: Any) -> None:
        pause.screening = True

    def screen_out(*args: Any, **kw: Any) -> None:
        pause.screening = False

    original_screen = driver._screen

    def screen(*args: Any, **kw: Any) -> Any:
        screen_in()
        try:
            return original_screen(*args, **kw)
        finally:
            screen_out()

    driver._screen = screen  # type: ignore[assignment]

    if point == "create":

        def take(cls: Any, directory: Path, shown: Path) -> Any:
            if directory.name.startswith("."):  # the partial directory, before its rename
                pause.here()
            return original_take(cls, directory, shown)

        original_take = store._DirectoryLock.take.__func__  # type: ignore[attr-defined]
        store._DirectoryLock.take = classmethod(take)  # type: ignore[method-assign, assignment]
    elif point == "created":
        _wrap(store.ExperimentStore, "set_initial_weights", before=lambda *a, **k: pause.here())
    elif point == "initial-blob":

        def meta(self: Any, key: str, text: str) -> None:
            if key == "initial_weights_id":
                pause.here()

        _wrap(store.ExperimentStore, "_write_meta", before=meta)
    elif point == "deploy":
        from colearning.ledger import client

        original_deploy = client.LedgerClient.deploy.__func__  # type: ignore[attr-defined]

        def deploy(cls: Any, *args: Any, **kw: Any) -> Any:
            pause.here()
            return original_deploy(cls, *args, **kw)

        client.LedgerClient.deploy = classmethod(deploy)  # type: ignore[method-assign, assignment]
    elif point == "round":
        _wrap(
            experiment,
            "play_round",
            before=lambda pool, plan, **k: plan.round_index == pause.at and pause.here(),
        )
    elif point in ("propose", "screen", "validate"):

        def patch_pool(pool: Any, plan: Any, **kw: Any) -> None:
            if plan.round_index != pause.at or getattr(pool, "_paused_run", False):
                return
            pool._paused_run = True
            if point == "propose":
                _wrap(pool, "propose", after=lambda *a, **k: pause.here())
            else:
                screening = point == "screen"
                # screening asks for every proposal's tests in one batch where the pool
                # can (test_each), else one test batch a proposal
                for method in ("test", "test_each") if screening else ("test",):
                    if hasattr(pool, method):
                        _wrap(
                            pool,
                            method,
                            before=lambda *a, **k: (
                                pause.in_round() and pause.screening == screening and pause.here()
                            ),
                        )

        _wrap(experiment, "play_round", before=patch_pool)
    elif point == "combine":
        from colearning.core import combiners

        _wrap(
            combiners.Combiner, "combine", before=lambda *a, **k: pause.in_round() and pause.here()
        )
    elif point == "encode":
        from colearning.core import weights_ref

        def encoding(self: Any) -> None:
            # on the encoder thread, or (weights of at most ENCODE_HERE_BYTES) where the
            # round runs
            if pause.in_round():
                pause.here()

        _wrap(weights_ref.WeightsRef, "_encode_locked", before=encoding)
    elif point in ("voted", "decided"):
        _wrap(
            observers.Observers,
            point,
            before=lambda self, r, *a: r == pause.at and pause.here(),
        )
    elif point == "decide":
        from colearning.core.decider import TallyDecider

        # the ledger's decider asks the Python tally first, before it sends anything
        _wrap(
            TallyDecider,
            "decide",
            before=lambda self, r, *a, **k: r == pause.at and not pause.screening and pause.here(),
        )
    elif point == "chain-block":
        from colearning.ledger import chain

        def block(self: Any) -> None:
            if pause.in_round() and self._open:
                pause.here()

        _wrap(chain._SqliteKV, "commit", before=block)
    elif point == "adopt":
        _wrap(driver, "adopt", after=lambda *a, **k: pause.in_round() and pause.here())
    elif point == "commit-start":
        _wrap(
            store.ExperimentStore,
            "commit_round",
            before=lambda self, record, blob=None: record.round_index == pause.at and pause.here(),
        )
    elif point == "blob-write":
        _wrap(store.ExperimentStore, "commit_round", before=committing)
        real_os = os

        class _HalfWrite:
            def __init__(self, fh: Any) -> None:
                self.fh = fh

            def __enter__(self) -> _HalfWrite:
                return self

            def __exit__(self, *exc: object) -> None:
                self.fh.close()

            def write(self, data: bytes) -> int:
                half = len(data) // 2
                self.fh.write(data[:half])
                self.fh.flush()
                real_os.fsync(self.fh.fileno())
                pause.here()
                return int(self.fh.write(data[half:])) + half

        class _Os:
            def __getattr__(self, name: str) -> Any:
                return getattr(real_os, name)

            def fdopen(self, fd: int, *args: Any, **kw: Any) -> Any:
                fh = real_os.fdopen(fd, *args, **kw)
                path = real_os.readlink(f"/proc/self/fd/{fd}")
                if pause.in_round() and "/blobs/" in path:
                    return _HalfWrite(fh)
                return fh

        store.os = _Os()  # type: ignore[assignment]
    elif point == "commit":
        original_commit = store.ExperimentStore.commit_round

        def commit_round(self: Any, record: Any, blob: Any = None) -> None:
            if record.round_index == pause.at:
                if blob is not None:
                    self.put_blob(blob, record.current_weights_id)
                pause.here()
            original_commit(self, record, blob)

        store.ExperimentStore.commit_round = commit_round  # type: ignore[method-assign]
    elif point == "rows":
        _wrap(store.ExperimentStore, "commit_round", before=committing)
        _wrap(store, "_insert_round", after=lambda *a, **k: pause.in_round() and pause.here())
    elif point == "sql-commit":
        original_insert = store._insert_round

        def insert(conn: Any, record: Any, *args: Any) -> None:
            original_insert(conn, record, *args)
            if record.round_index == pause.at:
                # the next COMMIT on this connection is the round's
                conn.set_trace_callback(
                    lambda sql: sql.strip().upper() == "COMMIT" and pause.here()
                )

        store._insert_round = insert  # type: ignore[assignment]
    elif point == "committed":
        _wrap(
            observers.Observers,
            "committed",
            before=lambda self, record: record.round_index == pause.at and pause.here(),
        )
    elif point == "summary":
        _wrap(
            store.ExperimentStore,
            "put_meta",
            before=lambda self, key, value: key == "summary" and pause.here(),
        )


def main(argv: list[str]) -> int:
    marker, point, at = Path(argv[0]), argv[1], int(argv[2])
    assert argv[3] == "--", "usage: paused_run.py MARKER POINT ROUND -- ARGS..."
    args = argv[4:]
    install(point, _Pause(marker, at))

    sys.path.insert(0, str(Path(__file__).parent))
    import toy_task  # beside this file: the framework-free task "toy-cli" is there too

    toy_task.register()
    from colearning.cli.main import main as colearn

    return colearn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
