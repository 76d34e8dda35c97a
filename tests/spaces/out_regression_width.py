"""Regression on a 1-column target with a 2-unit output (tests): must exit 2."""

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (x.sum(axis=1) + rng.normal(scale=0.1, size=40)).astype("float32")
    return (x[:30], y[:30]), (x[30:], y[30:])


def build(hp):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="wide_head")])
    model.compile(optimizer="adam", loss="mse")
    return model
