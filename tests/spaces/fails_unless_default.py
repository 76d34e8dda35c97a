"""Generated regression task whose every trial but the default point fails (tests).

``lr`` other than its default raises in ``build``; ``SEARCH_FAIL_ALL=1`` makes every fit
raise, the default point's included (a run that achieves nothing).
"""

import os

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


class _Fail(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        if os.environ.get("SEARCH_FAIL_ALL") == "1":
            raise RuntimeError("every fit fails in this drill (SEARCH_FAIL_ALL=1)")


def load_data(data_dir=None):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 2)).astype("float32")
    y = x.sum(axis=1).astype("float32")
    return (x[:30], y[:30]), (x[30:], y[30:])


def build(hp):
    lr = hp.Float("lr", 1e-3, 1e-1, sampling="log", default=1e-2)
    if lr != 1e-2:
        raise RuntimeError(f"broken unless lr=0.01 (lr={lr:.4g})")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": 16, "callbacks": [_Fail()]}
