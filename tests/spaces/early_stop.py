"""Tiny regression task whose validation loss stops improving early: a noise target, a
high learning rate and many epochs, with early stopping as a searched patience."""

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 4)).astype("float32")
    y = rng.normal(size=80).astype("float32")  # nothing to learn: validation loss wanders
    return (x[:64], y[:64]), (x[64:], y[64:])


def build(hp):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 60, "batch_size": 16,
            "early_stopping": hp.Int("patience", 0, 3, default=2)}
