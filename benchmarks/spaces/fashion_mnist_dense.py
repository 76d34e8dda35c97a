"""spaces/mnist_dense.py on Fashion-MNIST (Debian's dataset-fashion-mnist): same space.

Everything but the data is the book space, unchanged. ``SEARCH_BENCH_ROWS`` (if set and > 0)
keeps only the first N training rows; the full test set is kept.
"""

import importlib.util
import os
from pathlib import Path

from search.datasets import fashion_mnist

_spec = importlib.util.spec_from_file_location(
    "_mnist_dense_book", Path(__file__).resolve().parents[2] / "spaces" / "mnist_dense.py")
_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_book)
_book.mnist = fashion_mnist  # the space's loader reads Fashion-MNIST's arrays, same prep

TASK, METRIC, FOLDS = _book.TASK, _book.METRIC, 3
build, fit_settings = _book.build, _book.fit_settings
N_TRAIN = int(os.environ.get("SEARCH_BENCH_ROWS") or 0) or None


def load_data(data_dir=None):
    (x, y), (x_test, y_test) = _book.load_data(data_dir)
    return (x[:N_TRAIN], y[:N_TRAIN]), (x_test, y_test)
