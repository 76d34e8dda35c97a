"""MNIST, Fashion-MNIST and Boston loaders on small files written in Keras' layouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.datasets import boston_housing, fashion_mnist, mnist
from search.errors import DataNotFoundError, UsageError


def _write_mnist(data_dir: Path, n_train: int = 12, n_test: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    arrays: dict[str, Any] = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez(data_dir / "mnist.npz", **arrays)
    return arrays


def test_mnist_reads_data_dir_argument(tmp_path: Path) -> None:
    arrays = _write_mnist(tmp_path)
    (x_train, y_train), (x_test, y_test) = mnist(tmp_path)
    assert x_train.shape == (12, 28, 28)
    assert x_train.dtype == np.uint8
    assert y_train.shape == (12,)
    assert y_train.dtype == np.uint8
    assert x_test.shape == (5, 28, 28)
    assert y_test.shape == (5,)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_mnist_reads_env_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_mnist(tmp_path / "env-dir")
    monkeypatch.setenv("SEARCH_DATA_DIR", str(tmp_path / "env-dir"))
    (x_train, _), _ = mnist()
    assert x_train.shape == (12, 28, 28)


def test_argument_overrides_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_mnist(tmp_path / "arg", n_train=3)
    _write_mnist(tmp_path / "env", n_train=7)
    monkeypatch.setenv("SEARCH_DATA_DIR", str(tmp_path / "env"))
    assert len(mnist(tmp_path / "arg")[0][0]) == 3


def test_mnist_corrupt_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(DataNotFoundError, match=r"mnist\.npz is not a valid Keras-layout file"):
        mnist(tmp_path)


def test_fashion_mnist_reads_idx_folder(
    tmp_path: Path, write_idx: Callable[[Path, np.ndarray], None]
) -> None:
    rng = np.random.default_rng(4)
    x_train = rng.integers(0, 256, (9, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, 9).astype(np.uint8)
    x_test = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, 4).astype(np.uint8)
    folder = tmp_path / "fashion-mnist"
    write_idx(folder / "train-images-idx3-ubyte.gz", x_train)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x_test)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y_test)
    (a, b), (c, d) = fashion_mnist(tmp_path)
    assert a.dtype == b.dtype == np.uint8
    for got, want in ((a, x_train), (b, y_train), (c, x_test), (d, y_test)):
        np.testing.assert_array_equal(got, want)


def test_fashion_mnist_partial_folder_names_missing_file(
    tmp_path: Path, write_idx: Callable[[Path, np.ndarray], None]
) -> None:
    write_idx(tmp_path / "fashion-mnist" / "train-labels-idx1-ubyte.gz", np.zeros(3))
    with pytest.raises(DataNotFoundError) as info:
        fashion_mnist(tmp_path)
    message = str(info.value)
    assert "fashion-mnist/train-images-idx3-ubyte.gz" in message
    assert "fashion-mnist/train-labels-idx1-ubyte.gz," not in message


def _write_boston(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(506, 13))
    y = rng.uniform(5, 50, size=506)
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez(data_dir / "boston_housing.npz", x=x, y=y)
    return x, y


def test_boston_split_is_keras_seed_113_shuffle(tmp_path: Path) -> None:
    x, y = _write_boston(tmp_path)
    (x_train, y_train), (x_test, y_test) = boston_housing(tmp_path)
    assert x_train.shape == (404, 13)
    assert x_test.shape == (102, 13)
    assert y_train.shape == (404,)
    assert y_test.shape == (102,)
    assert x_train.dtype == y_train.dtype == np.float64
    order = np.arange(506)
    np.random.RandomState(113).shuffle(order)
    np.testing.assert_array_equal(y_train, y[order[:404]])
    np.testing.assert_array_equal(x_test, x[order[404:]])


def test_boston_test_split_and_seed(tmp_path: Path) -> None:
    _write_boston(tmp_path)
    (x_train, _), (x_test, _) = boston_housing(tmp_path, test_split=0.5, seed=1)
    assert len(x_train) == 253
    assert len(x_test) == 253
    (x_all, _), (x_none, _) = boston_housing(tmp_path, test_split=0.0)
    assert len(x_all) == 506
    assert len(x_none) == 0
    with pytest.raises(UsageError, match=r"test_split=1\.0"):
        boston_housing(tmp_path, test_split=1.0)


def test_boston_matches_keras_on_same_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    keras_module: Any,
    assert_same_result: Callable[[Any, Any], None],
) -> None:
    """Keras' own loader, handed our file in place of its download, gives the same arrays."""
    _write_boston(tmp_path)
    from keras.src.datasets import boston_housing as keras_boston

    path = str(tmp_path / "boston_housing.npz")
    monkeypatch.setattr(keras_boston, "get_file", lambda *a, **k: path)
    kwarg_sets: list[dict[str, Any]] = [{}, {"test_split": 0.3, "seed": 7}]
    for kwargs in kwarg_sets:
        assert_same_result(boston_housing(tmp_path, **kwargs), keras_boston.load_data(**kwargs))


def test_mnist_matches_keras_on_same_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    keras_module: Any,
    assert_same_result: Callable[[Any, Any], None],
) -> None:
    _write_mnist(tmp_path)
    from keras.src.datasets import mnist as keras_mnist

    monkeypatch.setattr(keras_mnist, "get_file", lambda *a, **k: str(tmp_path / "mnist.npz"))
    assert_same_result(mnist(tmp_path), keras_mnist.load_data())
