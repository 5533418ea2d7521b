"""The MNIST IDX and CIFAR-10 binary readers, on small files of the real formats."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from colearning import DataError
from colearning.data.cifar import (
    RECORD_BYTES,
    TEST_FILE,
    TRAIN_FILES,
    read_cifar10,
    read_cifar_batch,
    write_cifar_batches,
)
from colearning.data.idx import read_idx, read_mnist, write_idx


def idx_images(n: int, seed: int = 0, rows: int = 28, cols: int = 28) -> tuple[bytes, np.ndarray]:
    """An IDX3 file written byte by byte from the format's description."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    return struct.pack(">IIII", 2051, n, rows, cols) + pixels.tobytes(), pixels


def idx_labels(labels: list[int]) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + bytes(labels)


def mnist_dir(path, n_train=5, n_test=3, gz=False, sep="-"):
    suffix = ".gz" if gz else ""
    wrap = gzip.compress if gz else (lambda b: b)
    train_bytes, train_px = idx_images(n_train, 0)
    test_bytes, test_px = idx_images(n_test, 1)
    (path / f"train-images{sep}idx3-ubyte{suffix}").write_bytes(wrap(train_bytes))
    (path / f"train-labels{sep}idx1-ubyte{suffix}").write_bytes(
        wrap(idx_labels([i % 10 for i in range(n_train)]))
    )
    if n_test:
        (path / f"t10k-images{sep}idx3-ubyte{suffix}").write_bytes(wrap(test_bytes))
        (path / f"t10k-labels{sep}idx1-ubyte{suffix}").write_bytes(wrap(idx_labels([9] * n_test)))
    return train_px, test_px


# -- IDX / MNIST ---------------------------------------------------------------------------


@pytest.mark.parametrize(("gz", "sep"), [(False, "-"), (True, "-"), (False, ".")])
def test_mnist_train_and_test_are_read_in_order(tmp_path, gz, sep):
    train_px, test_px = mnist_dir(tmp_path, gz=gz, sep=sep)
    ds = read_mnist(tmp_path)
    assert ds.X.shape == (8, 784) and ds.X.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 2, 3, 4, 9, 9, 9]
    np.testing.assert_array_equal(ds.X[0], train_px[0].reshape(784) / np.float32(255))
    np.testing.assert_array_equal(ds.X[5], test_px[0].reshape(784) / np.float32(255))
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0
    assert ds.classes.tolist() == list(range(10))


def test_mnist_train_alone_is_enough(tmp_path):
    mnist_dir(tmp_path, n_test=0)
    assert len(read_mnist(tmp_path)) == 5


def test_idx_round_trip_for_every_type(tmp_path):
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        write_idx(tmp_path / "a.idx", a)
        b = read_idx(tmp_path / "a.idx")
        assert b.dtype == a.dtype and np.array_equal(a, b)
    write_idx(tmp_path / "a.idx.gz", np.ones(3, np.uint8))
    assert read_idx(tmp_path / "a.idx.gz").tolist() == [1, 1, 1]


def test_missing_mnist_file_is_named(tmp_path):
    mnist_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        read_mnist(tmp_path)


def test_half_a_test_pair_is_an_error(tmp_path):
    mnist_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        read_mnist(tmp_path)


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_mnist(tmp_path / "nope")


def test_bad_magic_number_is_reported(tmp_path):
    mnist_dir(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DataError, match="magic number .* is not an IDX header"):
        read_mnist(tmp_path)


def test_labels_file_in_place_of_images_is_reported(tmp_path):
    mnist_dir(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_labels([1, 2, 3, 4, 5]))
    with pytest.raises(DataError, match="expected magic number 2051"):
        read_mnist(tmp_path)


def test_truncated_file_is_reported(tmp_path):
    mnist_dir(tmp_path)
    whole = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(whole[:-10])
    with pytest.raises(DataError, match=r"shape \(5, 28, 28\).*truncated"):
        read_mnist(tmp_path)


def test_wrong_image_size_count_mismatch_and_bad_label(tmp_path):
    mnist_dir(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_images(5, rows=32, cols=32)[0])
    with pytest.raises(DataError, match="28x28"):
        read_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_images(4)[0])
    with pytest.raises(DataError, match="4 images but .* 5 labels"):
        read_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_images(5)[0])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_labels([1, 2, 3, 4, 12]))
    with pytest.raises(DataError, match="digits 0-9"):
        read_mnist(tmp_path)


