"""A trial's folds trained as one vectorised program (search.stacking): the same models as
training each fold alone, each on its own rows only, with Keras' early stopping per fold."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from search import stacking
from search.errors import TrialFailed, TrialPruned
from search.folds import make_folds
from search.hp import DefaultHP, FixedHP
from search.space import load_space
from search.trial import Dataset, run_trial

SPACES = Path(__file__).parent / "spaces"
pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="fold stacking is JAX's vmap (tests run on JAX)")


def _trial(space_file: str, *, stack: bool, params: dict | None = None, folds: int = 4,
           **kwargs: object):
    space = load_space(SPACES / space_file)
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, space.task, folds, seed=0)
    hp = FixedHP(params) if params else DefaultHP()
    return run_trial(space, hp, data, fold_of=fold_of, number=2, seed=7, stack_folds=stack,
                     **kwargs)


def test_stacked_folds_train_the_same_models_as_folds_alone() -> None:
    """Unshuffled batches: each fold model (batch norm, dropout, Adam, early stopping
    restoring its best epoch) ends with the same predictions as when it trains alone."""
    alone = _trial("stack_equal.py", stack=False)
    stacked = _trial("stack_equal.py", stack=True)
    assert [f.stacked for f in stacked.record.folds] == [True] * 4
    assert [f.stacked for f in alone.record.folds] == [False] * 4
    np.testing.assert_allclose(stacked.oof, alone.oof, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stacked.test_pred, alone.test_pred, rtol=1e-4, atol=1e-4)
    stopped = 0
    for a, s in zip(alone.record.folds, stacked.record.folds, strict=True):
        assert (s.epochs_run, s.best_epoch) == (a.epochs_run, a.best_epoch)
        stopped += a.epochs_run < 30
        assert set(s.history) == set(a.history) == {"loss", "val_loss"}
        for key in a.history:
            np.testing.assert_allclose(s.history[key], a.history[key], rtol=1e-4, atol=1e-5)
        assert s.score == pytest.approx(a.score, rel=1e-4)
    assert stopped >= 1, "no fold stopped early: the test would not cover early stopping"


def test_each_fold_trains_on_its_own_rows_only() -> None:
    """Two folds of unequal size, one with NaN training rows: only that fold's loss turns
    NaN (it is frozen there); the other trains as it would alone."""
    rng = np.random.default_rng(0)
    x0, x1 = rng.normal(size=(37, 3)).astype("float32"), rng.normal(size=(36, 3))
    x1 = x1.astype("float32")
    x1[5] = np.nan
    y0, y1 = x0.sum(axis=1), np.nan_to_num(x1).sum(axis=1)
    xv = rng.normal(size=(12, 3)).astype("float32")

    def model(seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)])
        m.compile(optimizer="adam", loss="mse")
        return m

    models = [model(1), model(2)]
    models[0]._symbolic_build(data_batch=(x0[:1], y0[:1]))
    alone = model(1)
    keras.utils.set_random_seed(1)
    history = alone.fit(x0, y0, batch_size=8, epochs=3, shuffle=False, verbose=0,
                        validation_data=(xv, xv.sum(axis=1))).history
    outcomes = stacking.train_stacked(models, fit_x=[x0, x1], fit_y=[y0, y1],
                                      x_val=[xv, xv[:11]], y_val=[xv.sum(1), xv[:11].sum(1)],
                                      seeds=[0, 1], epochs=3, batch_size=8, shuffle=False)
    assert outcomes[1].nan_epoch == 1 and len(outcomes[1].history["loss"]) == 1
    assert outcomes[0].nan_epoch is None
    np.testing.assert_allclose(outcomes[0].history["loss"], history["loss"], rtol=1e-5)
    np.testing.assert_allclose(outcomes[0].history["val_loss"], history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(models[0].predict(xv, verbose=0), alone.predict(xv, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_a_shorter_folds_validation_loss_is_over_its_own_rows() -> None:
    """Validation rows padded for the shorter fold count for nothing in its val_loss."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 2)).astype("float32")
    xv = rng.normal(size=(9, 2)).astype("float32")

    def model() -> keras.Model:
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        m.compile(optimizer="sgd", loss="mse")
        return m

    models = [model(), model()]
    models[0]._symbolic_build(data_batch=(x[:1], x[:1, 0]))
    out = stacking.train_stacked(models, fit_x=[x, x], fit_y=[x[:, 0], x[:, 0]],
                                 x_val=[xv, xv[:5]], y_val=[xv[:, 0], xv[:5, 0]], seeds=[0, 0],
                                 epochs=1, batch_size=16, shuffle=False)
    pred = models[1].predict(xv[:5], verbose=0).ravel()
    assert out[1].history["val_loss"][0] == pytest.approx(
        float(np.mean((pred - xv[:5, 0]) ** 2)), rel=1e-5)


