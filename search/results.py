"""What leaves a trial: plain results after each fold, handed to a sink.

The trial code never writes the store. After each fold it hands a :class:`FoldResult`
(the record so far, the fold's OOF rows, its test predictions, the fold model as bytes) to
a :class:`TrialSink`. In the driver the sink is the store writer itself; in a ``--jobs``
child it is a pipe to the driver; on a Ray worker it is an actor on the driver's node. So
only the driver writes the store, and a cluster needs no shared disk.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from search.store import TrialRecord

__all__ = ["FoldResult", "TrialSink", "model_bytes", "preprocessor_bytes"]


@dataclass
class FoldResult:
    """One finished fold of one trial, as plain data.

    Attributes:
        record: The trial record after this fold (status ``running``).
        fold: The fold id.
        rows: Training-row indices of the fold's validation part.
        oof: The fold model's predictions for ``rows`` (float32, ``(len(rows), outputs)``).
        test: The fold model's test-set predictions, or None.
        model: The fold model as ``.keras`` bytes, or None when models are not kept.
        preprocessor: The fold's fitted preprocessor as joblib bytes, or None.
        repeat: Which K-fold split of a repeated K-fold the fold belongs to (``--repeats``).
        repeats: How many splits the run has (the writer keeps one OOF array per split).
    """

    record: TrialRecord
    fold: int
    rows: np.ndarray
    oof: np.ndarray
    test: np.ndarray | None = None
    model: bytes | None = None
    preprocessor: bytes | None = None
    repeat: int = 0
    repeats: int = 1


class TrialSink(Protocol):
    """Receives a trial's life: start, each fold, the end (any status)."""

    def started(self, record: TrialRecord) -> None:
        """The trial is about to run its first fold."""

    def fold(self, result: FoldResult) -> None:
        """A fold finished and was scored."""

    def finished(self, record: TrialRecord) -> None:
        """The trial ended: complete, pruned or failed (the record says which and why)."""


def _via_file(suffix: str, write: Any) -> bytes:
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        return Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)


def model_bytes(model: Any) -> bytes:
    """A Keras model as the bytes of its ``.keras`` file.

    Written into memory by Keras' own saving function (the one ``model.save`` calls for a
    path, which takes a file object too): a temporary file on disk cost ~5 ms a Boston
    fold model (write, read back, unlink). Where that private function moved, through a
    temporary file and the public ``model.save``.
    """
    _seed_skipsets()
    try:
        from keras.src.saving.saving_lib import save_model
    except ImportError:
        return _via_file(".keras", model.save)
    buffer = io.BytesIO()
    save_model(model, buffer)
    return buffer.getvalue()


#: The kinds of object Keras' saving walks with an attribute skip set.
_SKIPSET_KINDS = ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer",
                  "Loss")


def _seed_skipsets() -> None:
    """Put Keras' attribute skip sets where its saving looks them up.

    Why: to save a model, Keras builds for each kind of object (layer, optimizer, metric,
    ...) the set of attribute names it skips, by constructing a reference object of that
    kind. It means to keep them in its global state, but stores them under
    ``saving_attr_skipset_<kind>`` and looks them up under ``saving_attr_skiplist_<kind>``
    (Keras 3.15), so every save constructs them again: measured 6 of 17 ms a Boston fold
    model. ``clear_session`` (each fold) empties the global state, so they are put back
    before each save, from this process's copies (the same sets Keras computes).

    Private Keras: where ``get_attr_skipset`` or the global state moved, nothing is done
    (saving is then as slow as before, and as correct).
    """
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return
    for kind, skipset in _skipsets().items():
        key = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(key, None) is None:
            global_state.set_global_attribute(key, skipset)


@functools.cache
def _skipsets() -> dict[str, set[str]]:
    """Keras' skip set of each kind, computed once per process (empty: none to be had)."""
    try:
        from keras.src.saving.saving_lib import get_attr_skipset
    except ImportError:
        return {}
    try:
        return {kind: get_attr_skipset(kind) for kind in _SKIPSET_KINDS}
    except Exception:  # a Keras whose kinds differ: compute nothing ahead
        return {}


def preprocessor_bytes(pre: Any) -> bytes:
    """A fitted preprocessor as joblib bytes."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(pre, buffer)
    return buffer.getvalue()
