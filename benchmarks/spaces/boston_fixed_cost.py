"""Boston housing (real data), the book's model at a fixed cost per trial: backend benchmark.

Every trial trains the same network (Dense(64, relu) -> Dense(64, relu) -> Dense(1), rmsprop,
mse, batch 16) for the same number of epochs on the same 4 folds; only the learning rate is
searched, which changes the weights, not the work. So every trial costs the same (~10 s with
``--threads 1`` on this project's 2-core machines) and differences in wall time between
backends are the backends' own. ``benchmarks/backends.py`` imports :func:`model` and
:data:`EPOCHS` for its plain-Keras ceiling, so both train exactly this model.
"""

import keras
from sklearn.preprocessing import StandardScaler

from search.datasets import boston_housing

TASK = "regression"
METRIC = "mae"
FOLDS = 4
EPOCHS = 25
BATCH_SIZE = 16


def load_data(data_dir=None):
    return boston_housing(data_dir=data_dir)


def preprocessor(hp):
    return StandardScaler()


def model(learning_rate=1e-3):
    """The book's network, compiled; shared with the plain-Keras baseline."""
    net = keras.Sequential([
        keras.Input((13,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(1),
    ])
    net.compile(optimizer=keras.optimizers.RMSprop(learning_rate=learning_rate), loss="mse",
                metrics=["mae"])
    return net


def build(hp):
    return model(hp.Float("learning_rate", 5e-4, 2e-3, sampling="log", default=1e-3))


def fit_settings(hp):
    return {"epochs": EPOCHS, "batch_size": BATCH_SIZE}