def test_what_cannot_be_stacked_trains_alone() -> None:
    """The space's own callbacks and seed bagging keep the folds one after another."""
    class Noop(keras.callbacks.Callback):
        pass

    space = load_space(SPACES / "stack_equal.py")
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, space.task, 4, seed=0)
    settings = space.fit_settings
    space.fit_settings = lambda hp: {**settings(hp), "callbacks": [Noop()]}  # type: ignore
    try:
        r = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=0, seed=0)
    finally:
        space.fit_settings = settings  # type: ignore
    assert not any(f.stacked for f in r.record.folds)
    assert "callbacks" in (stacking.last_blocker or "")
    bagged = _trial("stack_equal.py", stack=True, seeds=2)
    assert not any(f.stacked for f in bagged.record.folds)


def test_a_later_trial_trains_on_the_program_traced_before_with_its_own_values() -> None:
    """Trials that differ only in the learning rate (a variable) share one traced program;
    the second trains to the same numbers as on a program traced for itself."""
    stacking.clear_programs()
    first = _trial("stack_equal.py", stack=True, params={"lr": 0.05, "epochs": 8, "patience": 2})
    before = stacking.programs_reused
    shared = _trial("stack_equal.py", stack=True, params={"lr": 0.01, "epochs": 8,
                                                          "patience": 2})
    assert stacking.programs_reused == before + 1
    stacking.clear_programs()
    own = _trial("stack_equal.py", stack=True, params={"lr": 0.01, "epochs": 8, "patience": 2})
    assert stacking.programs_reused == before + 1
    np.testing.assert_allclose(shared.oof, own.oof, rtol=1e-6, atol=1e-6)
    for a, b in zip(shared.record.folds, own.record.folds, strict=True):
        assert a.history.keys() == b.history.keys() and a.epochs_run == b.epochs_run
        for key in a.history:
            np.testing.assert_allclose(a.history[key], b.history[key], rtol=1e-6)
    assert not np.allclose(first.oof, shared.oof, atol=1e-3)  # the learning rate mattered


def test_only_programs_used_again_stay_beyond_the_last_two() -> None:
    """A program waits among the last two traced; one that a later trial uses stays (up to
    eight), one that no trial used again goes: a search over architectures keeps two."""
    stacking.clear_programs()
    params = {"epochs": 5, "patience": 0}
    for folds in (2, 3, 4):  # K is part of the program
        _trial("stack_equal.py", stack=True, params=params, folds=folds)
    assert len(stacking._NEW_PROGRAMS) == 2 and not stacking._PROGRAMS
    before = stacking.programs_reused
    _trial("stack_equal.py", stack=True, params=params, folds=3)  # waiting: used, kept
    assert stacking.programs_reused == before + 1
    assert len(stacking._PROGRAMS) == 1 and len(stacking._NEW_PROGRAMS) == 1
    _trial("stack_equal.py", stack=True, params=params, folds=2)  # gone: traced again
    assert stacking.programs_reused == before + 1
    _trial("stack_equal.py", stack=True, params=params, folds=3)  # kept
    assert stacking.programs_reused == before + 2
    assert len(stacking._PROGRAMS) == 1 and len(stacking._NEW_PROGRAMS) == 2
    stacking.clear_programs()


