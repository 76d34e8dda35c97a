"""Generated regression task whose ``crash=True`` trials kill their worker process once.

The first time a Ray actor or a ``--jobs`` child process builds a ``crash=True`` model, the
process exits hard (like an out-of-memory kill); the marker file named by
``SEARCH_CRASH_MARKER`` makes later attempts work. In the driver (building to propose)
nothing crashes.
"""

import os
from pathlib import Path

import keras
import numpy as np

TASK = "regression"
METRIC = "mae"
FOLDS = 2


def load_data(data_dir=None):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = x.sum(axis=1).astype("float32")
    return (x[:30], y[:30]), (x[30:], y[30:])


def _in_worker():
    import multiprocessing

    if multiprocessing.current_process().name.startswith("search-slot"):
        return True
    try:
        import ray

        return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except Exception:
        return False


def build(hp):
    if hp.Boolean("crash", default=False) and _in_worker():
        marker = Path(os.environ["SEARCH_CRASH_MARKER"])
        if not marker.exists():
            marker.write_text("crashed once")
            os._exit(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log",
                                                           default=1e-2)), loss="mse")
    return model


def fit_settings(hp):
    return {"epochs": 1, "batch_size": 8}