def test_corrupt_gzip_is_reported(tmp_path):
    mnist_dir(tmp_path, gz=True)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_mnist(tmp_path)


# -- CIFAR-10 --------------------------------------------------------------------------------


def test_cifar_record_layout_is_label_then_red_green_blue_planes(tmp_path):
    red, green, blue = np.full(1024, 10), np.full(1024, 20), np.arange(1024) % 256
    record = (
        bytes([7])
        + bytes(red.astype(np.uint8))
        + bytes(green.astype(np.uint8))
        + bytes(blue.astype(np.uint8))
    )
    assert len(record) == RECORD_BYTES
    (tmp_path / "one.bin").write_bytes(record * 2)
    images, labels = read_cifar_batch(tmp_path / "one.bin")
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [7, 7]
    assert images[0, 0].max() == 10 and images[0, 1].min() == 20
    assert images[0, 2, 0, :3].tolist() == [0, 1, 2] and images[0, 2, 1, 0] == 32


@pytest.mark.parametrize("subdir", [False, True])
def test_cifar10_reads_train_then_test(tmp_path, subdir):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(30, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, 30)
    target = tmp_path / "cifar-10-batches-bin" if subdir else tmp_path
    write_cifar_batches(target, X, y, test_rows=6)
    assert sorted(p.name for p in target.iterdir()) == sorted([*TRAIN_FILES, TEST_FILE])
    assert (target / TEST_FILE).stat().st_size == 6 * RECORD_BYTES
    ds = read_cifar10(tmp_path)
    assert ds.X.shape == (30, 3, 32, 32) and ds.X.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.y.tolist() == y.tolist()
    np.testing.assert_array_equal(np.rint(ds.X * 255).astype(np.uint8), X)
    assert len(read_cifar10(tmp_path, splits=("test",))) == 6


def test_write_cifar_batches_takes_floats_in_unit_range(tmp_path):
    X = np.linspace(0, 1, 6 * 3072, dtype=np.float32).reshape(6, 3, 32, 32)
    write_cifar_batches(tmp_path, X, np.arange(6))
    np.testing.assert_allclose(read_cifar10(tmp_path).X, X, atol=0.5 / 255 + 1e-7)


def test_missing_cifar_files_are_listed(tmp_path):
    write_cifar_batches(tmp_path, np.zeros((12, 3, 32, 32), np.uint8), np.zeros(12, int))
    (tmp_path / "data_batch_3.bin").unlink()
    with pytest.raises(DataError, match=r"data_batch_3\.bin missing"):
        read_cifar10(tmp_path)
    with pytest.raises(DataError, match="no CIFAR-10 batch files"):
        read_cifar10(tmp_path / "elsewhere")


def test_malformed_cifar_batches_are_refused(tmp_path):
    write_cifar_batches(tmp_path, np.zeros((12, 3, 32, 32), np.uint8), np.zeros(12, int))
    good = (tmp_path / TEST_FILE).read_bytes()
    (tmp_path / TEST_FILE).write_bytes(good[:-1])
    with pytest.raises(DataError, match="not a whole number of 3073-byte"):
        read_cifar10(tmp_path)
    bad_label = bytearray(good)
    bad_label[RECORD_BYTES] = 10  # the second record's label byte
    (tmp_path / TEST_FILE).write_bytes(bytes(bad_label))
    with pytest.raises(DataError, match="record 1 has label 10"):
        read_cifar10(tmp_path)


def test_write_cifar_batches_checks_its_input(tmp_path):
    with pytest.raises(DataError, match=r"shape \(N, 3, 32, 32\)"):
        write_cifar_batches(tmp_path, np.zeros((6, 32, 32, 3), np.uint8), np.zeros(6, int))
    with pytest.raises(DataError, match="labels 0-9"):
        write_cifar_batches(tmp_path, np.zeros((6, 3, 32, 32), np.uint8), np.full(6, 11))
    with pytest.raises(DataError, match="test_rows"):
        write_cifar_batches(tmp_path, np.zeros((5, 3, 32, 32), np.uint8), np.zeros(5, int))
