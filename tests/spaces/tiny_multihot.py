"""Tiny generated binary task with uint8 multi-hot inputs, shaped like IMDB (tests)."""

import keras
import numpy as np

TASK = "binary"
METRIC = "accuracy"
FOLDS = 2
WORDS = 50


def load_data(data_dir=None):
    rng = np.random.default_rng(2)
    y = (np.arange(120) % 2).astype(np.int64)
    x = (rng.random((120, WORDS)) < 0.1).astype(np.uint8)
    x[y == 1, :5] = 1  # words 0-4 mark positive reviews
    return (x[:80], y[:80]), (x[80:], y[80:])


def build(hp):
    model = keras.Sequential([keras.Input((WORDS,)),
                              keras.layers.Dense(hp.Int("units", 4, 16, default=8),
                                                 activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {"epochs": 3, "batch_size": 16}