def test_only_what_a_config_shows_shares_a_program() -> None:
    def model(rate: float, loss: object = "mse") -> keras.Model:
        keras.backend.clear_session()
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.Dropout(rate), keras.layers.Dense(1)])
        m.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
        m.optimizer.build(m.trainable_variables)
        return m

    def scaled_mse(y, p):  # a space's own function: its config is only its name
        return keras.ops.mean(keras.ops.square(y - p) * 2.0)

    assert stacking.program_key(model(0.1)) == stacking.program_key(model(0.1))
    assert stacking.program_key(model(0.1)) != stacking.program_key(model(0.2))
    assert stacking.program_key(model(0.1, scaled_mse)) is None


def test_pruning_and_failures_act_fold_by_fold() -> None:
    """A stacked trial is still pruned after a fold (its later folds are not recorded), and
    a diverging one fails naming its first NaN fold."""
    reports = []

    def prune(fold: int, mean: float) -> None:
        reports.append(fold)
        raise TrialPruned()

    with pytest.raises(TrialPruned):
        _trial("stack_equal.py", stack=True, report=prune, sink=(sink := _Sink()))
    assert reports == [0]
    assert sink.final.status == "pruned" and len(sink.final.folds) == 1
    assert sink.final.folds[0].stacked and len(sink.folds) == 1
    with pytest.raises(TrialFailed, match=r"NaN/inf in epoch \d+ of fold 0"):
        _trial("stack_equal.py", stack=True, params={"lr": 1e12, "epochs": 5, "patience": 0})


class _Sink:
    def __init__(self) -> None:
        self.folds: list = []
        self.final = None

    def started(self, record) -> None:
        pass

    def fold(self, result) -> None:
        self.folds.append(result)

    def finished(self, record) -> None:
        self.final = record


def test_a_trial_below_the_keep_bar_ships_no_fold_models(tmp_path: Path) -> None:
    """Stacked folds are scored before any is handed over: a trial worse than the bar the
    driver gave (it would lose its models to retention at its end) sends no model bytes;
    one at least as good sends every fold's, and their models predict what the program
    predicted for the fold's validation rows (the OOF the trial stored)."""
    worse, better = _Sink(), _Sink()
    _trial("stack_equal.py", stack=True, sink=worse, keep_bar=1e-6)  # MAE: cannot reach
    assert [f.record.folds[-1].stacked for f in worse.folds] == [True] * 4
    assert all(f.model is None and f.preprocessor is None for f in worse.folds)
    assert worse.final.models_kept is False
    result = _trial("stack_equal.py", stack=True, sink=better, keep_bar=1e6)
    assert all(f.model is not None for f in better.folds)
    assert better.final.models_kept is True
    data = Dataset.from_space(load_space(SPACES / "stack_equal.py"), None)
    for f in better.folds:  # the space has no preprocessor: rows go in as they are
        path = tmp_path / f"fold_{f.fold}.keras"
        path.write_bytes(f.model)
        saved = keras.models.load_model(path)
        np.testing.assert_allclose(f.oof, saved.predict(data.x_train[f.rows], verbose=0),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(result.oof[f.rows], f.oof)


def test_a_run_keeps_the_same_fold_models_as_saving_every_trials(tmp_path: Path) -> None:
    """End to end (the driver's writer sets each trial's bar): with --keep-models 2 the
    run keeps the models of exactly its best 2 trials, and later trials below the bar were
    never serialised (fewer .keras files made than folds run)."""
    import search.trial as trial_module
    from search.runner import RunSettings, start_run

    made = []
    real = trial_module.model_bytes

    def counting(model):  # the real serialiser, counted
        made.append(1)
        return real(model)

    trial_module.model_bytes = counting
    try:
        store = start_run(SPACES / "stack_keep.py", RunSettings(
            trials=8, seed=0, threads=1, keep_models=2, options={"sampler": "random"}),
            out=tmp_path, name="bar")
    finally:
        trial_module.model_bytes = real
    trials = store.trials()
    ranked = store.ranked("minimize", trials)
    kept = sorted(t.number for t in trials if t.models_kept)
    assert kept == sorted(t.number for t in ranked[:2])
    for number in kept:
        assert len(store.model_paths(number)) == 4
    folds_run = sum(len(t.folds) for t in trials)
    assert all(f.stacked for t in trials for f in t.folds)
    assert len(made) < folds_run

