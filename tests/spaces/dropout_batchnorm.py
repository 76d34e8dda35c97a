"""Tiny 3-class task with dropout, batch norm and a searched early-stopping patience: every
kind of state a fold model carries (weights, moving statistics, dropout seed state,
optimizer slots)."""

import keras
import numpy as np

TASK = "multiclass"
METRIC = "accuracy"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return (x[:72], y[:72]), (x[72:], y[72:])


def build(hp):
    model = keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(hp.Int("units", 8, 16, step=8, default=16)),
        keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
        keras.layers.Dropout(0.3), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, default=0.02)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {"epochs": 6, "batch_size": 16, "early_stopping": hp.Int("patience", 0, 2, default=2)}
