"""spaces/mnist_dense.py on the first 12,000 MNIST training rows (benchmark subset).

The full test set (10,000 rows) is kept. Everything else is the book space, unchanged.
``SEARCH_BENCH_ROWS`` (if set and > 0) replaces the 12,000.
"""

import importlib.util
import os
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_mnist_dense_book", Path(__file__).resolve().parents[2] / "spaces" / "mnist_dense.py")
_book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_book)

TASK, METRIC, FOLDS = _book.TASK, _book.METRIC, 3
build, fit_settings = _book.build, _book.fit_settings
N_TRAIN = int(os.environ.get("SEARCH_BENCH_ROWS") or 0) or 12_000


def load_data(data_dir=None):
    (x, y), (x_test, y_test) = _book.load_data(data_dir)
    return (x[:N_TRAIN], y[:N_TRAIN]), (x_test, y_test)
