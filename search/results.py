"""What leaves a trial: plain results after each fold, handed to a sink.

The trial code never writes the store. After each fold it hands a :class:`FoldResult`
(the record so far, the fold's OOF rows, its test predictions, the fold model as bytes) to
a :class:`TrialSink`. In the driver the sink is the store writer itself; in a ``--jobs``
child it is a pipe to the driver; on a Ray worker it is an actor on the driver's node. So
only the driver writes the store, and a cluster needs no shared disk.
"""

from __future__ import annotations

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
    """A Keras model as the bytes of its ``.keras`` file (Keras saves to paths only)."""
    return _via_file(".keras", model.save)


def preprocessor_bytes(pre: Any) -> bytes:
    """A fitted preprocessor as joblib bytes."""
    import joblib

    return _via_file(".joblib", lambda tmp: joblib.dump(pre, tmp))
