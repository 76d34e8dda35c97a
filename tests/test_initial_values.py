"""Keras' initial values on JAX drawn by size class (search.initial_values): the same values
to the bit as Keras' own, no compilation for a new layer width, traced code untouched."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax",
                                reason="the size classes are for JAX (tests run on JAX)")

SHAPES = [(), (1,), (7,), (13, 64), (300, 301), (64, 1), (3, 3, 8, 16), (1025,), (4096,)]


@pytest.fixture(autouse=True)
def _installed() -> None:
    from search.initial_values import install

    assert install()


@contextlib.contextmanager
def _keras_own() -> Iterator[None]:
    """Keras' own functions back for the duration (what the values must equal)."""
    from keras.src.backend.jax import numpy as knp
    from keras.src.backend.jax import random as krandom

    names = [(krandom, "uniform"), (krandom, "normal"), (krandom, "truncated_normal"),
             (knp, "zeros"), (knp, "ones")]
    saved = [getattr(m, n) for m, n in names]
    for (m, n), f in zip(names, saved, strict=True):
        setattr(m, n, f.__wrapped__)
    try:
        yield
    finally:
        for (m, n), f in zip(names, saved, strict=True):
            setattr(m, n, f)


INITIALIZERS = [
    lambda: keras.initializers.GlorotUniform(seed=3),
    lambda: keras.initializers.GlorotNormal(seed=3),
    lambda: keras.initializers.HeNormal(seed=4),
    lambda: keras.initializers.HeUniform(seed=4),
    lambda: keras.initializers.LecunNormal(seed=5),
    lambda: keras.initializers.LecunUniform(seed=5),
    lambda: keras.initializers.RandomNormal(mean=0.3, stddev=2.0, seed=6),
    lambda: keras.initializers.RandomUniform(minval=-3.0, maxval=0.5, seed=7),
    lambda: keras.initializers.TruncatedNormal(mean=-1.0, stddev=0.1, seed=8),
    lambda: keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal", seed=9),
    lambda: keras.initializers.Zeros(),
    lambda: keras.initializers.Ones(),
    lambda: keras.initializers.Constant(0.25),
]


@pytest.mark.parametrize("make", INITIALIZERS)
def test_every_shape_gets_keras_own_values(make) -> None:
    for shape in SHAPES:
        for dtype in ("float32", "float16"):
            ours = np.asarray(make()(shape, dtype=dtype))
            with _keras_own():
                theirs = np.asarray(make()(shape, dtype=dtype))
            assert ours.shape == theirs.shape == shape and ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours, theirs)


def _net(width: int) -> keras.Model:
    model = keras.Sequential([
        keras.Input((13,)), keras.layers.Dense(width, activation="elu"),
        keras.layers.BatchNormalization(), keras.layers.Dropout(0.2),
        keras.layers.Dense(width + 16, kernel_initializer="he_normal"),
        keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _values(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(v.value) for v in [*model.variables, *model.optimizer.variables]]


def test_a_seeded_model_and_its_optimizer_start_from_keras_own_values() -> None:
    keras.utils.set_random_seed(11)
    ours = _values(_net(272))
    with _keras_own():
        keras.utils.set_random_seed(11)
        theirs = _values(_net(272))
    assert len(ours) == len(theirs) > 10
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_a_new_layer_width_compiles_nothing() -> None:
    keras.utils.set_random_seed(0)
    _net(272)  # the size classes' draws compiled once
    records: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    import jax

    handler = Catch(level=logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("jax._src.dispatch", "jax._src.interpreters.pxla",
                                              "jax._src.compiler")]
    for lg in loggers:
        lg.addHandler(handler)
    jax.config.update("jax_log_compiles", True)
    try:
        keras.utils.set_random_seed(1)
        _net(288)  # widths 288 and 304: shapes never built before, same size classes
    finally:
        jax.config.update("jax_log_compiles", False)
        for lg in loggers:
            lg.removeHandler(handler)
    compiled = [r.getMessage() for r in records if "ompil" in r.getMessage()]
    assert compiled == [], compiled[:5]
    with _keras_own():  # Keras' own functions do compile for the new shapes (the test can fail)
        jax.config.update("jax_log_compiles", True)
        for lg in loggers:
            lg.addHandler(handler)
        try:
            keras.utils.set_random_seed(1)
            _net(320)
        finally:
            jax.config.update("jax_log_compiles", False)
            for lg in loggers:
                lg.removeHandler(handler)
    assert any("ompil" in r.getMessage() for r in records)


def test_traced_code_runs_keras_own_functions() -> None:
    """Inside jit: a seeded random op and zeros are traced as before (the same numbers),
    and Keras still refuses an unseeded random op there."""
    import jax

    gen = keras.random.SeedGenerator(5)

    def f(x):
        return x + keras.random.normal((4, 3), seed=gen.state.value) + keras.ops.zeros((4, 3))

    ours = np.asarray(jax.jit(f)(np.ones((4, 3), "float32")))
    with _keras_own():
        theirs = np.asarray(jax.jit(f)(np.ones((4, 3), "float32")))
    np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="seeded random ops"):
        jax.jit(lambda x: x + keras.random.normal((2,)))(np.ones(2, "float32"))
