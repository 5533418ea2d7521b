"""Run ``colearn`` with a pause at a chosen point, for kill-and-resume tests.

    python paused_run.py MARKER POINT ROUND -- [colearn arguments...]

When the run reaches ``POINT`` of round ``ROUND`` it writes ``MARKER`` and blocks
until it is killed, so a test can SIGKILL it at exactly that point: no race between the
test and the child (it cannot finish before the kill). Points:

- ``round``: the start of the round, after every earlier round was committed;
- ``validate``: mid-validation (the candidate was sent; no vote is back yet);
- ``commit``: mid-commit (the accepted blob is written; the round's rows are not);
- ``create``: mid-creation of the experiment directory (its database is built under
  a temporary name beside it, not yet renamed into place; ROUND is ignored).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any


def _pause(marker: Path) -> None:
    marker.write_text("paused\n")
    threading.Event().wait()  # until killed


def main(argv: list[str]) -> int:
    marker, point, at = Path(argv[0]), argv[1], int(argv[2])
    assert argv[3] == "--", "usage: paused_run.py MARKER POINT ROUND -- ARGS..."
    args = argv[4:]

    from colearning.core import experiment, store

    if point == "round":
        original_play = experiment.play_round

        def play_round(pool: Any, plan: Any, **kw: Any) -> Any:
            if plan.round_index == at:
                _pause(marker)
            return original_play(pool, plan, **kw)

        experiment.play_round = play_round  # type: ignore[assignment]
    elif point == "validate":
        original_play = experiment.play_round

        def play_round(pool: Any, plan: Any, **kw: Any) -> Any:
            if plan.round_index == at:
                original_test = pool.test

                def test(ids: Any, ref: Any, timeout: Any) -> Any:
                    _pause(marker)
                    return original_test(ids, ref, timeout)

                pool.test = test
            return original_play(pool, plan, **kw)

        experiment.play_round = play_round  # type: ignore[assignment]
    elif point == "commit":
        original_commit = store.ExperimentStore.commit_round

        def commit_round(self: Any, record: Any, blob: Any = None) -> None:
            if record.round_index == at:
                if blob is not None:
                    self.put_blob(blob, record.current_weights_id)
                _pause(marker)
            original_commit(self, record, blob)

        store.ExperimentStore.commit_round = commit_round  # type: ignore[method-assign]
    elif point == "create":
        original_take = store._DirectoryLock.take.__func__  # type: ignore[attr-defined]

        def take(cls: Any, directory: Path, shown: Path) -> Any:
            if directory.name.startswith("."):  # the partial directory, before its rename
                _pause(marker)
            return original_take(cls, directory, shown)

        store._DirectoryLock.take = classmethod(take)  # type: ignore[method-assign, assignment]
    else:
        raise SystemExit(f"unknown point {point!r}; use round, validate, commit or create")

    import toy_task  # beside this file: the framework-free task "toy-cli" is there too

    toy_task.register()
    from colearning.cli.main import main as colearn

    return colearn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
