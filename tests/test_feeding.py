"""Big uint8 inputs stream in float32 batches from the shared array; TensorBoard per fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import search.feeding as feeding
from search.feeding import batches_class, row_batches, should_stream
from search.folds import make_folds
from search.hp import DefaultHP
from search.space import load_space
from search.store import RunStore
from search.trial import Dataset, run_trial
from search.writer import StoreWriter

SPACES = Path(__file__).parent / "spaces"


def _writer(store: RunStore, data: Dataset) -> StoreWriter:
    """The driver's sink: what writes a trial's results into the store."""
    return StoreWriter(store, n_train=len(data.y_train), direction="minimize", retain=False)


def test_row_batches_cover_rows_cast_and_reshuffle() -> None:
    x = np.arange(30, dtype=np.uint8).reshape(10, 3)
    y = np.arange(10)
    rows = np.array([1, 3, 4, 7, 8, 9])
    batches = row_batches(x, y, rows, batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 2
    first = [batches[i] for i in range(len(batches))]
    assert all(xb.dtype == np.float32 for xb, _ in first)
    seen = np.concatenate([yb for _, yb in first])
    assert sorted(seen) == list(rows)
    for xb, yb in first:
        np.testing.assert_array_equal(xb, x[yb].astype(np.float32))
    orders = set()
    for _ in range(5):
        batches.on_epoch_end()
        orders.add(tuple(np.concatenate([batches[i][1] for i in range(len(batches))])))
    assert len(orders) > 1  # reshuffled between epochs
    plain = row_batches(x, None, rows, batch_size=4)
    np.testing.assert_array_equal(np.concatenate([plain[i] for i in range(2)]), x[rows])


def test_should_stream_threshold() -> None:
    assert not should_stream(np.zeros((10, 10), np.uint8))
    assert not should_stream([1, 2, 3])
    big = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(70_000, 1_000),
                                          strides=(0, 0))
    assert should_stream(big)  # 70 MB of uint8 = 280 MB as float32


def test_streamed_trial_matches_in_memory_path(monkeypatch: pytest.MonkeyPatch) -> None:
    space = load_space(SPACES / "tiny_multihot.py")
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, "binary", 2, seed=0)
    plain = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=0)
    calls: list[np.dtype] = []
    row_batches_cls = batches_class()
    original = row_batches_cls.__getitem__

    def spy(self: object, i: int):  # type: ignore[no-untyped-def]
        out = original(self, i)
        calls.append((out[0] if isinstance(out, tuple) else out).dtype)
        return out

    monkeypatch.setattr(feeding, "STREAM_BYTES", 0)
    monkeypatch.setattr(row_batches_cls, "__getitem__", spy)
    streamed = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=0)
    assert calls and set(calls) == {np.dtype(np.float32)}
    assert streamed.oof.shape == plain.oof.shape == (80, 1)
    assert np.isfinite(streamed.oof).all()
    assert streamed.test_pred is not None and streamed.test_pred.shape == (40, 1)
    # Same model, same folds: both paths learn the planted signal.
    assert streamed.record.score is not None and streamed.record.score > 0.7
    assert plain.record.score is not None and plain.record.score > 0.7


def test_tensorboard_logs_per_fold(tmp_path: Path) -> None:
    space = load_space(SPACES / "tiny_multihot.py")
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, "binary", 2, seed=0)
    store = RunStore(tmp_path)
    run_trial(space, DefaultHP(), data, fold_of=fold_of, number=3, seed=0,
              sink=_writer(store, data), tensorboard_dir=store.trial_dir(3), save_models=False)
    for fold in (0, 1):
        logs = list((store.trial_dir(3) / "tensorboard" / f"fold_{fold}").rglob("events.out*"))
        assert logs, f"no TensorBoard events for fold {fold}"
