"""Tiny regression task whose every point trains well and stacks (JAX): for the tests of
which fold models a run serialises (the keep bar)."""

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 4


def load_data(data_dir=None):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 4)).astype("float32")
    y = (x[:, 0] - x[:, 2] + 0.2 * rng.normal(size=100)).astype("float32")
    return (x[:80], y[:80]), (x[80:], y[80:])


def build(hp):
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(hp.Int("units", 4, 16, default=8),
                                                 activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 3e-2, sampling="log",
                                                           default=1e-2)), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 4, "batch_size": 16}
