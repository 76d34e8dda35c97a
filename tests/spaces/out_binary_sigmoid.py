"""Binary task with a 1-unit sigmoid head (tests): accepted, as it always was."""

import keras
import numpy as np

TASK = "binary"
METRIC = "auc"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(3)
    y = (np.arange(64) % 2).astype(np.int64)
    x = rng.normal(size=(64, 4)).astype("float32") + y[:, None] * 1.5
    return (x[:48], y[:48]), (x[48:], y[48:])


def build(hp):
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(hp.Int("units", 2, 8, step=2, default=4),
                                                 activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": 16}
