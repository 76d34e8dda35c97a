"""MNIST, Fashion-MNIST and Boston housing, read from Keras' own file layouts.

Each function returns exactly what ``keras.datasets.<name>.load_data`` returns -- same
arrays, dtypes, split and order -- but reads the file from the project's data directory
first, because Keras' ``get_file`` would re-download any file whose hash differs from its
own (such as one rebuilt offline) and cannot read from a directory of our choosing.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from search.datasets._dirs import PathLike
from search.datasets._source import invalid_file_error, locate
from search.datasets.catalog import ENTRIES, Entry
from search.datasets.types import LoadResult
from search.errors import UsageError


def _read_arrays(entry: Entry, path: Path, keys: tuple[str, ...]) -> list[np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return [archive[key] for key in keys]
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise invalid_file_error(entry, path, exc) from exc


def mnist(data_dir: PathLike | None = None) -> LoadResult:
    """Load MNIST as ``keras.datasets.mnist.load_data()`` does.

    Args:
        data_dir: Directory holding ``mnist.npz``; defaults to ``$SEARCH_DATA_DIR``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: uint8 images ``(60000, 28, 28)`` and
        ``(10000, 28, 28)`` with values 0-255, uint8 labels 0-9.

    Raises:
        DataNotFoundError: If the file is nowhere to be found or downloaded.
    """
    entry = ENTRIES["mnist"]
    (path,) = locate(entry, data_dir)
    x_train, y_train, x_test, y_test = _read_arrays(
        entry, path, ("x_train", "y_train", "x_test", "y_test")
    )
    return (x_train, y_train), (x_test, y_test)


def _read_idx(entry: Entry, path: Path, offset: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            return np.frombuffer(handle.read(), np.uint8, offset=offset)
    except (OSError, EOFError, ValueError) as exc:
        raise invalid_file_error(entry, path, exc) from exc


def fashion_mnist(data_dir: PathLike | None = None) -> LoadResult:
    """Load Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data()`` does.

    Args:
        data_dir: Directory with a ``fashion-mnist/`` folder holding the four ``*.gz`` IDX
            files Keras caches; defaults to ``$SEARCH_DATA_DIR``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: uint8 images ``(60000, 28, 28)`` and
        ``(10000, 28, 28)``, uint8 labels 0-9.

    Raises:
        DataNotFoundError: If any of the four files is missing and cannot be downloaded.
    """
    entry = ENTRIES["fashion_mnist"]
    train_labels, train_images, test_labels, test_images = locate(entry, data_dir)
    y_train = _read_idx(entry, train_labels, 8)
    y_test = _read_idx(entry, test_labels, 8)
    try:
        x_train = _read_idx(entry, train_images, 16).reshape(len(y_train), 28, 28)
        x_test = _read_idx(entry, test_images, 16).reshape(len(y_test), 28, 28)
    except ValueError as exc:
        raise invalid_file_error(entry, train_images.parent, exc) from exc
    return (x_train, y_train), (x_test, y_test)


def boston_housing(
    data_dir: PathLike | None = None, *, test_split: float = 0.2, seed: int = 113
) -> LoadResult:
    """Load Boston housing as ``keras.datasets.boston_housing.load_data()`` does.

    The file holds the 506 rows in their original order; the split comes from shuffling row
    indices with ``np.random.RandomState(seed)``, so the defaults give Keras' 404/102 split.

    Args:
        data_dir: Directory holding ``boston_housing.npz``; defaults to ``$SEARCH_DATA_DIR``.
        test_split: Fraction of rows for the test set, in ``[0, 1)``.
        seed: Seed of the row shuffle before the split.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: float64 features ``(n, 13)`` and float64
        median prices in thousands of dollars ``(n,)``.

    Raises:
        UsageError: If ``test_split`` is outside ``[0, 1)``.
        DataNotFoundError: If the file is nowhere to be found or downloaded.
    """
    if not 0 <= test_split < 1:
        raise UsageError(f"`{test_split=}` must be in [0, 1).")
    entry = ENTRIES["boston_housing"]
    (path,) = locate(entry, data_dir)
    x, y = _read_arrays(entry, path, ("x", "y"))
    indices = np.arange(len(x))
    np.random.RandomState(seed).shuffle(indices)
    x = x[indices]
    y = y[indices]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))
