"""Tiny regression task for fold stacking: batch norm, dropout, early stopping, a metric, an
epoch's last batch shorter than the rest, and no shuffling, so a fold trained alone and the
same fold trained inside the stacked program see the same batches in the same order.

The dense layer before batch norm has no bias: batch norm removes it, so its gradient is
float rounding alone, and Adam (which normalises steps) turns rounding into random walks that
differ with the order of a sum, i.e. between any two programs."""

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 4


def load_data(data_dir=None):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(84, 5)).astype("float32")
    y = (x[:, 0] - 2 * x[:, 1] + 0.3 * rng.normal(size=84)).astype("float32")
    return (x[:64], y[:64]), (x[64:], y[64:])


def build(hp):
    model = keras.Sequential([
        keras.Input((5,)), keras.layers.Dense(16, use_bias=False),
        keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
        keras.layers.Dropout(0.2), keras.layers.Dense(1)])
    lr = hp.Float("lr", 1e-3, 1e12, default=0.05)  # 1e12: a loss that turns NaN
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=["mae"])
    return model


def fit_settings(hp):
    return {"epochs": hp.Int("epochs", 5, 40, default=30), "batch_size": 10, "shuffle": False,
            "early_stopping": hp.Int("patience", 0, 3, default=3)}
