"""CIFAR-10 in its "binary version" (``cifar-10-binary.tar.gz``), read with NumPy alone.

Each batch file is a run of 3,073-byte records: one label byte (0-9), then 3,072 pixel
bytes, the 1,024 red values of the 32 x 32 image row by row, then green, then blue.
The extracted archive is a folder ``cifar-10-batches-bin/`` holding
``data_batch_1.bin`` ... ``data_batch_5.bin`` (10,000 records each) and
``test_batch.bin``. No pickle is read: the "python version" of CIFAR-10 is not supported.

Examples
--------
>>> import tempfile, numpy as np
>>> d = tempfile.mkdtemp()
>>> rng = np.random.default_rng(0)
>>> X = rng.integers(0, 256, size=(12, 3, 32, 32), dtype=np.uint8)
>>> _ = write_cifar_batches(d, X, np.arange(12) % 10)
>>> ds = read_cifar10(d)
>>> ds.X.shape, ds.X.dtype, float(ds.X.max()) <= 1.0, len(ds)
((12, 3, 32, 32), dtype('float32'), True, 12)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from colearning.core.exceptions import DataError
from colearning.data.types import Dataset

__all__ = [
    "CLASSES",
    "RECORD_BYTES",
    "TEST_FILE",
    "TRAIN_FILES",
    "find_cifar10_dir",
    "read_cifar10",
    "read_cifar_batch",
    "write_cifar_batches",
]

RECORD_BYTES = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
SUBDIR = "cifar-10-batches-bin"
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def read_cifar_batch(path: str | Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """One batch file as ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.

    Raises
    ------
    DataError
        If the file is missing, its size is not a multiple of 3,073 bytes, or a label
        is not in 0-9.
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"CIFAR-10 batch {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read CIFAR-10 batch {path}: {exc}") from exc
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise DataError(
            f"{path}: {raw.size} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 "
            "records (1 label byte + 3,072 pixel bytes); is this the binary version, fully "
            "downloaded? (the 'python version' is pickled and is not read)"
        )
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(
            f"{path}: record {bad} has label {int(labels[bad])}; CIFAR-10 labels are 0-9 "
            "(a CIFAR-100 file has 2 label bytes per record and is not read)"
        )
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def find_cifar10_dir(path: str | Path) -> Path:
    """The folder holding the batch files: ``path`` itself or its ``cifar-10-batches-bin``."""
    path = Path(path)
    for candidate in (path, path / SUBDIR):
        if (candidate / TEST_FILE).is_file() or (candidate / TRAIN_FILES[0]).is_file():
            return candidate
    raise DataError(
        f"no CIFAR-10 batch files in {path} or {path / SUBDIR}; download the binary version "
        "(cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html, extract "
        "it and pass the folder"
    )


def read_cifar10(path: str | Path, *, splits: tuple[str, ...] = ("train", "test")) -> Dataset:
    """CIFAR-10 from a folder of binary batches.

    Parameters
    ----------
    path
        The folder holding the ``.bin`` files, or the folder it was extracted into.
    splits
        ``"train"`` (the five data batches) and/or ``"test"`` (test_batch.bin); with
        both, train rows come first (60,000 rows for the full set).

    Returns
    -------
    Dataset
        ``X`` float32 (N, 3, 32, 32) scaled to [0, 1] (no mean/std normalisation: the
        models of ``colearning.tasks`` normalise inside), ``y`` int64, classes 0-9.

    Raises
    ------
    DataError
        If a file is missing or malformed.
    """
    unknown = set(splits) - {"train", "test"}
    if unknown or not splits:
        raise DataError(f"splits must be a non-empty subset of ('train', 'test'); got {splits}")
    folder = find_cifar10_dir(path)
    names = (list(TRAIN_FILES) if "train" in splits else []) + (
        [TEST_FILE] if "test" in splits else []
    )
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"{folder}: CIFAR-10 file(s) {', '.join(missing)} missing; expected "
            f"{', '.join(names)} (re-extract cifar-10-binary.tar.gz)"
        )
    parts = [read_cifar_batch(folder / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    X = images.astype(np.float32)
    X /= np.float32(255)
    return Dataset(
        name="cifar10",
        X=X,
        y=np.concatenate([p[1] for p in parts]),
        classes=np.arange(10, dtype=np.int64),
    )


def write_cifar_batches(
    directory: str | Path,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    test_rows: int | None = None,
) -> Path:
    """Write images in CIFAR-10's binary format: five train batches and a test batch.

    Useful to feed your own 32 x 32 images to the CIFAR-10 tasks, and in tests.

    Parameters
    ----------
    directory
        Created if needed; the files go straight into it.
    X
        (N, 3, 32, 32) images, uint8, or floats in [0, 1] (scaled by 255 and rounded).
    y
        N labels in 0-9.
    test_rows
        Rows (taken from the end) that go to ``test_batch.bin``; default N // 6. The
        rest is split as evenly as possible over ``data_batch_1..5.bin``. Every file
        must get a record, so N >= 6.

    Returns
    -------
    Path
        ``directory``.
    """
    images = np.asarray(X)
    labels = np.asarray(y)
    if images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        raise DataError(f"X must have shape (N, 3, 32, 32); got {images.shape}")
    if labels.shape != (len(images),):
        raise DataError(f"y must have shape ({len(images)},); got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError("y must hold labels 0-9")
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    n_test = len(images) // 6 if test_rows is None else test_rows
    if not 1 <= n_test <= len(images) - len(TRAIN_FILES):
        raise DataError(
            f"test_rows must be in [1, N - 5] so that every batch file holds a record; got "
            f"{n_test} with N={len(images)}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_train = len(images) - n_test
    bounds = np.linspace(0, n_train, len(TRAIN_FILES) + 1).astype(int)
    for name, lo, hi in zip(TRAIN_FILES, bounds[:-1], bounds[1:], strict=True):
        _write_batch(directory / name, images[lo:hi], labels[lo:hi])
    _write_batch(directory / TEST_FILE, images[n_train:], labels[n_train:])
    return directory


def _write_batch(path: Path, images: npt.NDArray[np.uint8], labels: npt.NDArray[Any]) -> None:
    records = np.empty((len(images), RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.reshape(len(images), -1)
    path.write_bytes(records.tobytes())
