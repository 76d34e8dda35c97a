"""Generated regression task whose trials take a few seconds whatever the machine (tests).

Each epoch ends with a one-second pause, so a trial lasts at least 4 s (2 folds × 2 epochs):
long enough that trials meant to run at the same time visibly overlap.
"""

import time

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


class _Pause(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(1.0)


def load_data(data_dir=None):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 3)).astype("float32")
    y = x.sum(axis=1).astype("float32")
    return (x[:20], y[:20]), (x[20:], y[20:])


def build(hp):
    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(hp.Int("units", 2, 8, step=2, default=4)),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 2, "batch_size": 8, "callbacks": [_Pause()]}
