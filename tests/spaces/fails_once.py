"""Generated regression task whose ``units=6`` trials fail once, then work (a flaky trial).

The first build with ``units=6`` creates the marker file named by ``SEARCH_FLAKY_MARKER``
and raises; every later build works. Keras Tuner's ``max_retries_per_trial`` re-runs it.
"""

import os
from pathlib import Path

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 3)).astype("float32")
    y = (x @ np.array([1.0, 0.5, -1.0])).astype("float32")
    return (x[:40], y[:40]), (x[40:], y[40:])


def build(hp):
    units = hp.Int("units", 2, 8, step=2, default=4)
    marker = Path(os.environ.get("SEARCH_FLAKY_MARKER", "flaky.marker"))
    if units == 6 and not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("flaky: the first units=6 build fails")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": 16}
