"""3 classes built with 1 output unit (tests): the output check must stop it before trial 0.

Without the check every trial fails inside TensorFlow ("Graph execution error") and the
run exits 0.
"""

import keras
import numpy as np

TASK = "multiclass"
METRIC = "accuracy"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(1)
    y = np.arange(60) % 3
    x = rng.normal(size=(60, 4)).astype("float32") + y[:, None]
    return (x[:42], y[:42]), (x[42:], y[42:])


def build(hp):
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(hp.Int("units", 4, 8, default=4),
                                                 activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid", name="head")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": 16}
