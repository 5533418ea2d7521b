"""MNIST in its original IDX files, read with NumPy alone.

An IDX file is a 4-byte big-endian magic number (two zero bytes, a type code and the
number of dimensions), one big-endian uint32 per dimension, then the values in C order,
big-endian. MNIST ships four of them::

    train-images-idx3-ubyte   60,000 x 28 x 28 uint8   (magic 2051 = 0x00000803)
    train-labels-idx1-ubyte   60,000 uint8             (magic 2049 = 0x00000801)
    t10k-images-idx3-ubyte    10,000 x 28 x 28
    t10k-labels-idx1-ubyte    10,000

each possibly gzipped (``.gz``) or named with a dot (``train-images.idx3-ubyte``).

Examples
--------
>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> write_idx(d / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
>>> write_idx(d / "train-labels-idx1-ubyte", np.array([1, 2, 3], np.uint8))
>>> ds = read_mnist(d)
>>> ds.X.shape, ds.X.dtype, ds.y.tolist()
((3, 784), dtype('float32'), [1, 2, 3])
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from colearning.core.exceptions import DataError
from colearning.data.types import Dataset

__all__ = ["find_mnist_file", "read_idx", "read_mnist", "write_idx"]

# type code -> big-endian dtype
_IDX_TYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_MNIST = {
    "train": ("train-images", "train-labels"),
    "test": ("t10k-images", "t10k-labels"),
}
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def read_idx(path: str | Path) -> npt.NDArray[Any]:
    """Read one IDX file (plain or ``.gz``) into an array in native byte order.

    Raises
    ------
    DataError
        If the file is missing, or its header or length is not that of an IDX file.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header (4 bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = int.from_bytes(raw[:4], "big")
        raise DataError(
            f"{path}: magic number {magic} (0x{magic:08x}) is not an IDX header; expected "
            "0x0000TTNN with type TT in 08, 09, 0b, 0c, 0d, 0e (e.g. 2051 for MNIST images, "
            "2049 for labels). Is it an HTML error page or a truncated download?"
        )
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: header declares {ndim} dimensions but the file is too short")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: header declares shape {shape} of {dtype.name} ({expected} bytes with the "
            f"header) but the file holds {len(raw)} bytes; the file is truncated or corrupt"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: npt.ArrayLike) -> None:
    """Write ``array`` as an IDX file (gzipped if ``path`` ends in ``.gz``).

    Useful to hand your own images to anything that reads MNIST's format.
    """
    a = np.asarray(array)
    code = next(
        (c for c, t in _IDX_TYPES.items() if np.dtype(t).newbyteorder("=") == a.dtype), None
    )
    if code is None or a.ndim == 0:
        raise DataError(
            f"write_idx takes a non-scalar array of uint8, int8, int16, int32, float32 or "
            f"float64; got {a.dtype} with shape {a.shape}"
        )
    header = bytes([0, 0, code, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape)
    payload = header + a.astype(np.dtype(_IDX_TYPES[code])).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)


def find_mnist_file(directory: str | Path, stem: str, kind: str) -> Path | None:
    """The file for ``stem`` (e.g. ``"train-images"``) and ``kind`` (``"idx3-ubyte"``)
    in ``directory``, under any of its usual names, or ``None``."""
    directory = Path(directory)
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            candidate = directory / f"{stem}{sep}{kind}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def read_mnist(directory: str | Path) -> Dataset:
    """MNIST from the IDX files in ``directory``: train, and test when present.

    Returns
    -------
    Dataset
        ``X`` float32 of shape (N, 784) in [0, 1] (as ``load_dataset("mnist-small")``),
        ``y`` int64 digits, classes 0-9. N is 70,000 with the full train and test files.

    Raises
    ------
    DataError
        If the train files are missing, only one test file is present, a file is
        malformed, images are not 28 x 28, counts of images and labels differ, or a
        label is not a digit.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"MNIST directory {directory} does not exist; pass the folder holding "
            "train-images-idx3-ubyte and friends"
        )
    xs, ys = [], []
    for split, (images_stem, labels_stem) in _MNIST.items():
        images = find_mnist_file(directory, images_stem, "idx3-ubyte")
        labels = find_mnist_file(directory, labels_stem, "idx1-ubyte")
        if images is None and labels is None and split == "test":
            continue
        if images is None or labels is None:
            missing = f"{images_stem}-idx3-ubyte" if images is None else f"{labels_stem}-idx1-ubyte"
            raise DataError(
                f"{directory}: MNIST file {missing} (or {missing}.gz) is missing; download "
                "the four files from the MNIST page and place them (gzipped or not) there"
            )
        X = _checked(images, read_idx(images), IMAGES_MAGIC, 3)
        y = _checked(labels, read_idx(labels), LABELS_MAGIC, 1)
        if X.shape[1:] != (28, 28):
            raise DataError(f"{images}: images are {X.shape[1]}x{X.shape[2]}; MNIST's are 28x28")
        if len(X) != len(y):
            raise DataError(f"{images} holds {len(X)} images but {labels} holds {len(y)} labels")
        if y.size and y.max() > 9:
            raise DataError(f"{labels}: labels must be digits 0-9; found {int(y.max())}")
        xs.append(X.reshape(len(X), 28 * 28).astype(np.float32) / np.float32(255))
        ys.append(y.astype(np.int64))
    return Dataset(
        name="mnist",
        X=np.concatenate(xs),
        y=np.concatenate(ys),
        classes=np.arange(10, dtype=np.int64),
    )


def _checked(path: Path, array: npt.NDArray[Any], magic: int, ndim: int) -> npt.NDArray[Any]:
    if array.ndim != ndim or array.dtype != np.uint8:
        got = (0x0800 | array.ndim) if array.dtype == np.uint8 else None
        raise DataError(
            f"{path}: expected magic number {magic} (0x{magic:08x}: uint8, {ndim} "
            f"dimension{'s' if ndim > 1 else ''}); got {array.dtype} with {array.ndim} "
            f"dimension(s){f' (magic {got})' if got else ''}"
        )
    return array


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc}); download it again") from exc
    return raw
