"""Generated regression task whose refit on all training rows is sabotaged (tests).

A callback recognises full-data training by its number of steps per epoch (the folds see
half the rows) and then overwrites the weights after every batch, so the refit's training
loss ends far above the fold models' while staying finite: what the divergence guard is for.
"""

import math

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2
N_TRAIN, BATCH = 64, 16


class SabotageFullData(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.params["steps"] == math.ceil(N_TRAIN / BATCH):
            for w in self.model.weights:
                w.assign(np.full(w.shape, 3.0, dtype="float32"))


def load_data(data_dir=None):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N_TRAIN + 16, 3)).astype("float32")
    y = (x @ np.array([1.0, 2.0, -1.0])).astype("float32")
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def build(hp):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(hp.Int("units", 4, 8)),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 3, "batch_size": BATCH, "callbacks": [SabotageFullData()]}
