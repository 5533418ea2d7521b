"""Where ``plot`` and ``export`` write: the ``-o`` path checked before any work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from colearning.core.exceptions import ConfigError
from colearning.core.store import DB_NAME


def output_path(
    given: str | None, directory: str, default_name: str, suffix: str | None = None
) -> Path:
    """The file to write: ``given``, or ``default_name`` inside ``directory`` (or inside
    ``given`` when that is an existing directory).

    With ``suffix`` (``".png"``) a name without one gets it, and another one is
    refused. Refused too: an empty name, a path under a file, and the experiment's
    own database and blobs.
    """
    try:
        return _output_path(given, directory, default_name, suffix)
    except OSError as exc:  # a name too long, say
        raise ConfigError(f"-o {given or directory}: {exc.strerror or exc}") from None


def _output_path(given: str | None, directory: str, default_name: str, suffix: str | None) -> Path:
    if given is None:
        path = Path(directory) / default_name
    elif not given.strip():
        raise ConfigError("-o must name a file; got ''")
    else:
        path = Path(given)
        if path.is_dir():
            path = path / default_name
    if suffix is not None:
        if path.suffix == "":
            path = path.with_name(path.name + suffix)
        elif path.suffix.lower() != suffix:
            raise ConfigError(
                f"-o {given} must end in {suffix} (this command writes {suffix[1:].upper()}); "
                f"for example -o {path.with_suffix(suffix)}"
            )
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"-o {given}: {parent} is a file, not a directory")
            break
    _not_the_experiment(path, Path(directory), given)
    return path


def _not_the_experiment(path: Path, directory: Path, given: str | None) -> None:
    try:
        target = path.resolve()
        root = directory.resolve()
    except OSError:
        return
    own = {root / DB_NAME, root / f"{DB_NAME}-wal", root / f"{DB_NAME}-shm"}
    if target in own or target == root / "blobs" or (root / "blobs") in target.parents:
        raise ConfigError(
            f"-o {given} would overwrite the experiment's own files in {directory}; "
            "choose another file"
        )


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, so a full disk or
    a kill never leaves half a file under the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
