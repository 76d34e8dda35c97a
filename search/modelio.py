"""Saving and predicting with Keras models and preprocessors, shared by trials and members."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from search.feeding import is_batches

__all__ = ["predict", "save_model", "save_preprocessor"]


#: Inputs up to this many elements are predicted by calling the model once (eagerly)
#: instead of ``Model.predict``: a fresh fold model's ``predict`` builds and compiles its
#: predict function first, ~0.3 s on JAX for a Boston fold's 101 rows against 2–10 ms for
#: the call (measured; same numbers to the last bit). Two predicts per fold model made
#: ``predict`` 20 % of a Boston search's wall time. Larger inputs keep ``predict``'s
#: batching (an eager call holds every row's activations at once).
EAGER_MAX_ELEMENTS = 2**20


def predict(model: Any, x: Any, batch_size: int = 256, *,
            task: str | None = None) -> np.ndarray:
    """Predictions as float32 ``(n, outputs)`` of an array or of ``row_batches``.

    With ``task="binary"``, a 2-unit softmax's ``(n, 2)`` becomes its positive-class column
    ``(n, 1)``: this is the one place predictions are made, so OOF and test arrays, ensembles
    and scores all see what a 1-unit sigmoid gives, whichever binary head the space uses.
    """
    if is_batches(x):
        pred = model.predict(x, verbose=0)
    elif isinstance(x, np.ndarray) and 0 < x.size <= EAGER_MAX_ELEMENTS:
        import keras

        pred = keras.ops.convert_to_numpy(model(x, training=False))
    else:
        pred = model.predict(x, batch_size=max(batch_size, 256), verbose=0)
    return as_predictions(pred, task=task)


def as_predictions(pred: Any, *, task: str | None = None) -> np.ndarray:
    """A model's raw outputs as :func:`predict` returns them: float32 ``(n, outputs)``, a
    binary 2-unit softmax as its positive-class column (also for outputs computed
    elsewhere: :mod:`search.stacking` predicts K fold models in one call)."""
    pred = np.asarray(pred, dtype=np.float32)
    pred = pred.reshape(len(pred), -1)
    if task == "binary" and pred.shape[1] == 2:
        pred = np.ascontiguousarray(pred[:, 1:])
    return pred


def _atomic(path: Path, suffix: str, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model: Any, path: Path) -> None:
    """Save a ``.keras`` file atomically (loads with plain ``keras.models.load_model``)."""
    _atomic(path, ".keras", model.save)


def save_preprocessor(pre: Any, path: Path) -> None:
    """Save a fitted preprocessor with joblib, atomically."""
    import joblib

    _atomic(path, ".joblib", lambda tmp: joblib.dump(pre, tmp))
