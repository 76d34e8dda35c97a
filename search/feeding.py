"""Feeding fold rows to Keras without copying the run's data per fold or per trial.

Multi-hot IMDB/Reuters inputs are kept as uint8 (25,000 × 10,000 = 250 MB); as float32 they
would be 1 GB per copy, and ``x[train_idx]`` makes a copy per fold. For such arrays the
trial hands Keras :func:`row_batches` instead: each batch gathers its rows from the one
shared array and casts them to float32, so memory stays at one uint8 copy plus a batch.
Small arrays keep the plain in-memory path, which is faster per step.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

__all__ = ["STREAM_BYTES", "batches_class", "is_batches", "row_batches", "should_stream"]

#: Stream when the array (as float32, for uint8/bool inputs) would exceed this many bytes.
STREAM_BYTES = 256 * 2**20


def should_stream(x: Any) -> bool:
    """Whether ``x`` is a big array better fed batch by batch than sliced per fold."""
    if not isinstance(x, np.ndarray):
        return False
    nbytes = x.nbytes
    if x.dtype in (np.uint8, np.bool_, np.int8):
        nbytes = x.size * 4  # what Keras would materialise as float32
    return nbytes > STREAM_BYTES


@functools.cache
def batches_class() -> type:
    """The :class:`keras.utils.PyDataset` subclass behind :func:`row_batches`.

    Defined on first use so that importing this module (and the CLI) does not import Keras.
    """
    import keras

    class RowBatches(keras.utils.PyDataset):
        """Batches of ``x[rows]`` (and ``y[rows]``), cast to float32 for uint8/bool inputs."""

        def __init__(self, x: np.ndarray, y: np.ndarray | None, rows: np.ndarray, *,
                     batch_size: int, shuffle: bool = False, seed: int = 0) -> None:
            super().__init__()
            self.x, self.y = x, y
            self.order = np.array(rows, copy=True)
            self.batch_size = batch_size
            self.shuffle = shuffle
            self.rng = np.random.default_rng(seed)
            self.cast = x.dtype in (np.uint8, np.bool_, np.int8)
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self) -> int:
            return math.ceil(len(self.order) / self.batch_size)

        def __getitem__(self, i: int) -> Any:
            rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
            xb = self.x[rows]
            if self.cast:
                xb = xb.astype(np.float32)
            return xb if self.y is None else (xb, self.y[rows])

        def on_epoch_end(self) -> None:
            if self.shuffle:
                self.rng.shuffle(self.order)

    return RowBatches


def row_batches(x: np.ndarray, y: np.ndarray | None, rows: np.ndarray, *, batch_size: int,
                shuffle: bool = False, seed: int = 0) -> Any:
    """Batches of ``x[rows]`` (and ``y[rows]``) gathered from the shared array per batch.

    Args:
        x: The run's whole training (or test) array, shared, never copied.
        y: Targets aligned with ``x``, or None (prediction).
        rows: Which rows of ``x`` to serve.
        batch_size: Rows per batch.
        shuffle: Reshuffle the row order every epoch (training), seeded by ``seed``.
    """
    return batches_class()(x, y, rows, batch_size=batch_size, shuffle=shuffle, seed=seed)


def is_batches(x: Any) -> bool:
    """Whether ``x`` came from :func:`row_batches` (without importing Keras otherwise)."""
    return batches_class.cache_info().currsize > 0 and isinstance(x, batches_class())
