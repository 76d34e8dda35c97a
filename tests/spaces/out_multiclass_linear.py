"""3 classes with a 1-unit linear output trained as regression (tests): must exit 2.

Without the check it "completes" with accuracy near 0.33 (argmax of one column is 0).
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
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": 16}
