"""search.modelio.predict: small inputs by one eager call, larger ones by Model.predict —
the same numbers either way, binary 2-unit heads reduced to the positive column."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from search import modelio


def _model(units: int, activation: str | None = None) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.5),  # inactive when predicting
                              keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("rows", [1, 37, 300])
def test_eager_call_and_predict_agree(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(rows).normal(size=(rows, 6))  # float64: cast like predict
    model = _model(3)
    eager = modelio.predict(model, x)
    assert x.size <= modelio.EAGER_MAX_ELEMENTS
    monkeypatch.setattr(modelio, "EAGER_MAX_ELEMENTS", 0)  # force Model.predict
    batched = modelio.predict(model, x)
    assert eager.dtype == np.float32 and eager.shape == (rows, 3)
    np.testing.assert_allclose(eager, batched, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(eager, model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_binary_softmax_keeps_the_positive_column() -> None:
    x = np.random.default_rng(1).normal(size=(20, 6)).astype("float32")
    model = _model(2, "softmax")
    full = model.predict(x, verbose=0)
    np.testing.assert_allclose(modelio.predict(model, x, task="binary"), full[:, 1:],
                               rtol=1e-6)
