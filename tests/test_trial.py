"""run_trial in-process: pruning keeps finished folds, seeds differ per fold, record content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.errors import TrialFailed, TrialPruned
from search.folds import make_folds
from search.hp import DefaultHP, FixedHP
from search.space import load_space
from search.store import RunStore
from search.trial import Dataset, fold_seed, run_trial
from search.writer import StoreWriter


def _writer(store: RunStore, data: Dataset) -> StoreWriter:
    """The driver's sink: what writes a trial's results into the store (on its own thread:
    ``flush`` before reading the store)."""
    return StoreWriter(store, n_train=len(data.y_train), direction="minimize", retain=False)


@pytest.fixture(scope="module")
def space_and_data():  # type: ignore[no-untyped-def]
    space = load_space(Path(__file__).parent / "spaces" / "tiny_regression.py")
    return space, Dataset.from_space(space, None)


def test_pruned_trial_keeps_finished_folds(tmp_path: Path, space_and_data) -> None:
    space, data = space_and_data
    fold_of = make_folds(data.y_train, "regression", 3, seed=0)
    store = RunStore(tmp_path)
    reported: list[tuple[int, float]] = []

    def report(fold: int, mean: float) -> None:
        reported.append((fold, mean))
        raise TrialPruned("stop")

    with pytest.raises(TrialPruned):
        run_trial(space, DefaultHP(), data, fold_of=fold_of, number=4, seed=1,
                  sink=(writer := _writer(store, data)), report=report)
    writer.flush()
    record = store.read_trial(4)
    assert record.status == "pruned" and len(record.folds) == 1
    assert reported == [(0, pytest.approx(record.folds[0].score))]
    oof = store.load_oof(4)
    assert np.isfinite(oof[fold_of == 0]).all() and np.isnan(oof[fold_of != 0]).all()
    assert (store.trial_dir(4) / "fold_0.keras").is_file()


def test_complete_trial_record(tmp_path: Path, space_and_data) -> None:
    space, data = space_and_data
    fold_of = make_folds(data.y_train, "regression", 2, seed=0)
    store = RunStore(tmp_path)
    hp = FixedHP({"layers": 2, "units_0": 4, "units_1": 12, "activation": "tanh",
                  "epochs": 1})
    result = run_trial(space, hp, data, fold_of=fold_of, number=0, seed=5,
                       sink=(writer := _writer(store, data)), save_models=False)
    writer.flush()
    record = result.record
    assert record.status == "complete" and record.params["units_1"] == 12
    assert record.params["lr"] == 0.01  # not given: the default
    assert [f.seed for f in record.folds] == [fold_seed(5, 0, 0), fold_seed(5, 0, 1)]
    assert record.folds[0].seed != record.folds[1].seed
    assert all(f.epochs_run == 1 and f.fit_seconds <= f.seconds for f in record.folds)
    assert not list(store.trial_dir(0).glob("*.keras"))
    assert result.test_pred is not None and result.test_pred.shape == (len(data.y_test), 1)
    np.testing.assert_allclose(store.load_oof(0), result.oof)


def test_same_seed_same_result(space_and_data) -> None:
    space, data = space_and_data
    fold_of = make_folds(data.y_train, "regression", 2, seed=0)
    a = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=3)
    b = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=3)
    np.testing.assert_allclose(a.oof, b.oof, rtol=1e-5)


def test_out_of_range_value_fails_the_trial(space_and_data) -> None:
    space, data = space_and_data
    fold_of = make_folds(data.y_train, "regression", 2, seed=0)
    with pytest.raises(TrialFailed, match="outside the space's range"):
        run_trial(space, FixedHP({"layers": 7}), data, fold_of=fold_of, number=0, seed=0)


def test_early_stopping_restores_the_best_epoch(tmp_path: Path) -> None:
    """A fold stops ``patience`` epochs after its best validation loss, ends with the best
    epoch's weights (its OOF predictions score exactly that epoch's validation loss) and
    records that epoch; a refit trains the folds' median best epoch, without stopping."""
    from search.members import refit_epochs, refit_trial

    space = load_space(Path(__file__).parent / "spaces" / "early_stop.py")
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, "regression", 2, seed=0)
    store = RunStore(tmp_path)
    result = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=0,
                       sink=(writer := _writer(store, data)))
    writer.flush()
    record = result.record
    assert record.params["patience"] == 2
    for f in record.folds:
        val = f.history["val_loss"]
        assert f.epochs_run < 60 and f.epochs_run == f.best_epoch + 2
        assert f.best_epoch == int(np.argmin(val)) + 1
        rows = fold_of == f.fold
        mse = float(np.mean((result.oof[rows, 0] - data.y_train[rows]) ** 2))
        assert mse == pytest.approx(val[f.best_epoch - 1], rel=1e-4)
    off = run_trial(space, FixedHP({"patience": 0}), data, fold_of=fold_of, number=1, seed=0)
    assert all(f.epochs_run == 60 for f in off.record.folds)
    refit = refit_trial(space, data, store, record, seeds=1, predict_test=False)
    assert refit.epochs == refit_epochs(record) and refit.seeds[0].epochs == refit.epochs


def test_early_stopping_must_be_a_patience(tmp_path: Path) -> None:
    from search.errors import SpaceError

    src = (Path(__file__).parent / "spaces" / "early_stop.py").read_text()
    bad = tmp_path / "bad_patience.py"
    bad.write_text(src.replace('hp.Int("patience", 0, 3, default=2)', '"yes"'))
    with pytest.raises(SpaceError, match=r"early_stopping.*patience"):
        load_space(bad).fit_settings(DefaultHP())
