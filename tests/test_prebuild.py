"""search.reuse.prebuild builds a model's loss, metrics and optimizer from one row without
tracing the model (its symbolic output gives the prediction's shape): the same state as
Keras' own ``_symbolic_build``, and training after it gives the same numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

from search import reuse

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 6)).astype("float32")
Y_REG = X[:, :1] * 2.0 + 0.1
Y_CLS = (X[:, 0] > 0).astype("int64") + (X[:, 1] > 0)  # three classes, integer labels


def _regression() -> keras.Model:
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(), keras.layers.Activation("elu"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.Huber(2.0),
                  metrics=["mae", "mse"])
    return model


def _classifier() -> keras.Model:
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _built(make: Callable[[], keras.Model], how: str, y: np.ndarray) -> keras.Model:
    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    model = make()
    sample = (X[:1], y[:1])
    if how == "keras":
        model._symbolic_build(data_batch=sample)
    else:
        assert reuse._build_from_outputs(model, sample)
    return model


def _state(model: keras.Model) -> dict[str, Any]:
    return {"metrics": [m.name for m in model.metrics],
            "metric_vars": [(v.path, tuple(v.shape)) for v in model.metrics_variables],
            "optimizer": [(v.path, tuple(v.shape)) for v in model.optimizer.variables],
            "loss_built": model._compile_loss.built,
            "metrics_built": model._compile_metrics.built}


@pytest.mark.parametrize("make, y", [(_regression, Y_REG), (_classifier, Y_CLS)],
                         ids=["sequential-regression", "functional-classifier"])
def test_same_state_and_same_training_as_keras_own_build(make: Callable[[], keras.Model],
                                                         y: np.ndarray) -> None:
    runs = {}
    for how in ("keras", "ours"):
        model = _built(make, how, y)
        state = _state(model)
        keras.utils.set_random_seed(5)
        history = model.fit(X, y, epochs=2, batch_size=16, verbose=0).history
        runs[how] = (state, history, [np.asarray(w) for w in model.get_weights()],
                     {k: float(v) for k, v in model.get_metrics_result().items()})
    (s_k, h_k, w_k, m_k), (s_o, h_o, w_o, m_o) = runs["keras"], runs["ours"]
    assert s_o == s_k
    assert s_o["loss_built"] and s_o["metrics_built"] and s_o["optimizer"]
    assert h_o == h_k and m_o == m_k
    for a, b in zip(w_k, w_o, strict=True):
        np.testing.assert_array_equal(a, b)


class _Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, x: Any) -> Any:
        return self.dense(x)


def _two_outputs() -> keras.Model:
    inputs = keras.Input((6,))
    model = keras.Model(inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(1)(inputs)])
    model.compile(optimizer="adam", loss=["mse", "mse"])
    return model


def test_models_without_one_symbolic_output_are_left_to_keras() -> None:
    sub = _Subclassed()
    sub.compile(optimizer="adam", loss="mse")
    assert not reuse._build_from_outputs(sub, (X[:1], Y_REG[:1]))  # not built, no outputs
    assert not sub.optimizer.built  # nothing was done
    two = _two_outputs()
    assert not reuse._build_from_outputs(two, (X[:1], Y_REG[:1]))
    assert not two.optimizer.built and not two._compile_loss.built
    assert reuse.prebuild(two, (X[:1], (Y_REG[:1], Y_REG[:1])))  # Keras' own build does it
    assert two.optimizer.built and two._compile_loss.built


def test_a_failure_of_the_shortcut_falls_back_to_keras_build(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """prebuild never raises: what the shortcut could not build, Keras' own build does."""
    def broken(model: Any, sample: Any) -> bool:
        raise ValueError("a metric that cannot be built from shapes")

    monkeypatch.setattr(reuse, "_build_from_outputs", broken)
    model = _regression()
    assert reuse.prebuild(model, (X[:1], Y_REG[:1]))
    assert model.optimizer.built and model._compile_loss.built
