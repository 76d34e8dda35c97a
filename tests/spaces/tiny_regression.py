"""Tiny generated regression task for tests: y = a linear function of x plus noise."""

import keras
import numpy as np
from sklearn.preprocessing import StandardScaler

TASK = "regression"
METRIC = "mae"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5)).astype("float32") * 10 + 3
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0, 1.5]) / 10 + rng.normal(scale=0.1, size=96))
    y = y.astype("float32")
    return (x[:64], y[:64]), (x[64:], y[64:])


def preprocessor(hp):
    return StandardScaler()


def build(hp):
    model = keras.Sequential([keras.Input((5,))])
    for i in range(hp.Int("layers", 1, 2, default=1)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 4, 16, step=4, default=8),
                                     activation=hp.Choice("activation", ["relu", "tanh"])))
    model.add(keras.layers.Dense(1))
    lr = hp.Float("lr", 1e-3, 1e-1, sampling="log", default=1e-2)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=["mae"])
    return model


def fit_settings(hp):
    return {"epochs": hp.Int("epochs", 1, 2, default=2), "batch_size": 16}
