"""Generated regression task whose ``mode`` parameter makes trials fail on purpose (tests).

``mode="ok"`` trains normally, ``"nan"`` drives the loss to NaN with a huge learning rate on
exploding targets, ``"boom"`` raises inside ``build`` like a buggy space would.
"""

import keras
import numpy as np

TASK = "regression"
METRIC = "mse"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(48, 3)).astype("float32")
    y = x.sum(axis=1).astype("float32")
    return (x[:32], y[:32]), (x[32:], y[32:])


def build(hp):
    mode = hp.Choice("mode", ["ok", "nan", "boom"])
    if mode == "boom":
        raise RuntimeError("boom: this space is broken for mode=boom")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    lr = 1e30 if mode == "nan" else 1e-2
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 2, "batch_size": 8}
