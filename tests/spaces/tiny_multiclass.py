"""Tiny generated 3-class task for tests: Gaussian blobs."""

import keras
import numpy as np

TASK = "multiclass"
METRIC = "accuracy"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(1)
    y = np.arange(90) % 3
    x = rng.normal(size=(90, 4)).astype("float32") + y[:, None] * 1.5
    return (x[:60], y[:60]), (x[60:], y[60:])


def build(hp):
    model = keras.Sequential([keras.Input((4,))])
    if hp.Boolean("hidden", default=True):
        model.add(keras.layers.Dense(hp.Choice("units", [8, 16]), activation="relu"))
        if hp.Boolean("batchnorm"):
            model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.Dense(3, activation="softmax"))
    model.compile(optimizer=hp.Choice("optimizer", ["rmsprop", "adam"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": hp.Choice("batch_size", [16, 32])}
