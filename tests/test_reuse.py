"""Later fold models train on the trial's first model's traced program (search.reuse):
the same numbers as training each fold model alone, with every kind of model state."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from search.folds import make_folds
from search.hp import DefaultHP
from search.reuse import ModelReuse
from search.space import load_space
from search.trial import Dataset, run_trial

SPACES = Path(__file__).parent / "spaces"
pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="model reuse is JAX-only (tests run on JAX)")


@pytest.mark.parametrize("space_file, seeds", [("dropout_batchnorm.py", 2),
                                               ("tiny_regression.py", 1)])
def test_reuse_trains_to_the_same_numbers(space_file: str, seeds: int) -> None:
    space = load_space(SPACES / space_file)
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, space.task, 2, seed=0, repeats=2)
    runs = [run_trial(space, DefaultHP(), data, fold_of=fold_of, number=3, seed=1,
                      seeds=seeds, reuse_models=reuse, stack_folds=False)
            for reuse in (False, True)]
    alone, reused = runs
    np.testing.assert_array_equal(alone.oof, reused.oof)
    np.testing.assert_array_equal(alone.test_pred, reused.test_pred)
    for a, b in zip(alone.record.folds, reused.record.folds, strict=True):
        assert a.history == b.history and a.best_epoch == b.best_epoch


def _model(seed: int, units: int = 4) -> keras.Model:
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units),
                              keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse")
    return model


def test_host_keeps_its_own_state_and_mismatches_train_alone() -> None:
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x.sum(axis=1)
    sample = (x[:1], y[:1])
    reuse = ModelReuse()
    first = _model(1)
    assert reuse.host_for(first, sample) is first
    first.fit(x, y, epochs=1, verbose=0)
    reuse.give_back(first, first)
    trained_first = [w.copy() for w in first.get_weights()]
    second = _model(2)
    initial_second = [w.copy() for w in second.get_weights()]
    host = reuse.host_for(second, sample)
    assert host is first and reuse.reused == 1
    for got, want in zip(host.get_weights(), initial_second, strict=True):
        np.testing.assert_array_equal(got, want)  # the host starts from the second's state
    host.fit(x, y, epochs=1, verbose=0)
    reuse.give_back(host, second)
    for got, want in zip(first.get_weights(), trained_first, strict=True):
        np.testing.assert_array_equal(got, want)  # and gets its own back
    assert not all(np.array_equal(a, b) for a, b in zip(second.get_weights(), initial_second,
                                                         strict=True))
    other = _model(3, units=8)  # another architecture: trains alone
    assert reuse.host_for(other, sample) is other and reuse.reused == 1
    # a failed fit puts the host's state back and leaves the model as it was
    third = _model(4, units=8)
    host = reuse.host_for(third, sample)
    assert host is other
    before = [w.copy() for w in third.get_weights()]
    reuse.give_back(host, third, ok=False)
    for got, want in zip(third.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)
