"""Generated regression task for the backend contract suite.

``bad=True`` builds a model whose output is scaled up 1000x (a trial built to be bad: its
first fold scores far worse than any other, so a pruner stops it); ``boom=True`` raises in
``build`` like a broken space (the trial fails, the search goes on).
"""

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(60, 4)).astype("float32")
    y = (x @ np.array([1.0, -1.0, 0.5, 0.25])).astype("float32")
    return (x[:40], y[:40]), (x[40:], y[40:])


def build(hp):
    if hp.Boolean("boom", default=False):
        raise RuntimeError("boom: this space is broken for boom=True")
    units = hp.Int("units", 2, 8, step=2, default=4)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(1)])
    if hp.Boolean("bad", default=False):
        model.add(keras.layers.Rescaling(1000.0, offset=500.0))
    lr = hp.Float("lr", 1e-3, 1e-1, sampling="log", default=1e-2)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": 16}
