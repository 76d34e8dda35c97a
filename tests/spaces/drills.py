"""Generated regression task for the failure drills (tests/test_drills.py).

``mode``: ``"ok"`` trains normally; ``"nan"`` drives the loss to NaN at once (a huge SGD
learning rate) with 20 epochs asked for, so a fit that does not stop at the first NaN shows
in the epoch counter; ``"oom_once"`` runs out of memory at batch size 16 (not at 8: the
retry with half the batch succeeds); ``"oom_always"`` runs out of memory at any batch size
(simulated with MemoryError: a real one needs a real memory limit); ``"graph"`` trains a
3-output softmax on labels up to 5, a TensorFlow graph error whose root cause is the
label message. ``SEARCH_EPOCH_LOG``: a file that gets one line per epoch begun.
``SEARCH_PAUSE``: seconds to pause after each epoch (so kill drills can land mid-trial).
"""

import os
import time

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


class _Drill(keras.callbacks.Callback):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def on_train_begin(self, logs=None):
        steps = self.params.get("steps") or 0
        if self.mode == "oom_always" or (self.mode == "oom_once" and steps < 3):
            raise MemoryError(f"simulated: OOM when allocating a tensor ({steps} steps)")

    def on_epoch_begin(self, epoch, logs=None):
        log = os.environ.get("SEARCH_EPOCH_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write(f"{self.mode} {epoch}\n")

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("SEARCH_PAUSE", "0")))


def load_data(data_dir=None):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 3)).astype("float32")
    y = x.sum(axis=1).astype("float32")
    return (x[:40], y[:40]), (x[40:], y[40:])


def build(hp):
    mode = hp.Choice("mode", ["ok", "nan", "oom_once", "oom_always", "graph"])
    units = hp.Int("units", 2, 8, step=2, default=4)
    out = 3 if mode == "graph" else 1
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units),
                              keras.layers.Dense(out)])
    if mode == "graph":  # int labels 0..5 against 3 logits: TensorFlow's label-range error
        model.compile(optimizer="adam",
                      loss=lambda y, p: keras.losses.sparse_categorical_crossentropy(
                          keras.ops.cast(keras.ops.abs(y) * 2, "int32"), p, from_logits=True))
    else:
        lr = 1e30 if mode == "nan" else 1e-2
        model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


def fit_settings(hp):
    mode = hp.values.get("mode", "ok")
    return {"epochs": 20 if mode == "nan" else 2, "batch_size": 16,
            "callbacks": [_Drill(mode)]}
