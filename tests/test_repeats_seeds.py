"""Repeated K-fold (``--repeats``) and seed bagging (``--seeds``): real training on tiny data.

What must hold: every repeat is a K-fold split of its own; a trial trains R × K fold models
and each row's OOF prediction is the mean over its repeats; a bagged fold model is one
``.keras`` file that predicts the mean of its seed models (so members and the ensemble API
use it unchanged); an interrupted repeated trial continues to the same result.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import keras
import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from search.folds import fold_indices, make_folds, repeat_mean, rows_of, split_count
from search.hp import DefaultHP
from search.space import load_space
from search.store import RunStore
from search.trial import Dataset, run_trial
from search.writer import StoreWriter

pytestmark = pytest.mark.timeout(600)
SPACES = Path(__file__).parent / "spaces"


def test_repeated_folds_are_k_fold_splits_of_their_own() -> None:
    y = np.arange(60) % 3
    fold_of = make_folds(y, "multiclass", 4, seed=5, repeats=3)
    assert fold_of.shape == (3, 60) and split_count(fold_of) == 12
    for ids in fold_of:
        assert sorted(set(ids.tolist())) == [0, 1, 2, 3]
        for k in range(4):  # stratified: 15 rows per fold, 5 of each class
            assert np.bincount(y[ids == k], minlength=3).tolist() == [5, 5, 5]
    assert not np.array_equal(fold_of[0], fold_of[1])
    # fold model r*K+k validates repeat r's fold k and trains on the rest of that repeat
    train, val = fold_indices(fold_of, 6)
    assert np.array_equal(val, np.flatnonzero(fold_of[1] == 2))
    assert np.array_equal(np.sort(np.r_[train, val]), np.arange(60))
    assert rows_of(fold_of, [6]).sum() == 15 and rows_of(fold_of, range(12)).all()
    # one repeat stays the plain split runs made before repeats used
    one = make_folds(y, "multiclass", 4, seed=5)
    ref = StratifiedKFold(4, shuffle=True, random_state=5).split(np.zeros(60), y)
    for k, (_, v) in enumerate(ref):
        assert (one[v] == k).all()


def test_repeat_mean_uses_the_repeats_that_predicted_a_row() -> None:
    oof = np.full((2, 3, 1), np.nan, np.float32)
    oof[0, :, 0] = [1, 2, 3]
    oof[1, :2, 0] = [3, 4]
    assert repeat_mean(oof)[:, 0].tolist() == [2, 3, 3]
    assert np.isnan(repeat_mean(np.full((2, 2, 1), np.nan))).all()


def _writer(store: RunStore, data: Dataset) -> StoreWriter:
    return StoreWriter(store, n_train=len(data.y_train), direction="minimize", retain=False)


@pytest.fixture(scope="module")
def regression():  # type: ignore[no-untyped-def]
    space = load_space(SPACES / "tiny_regression.py")
    data = Dataset.from_space(space, None)
    return space, data, make_folds(data.y_train, "regression", 2, seed=0, repeats=2)


def test_repeated_bagged_trial(tmp_path: Path, regression) -> None:  # type: ignore[no-untyped-def]
    space, data, fold_of = regression
    store = RunStore(tmp_path)
    store.save_array("folds.npy", fold_of)
    result = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=3,
                       sink=(writer := _writer(store, data)), seeds=2)
    writer.flush()
    record = store.read_trial(0)
    assert record.status == "complete" and record.n_folds == 4
    assert [f.fold for f in record.folds] == [0, 1, 2, 3]
    assert all(f.seeds == 2 and len(f.seed_best_epochs) == 2 for f in record.folds)
    per_repeat = store.load_oof_repeats(0)
    assert per_repeat.shape == (2, 64, 1) and np.isfinite(per_repeat).all()
    np.testing.assert_allclose(store.load_oof(0), per_repeat.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(result.oof, store.load_oof(0), rtol=1e-6)
    # the saved fold model is the bag: it predicts the fold's OOF rows (its seeds' mean)
    for f in record.folds:
        model = keras.models.load_model(store.trial_dir(0) / f"fold_{f.fold}.keras",
                                        compile=False, safe_mode=True)
        assert model.name == "seed_bag_2"
        pre = joblib.load(store.trial_dir(0) / f"fold_{f.fold}.pre.joblib")
        _, val = fold_indices(fold_of, f.fold)
        pred = model.predict(pre.transform(data.x_train[val]), verbose=0)
        np.testing.assert_allclose(pred, per_repeat[f.fold // 2, val], rtol=1e-4, atol=1e-5)
        y = data.y_train[val]
        assert f.score == pytest.approx(float(np.mean(np.abs(pred[:, 0] - y))), rel=1e-4)
    # two seeds are two different models: the bag differs from its first seed alone
    single = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=3)
    assert [f.seed for f in single.record.folds] == [f.seed for f in record.folds]
    assert not np.allclose(single.oof, result.oof)


def test_interrupted_repeated_trial_continues_to_the_same_result(
        tmp_path: Path, regression) -> None:  # type: ignore[no-untyped-def]
    """Folds one after another (``stack_folds=False``): a resumed trial's last fold trains
    alone, and on JAX the uninterrupted trial would have stacked it, whose batches are
    shuffled by the program's own generator, not Keras' (README, "fold stacking"): equal
    in meaning, not to the bit. What is tested here is the resume itself."""
    space, data, fold_of = regression
    whole = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=1, seed=3,
                      stack_folds=False)
    store = RunStore(tmp_path)
    store.save_array("folds.npy", fold_of)

    def stop(fold: int, mean: float) -> None:
        if fold == 2:  # after the first fold of the second repeat
            raise KeyboardInterrupt

    first = _writer(store, data)
    with pytest.raises(KeyboardInterrupt):
        run_trial(space, DefaultHP(), data, fold_of=fold_of, number=1, seed=3,
                  sink=first, report=stop, stack_folds=False)
    first.release_all()  # what the interrupted session does as it stops
    record = store.read_trial(1)
    assert record.status == "running" and [f.fold for f in record.folds] == [0, 1, 2]
    partial = store.load_oof_repeats(1)
    assert np.isfinite(partial[0]).all() and np.isnan(partial[1]).sum() == 32
    writer = _writer(store, data)  # a new session
    run_trial(space, DefaultHP(), data, fold_of=fold_of, number=1, seed=3, sink=writer,
              resume=record, stack_folds=False)
    writer.flush()
    done = store.read_trial(1)
    assert done.status == "complete" and len(done.folds) == 4
    np.testing.assert_allclose(store.load_oof(1), whole.oof, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([f.score for f in done.folds],
                               [f.score for f in whole.record.folds], rtol=1e-5)


def test_run_with_repeats_and_seeds(tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    space = spaces_dir / "tiny_multiclass.py"
    res = run_cli("run", space, "--trials", "2", "--folds", "2", "--repeats", "2",
                  "--seeds", "2", "--out", tmp_path, "--name", "rs", "--top", "2")
    assert res.returncode == 0, res.stderr
    run = tmp_path / "rs"
    store = RunStore(run)
    settings = store.read_run()["settings"]
    assert settings["repeats"] == 2 and settings["seeds"] == 2
    assert store.load_array("folds.npy").shape[0] == 2
    for t in store.trials():
        assert t.status == "complete" and t.n_folds == 4
        assert np.allclose(store.load_oof(t.number).sum(axis=1), 1, atol=1e-4)
    assert "final ensemble" in res.stdout
    check = run_cli("check", run)
    assert check.returncode == 0, check.stdout + check.stderr
    # the ensemble API serves the bagged fold members: it reproduces the stored test mean
    from search import load_experiment

    exp = load_experiment(run)
    x_test = Dataset.from_space(load_space(space), None).x_test
    for member, record in zip(exp.members(top=2), exp.ranked()[:2], strict=True):
        np.testing.assert_allclose(member.predict(x_test), store.load_test(record.number),
                                   rtol=1e-4, atol=1e-5)
    changed = run_cli("run", space, "--resume", run, "--repeats", "3", "--trials", "3")
    assert changed.returncode == 2 and "--repeats 3 differs" in changed.stderr
    bad = run_cli("run", space, "--repeats", "0", "--out", tmp_path)
    assert bad.returncode == 2 and "--repeats must be at least 1" in bad.stderr
