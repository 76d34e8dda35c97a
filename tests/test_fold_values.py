"""Every fold's initial values from one taped build (search.fold_values): the same values to
the bit as building each fold's model with its own seed, for every book space at its
default point and at random points; builds the tape cannot vouch for are not taped."""

from __future__ import annotations

import random
from pathlib import Path

import keras
import numpy as np
import pytest

from search import fold_values
from search.hp import DefaultHP, HyperParameters, ParamSpec, Value
from search.space import load_space
from search.tf_setup import set_random_seed

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="taped folds serve fold stacking, which is JAX's")

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent / "spaces"
SEEDS = [11, 2024, 7, 123456789]
# VGG16's space loads ImageNet weights, which are not on this machine
BOOK = sorted(p for p in (ROOT / "spaces").glob("*.py") if "vgg16" not in p.name)


class RandomHP(HyperParameters):
    """A random point of the space (its own generator: nothing global is drawn)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)

    def _value(self, spec: ParamSpec) -> Value:
        if spec.values:
            return self.rng.choice(spec.values)
        assert spec.low is not None and spec.high is not None
        if spec.kind == "Int":
            step = int(spec.step or 1)
            return int(spec.low) + step * self.rng.randrange(
                (int(spec.high) - int(spec.low)) // step + 1)
        return spec.low + (spec.high - spec.low) * self.rng.random()


def _built_values(space, hp_factory, seed: int):  # type: ignore[no-untyped-def]
    keras.backend.clear_session()
    set_random_seed(seed)
    model = space.build(hp_factory())
    return model, ([np.asarray(v.value) for v in model.trainable_variables],
                   [np.asarray(v.value) for v in model.non_trainable_variables])


def _taped(space, hp_factory, seed: int):  # type: ignore[no-untyped-def]
    keras.backend.clear_session()
    set_random_seed(seed)
    with fold_values.recording():
        model = space.build(hp_factory())
    return model, fold_values.record(model, seed)


def _assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert len(a[0]) == len(b[0]) and len(a[1]) == len(b[1])
    for x, y in zip([*a[0], *a[1]], [*b[0], *b[1]], strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("point", ["default", 1, 2, 3])
@pytest.mark.parametrize("path", BOOK, ids=lambda p: p.stem)
def test_taped_values_are_each_folds_own_build(path: Path, point: object) -> None:
    space = load_space(path)

    def hp() -> HyperParameters:
        return DefaultHP() if point == "default" else RandomHP(int(point))  # type: ignore[arg-type]

    _, tape = _taped(space, hp, SEEDS[0])
    assert tape is not None, f"{path.name} at {point}: not taped"
    seeded = 0
    for seed in SEEDS:
        _, built = _built_values(space, hp, seed)
        _assert_same(tape.values(seed), built)
        seeded += sum(r.kind != "copy" for r in (*tape.trainable, *tape.non_trainable))
    assert seeded > 0, "nothing random in the model: the test would show nothing"


def test_dropout_seed_states_differ_per_fold_as_built() -> None:
    def build() -> keras.Model:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                                  keras.layers.Dropout(0.3), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        return model

    space = _space(build)
    _, tape = _taped(space, lambda: None, 5)
    assert tape is not None
    assert [r.kind for r in tape.non_trainable] == ["seed"]
    states = {tuple(tape.values(s)[1][0]) for s in (5, 6, 7)}
    assert len(states) == 3
    for s in (5, 6):
        _assert_same(tape.values(s), _built_values(space, lambda: None, s)[1])


def _space(build):  # type: ignore[no-untyped-def]
    return type("S", (), {"build": staticmethod(lambda hp: build())})()


def _net(**dense: object) -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, **dense),
                              keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_what_a_tape_cannot_vouch_for_is_not_taped() -> None:
    """Randomness outside Keras' seed draws, values that are not their initializer's, and
    initializers of the space's own: no tape (the trial then builds every fold)."""

    def numpy_random() -> keras.Model:
        model = _net()
        model.layers[0].kernel.assign(np.random.normal(size=(3, 4)).astype("float32"))
        return model

    def python_random() -> keras.Model:
        random.random()
        return _net()

    def assigned() -> keras.Model:
        model = _net()
        model.layers[0].kernel.assign(model.layers[0].kernel * 2.0)
        return model

    def unseeded_keras_random() -> keras.Model:
        model = _net()
        model.layers[0].bias.assign(keras.random.normal((4,)))
        return model

    class Own(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):  # type: ignore[no-untyped-def]
            return keras.ops.ones(shape, dtype=dtype)

    for build in (numpy_random, python_random, assigned, unseeded_keras_random,
                  lambda: _net(kernel_initializer=Own())):
        _, tape = _taped(_space(build), lambda: None, 3)
        assert tape is None, build

    # the plain net is taped, and a space's own seed gives the same values in every fold
    _, tape = _taped(_space(lambda: _net(kernel_initializer=keras.initializers.HeNormal(
        seed=42))), lambda: None, 3)
    assert tape is not None
    assert tape.trainable[0].kind == "copy"
    np.testing.assert_array_equal(tape.values(3)[0][0], tape.values(4)[0][0])
    assert not np.array_equal(tape.values(3)[0][2], tape.values(4)[0][2])


def test_tape_does_not_keep_initializers_on_the_model() -> None:
    model, tape = _taped(_space(lambda: _net()), lambda: None, 1)
    assert tape is not None
    assert not any(hasattr(v, "_search_initializer") for v in model.variables)
    # outside recording nothing is remembered
    set_random_seed(1)
    model = _net()
    assert not any(hasattr(v, "_search_initializer") for v in model.variables)


def test_a_stacked_trial_builds_one_model(tmp_path: Path) -> None:
    """The trial builds its first fold's model only; its folds' predictions are those of
    building each fold (the stacked-vs-alone test in test_stacking compares the rest)."""
    from search.folds import make_folds
    from search.trial import Dataset, run_trial

    space = load_space(TESTS / "stack_equal.py")
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, space.task, 4, seed=0)
    builds = []
    real = space.module.build

    def counting(hp):  # type: ignore[no-untyped-def]
        builds.append(1)
        return real(hp)

    space.module.build = counting
    try:
        result = run_trial(space, DefaultHP(), data, fold_of=fold_of, number=1, seed=3)
    finally:
        space.module.build = real
    assert [f.stacked for f in result.record.folds] == [True] * 4
    assert len(builds) == 1
