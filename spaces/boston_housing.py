"""Boston housing price regression (Deep Learning with Python, 3.6): MAE in $1000s.

Default point = the book's model: Dense(64, relu) -> Dense(64, relu) -> Dense(1), rmsprop,
mse loss, 4-fold validation, 80 epochs, batch 16; features standardised with the mean and
std of each fold's training part only (fitting them on all rows would leak). Book: 4-fold
MAE 2.38 (mean of folds), test MAE 2.55.

Beyond the book (every default is the book's choice): 1-5 layers of 16-512 units, kernel L2
(``l2``), Huber loss as a choice (``loss``, ``huber_delta``: robust to the capped $50k
prices), early stopping inside the folds (``early_stopping``, a patience; its epochs are a cap),
and an optimizer choice with a learning-rate range per optimizer
(:func:`search.building.searched_optimizer`: AdamW with its weight decay; SGD always with
gradient clipping, which stops the NaN divergence SGD with momentum 0.9 showed here).
"""

import keras
from sklearn.preprocessing import StandardScaler

from search import building
from search.datasets import boston_housing

TASK = "regression"
METRIC = "mae"
REFERENCE = {"test": 2.55, "cv": 2.38,
             "source": "the book (DLwP 3.6): 4-fold MAE 2.38, test MAE 2.55"}
FOLDS = 4


def load_data(data_dir=None):
    return boston_housing(data_dir=data_dir)


def preprocessor(hp):
    return StandardScaler()


def _loss(hp):
    if hp.Choice("loss", ["mse", "huber"], default="mse") == "huber":
        return keras.losses.Huber(delta=hp.Choice("huber_delta", [1.0, 2.0, 5.0], default=2.0))
    return "mse"


def build(hp):
    activation = hp.Choice("activation", ["relu", "elu", "tanh"], default="relu")
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
    batchnorm = hp.Boolean("batchnorm", default=False)
    l2 = hp.Choice("l2", [0.0, 1e-4, 1e-3, 1e-2], default=0.0)
    regularizer = keras.regularizers.L2(l2) if l2 else None
    # the layers listed first and given to Sequential at once: ``model.add`` re-traces the
    # whole stack after every layer (quadratic in depth; ~40 ms of a Boston trial's fold)
    layers = [keras.Input((13,))]
    for i in range(hp.Int("layers", 1, 5, default=2)):
        units = hp.Int(f"units_{i}", 16, 512, step=16, default=64)
        layers.append(keras.layers.Dense(units, kernel_regularizer=regularizer))
        if batchnorm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation(activation))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(1))
    model = keras.Sequential(layers)
    model.compile(optimizer=building.searched_optimizer(hp), loss=_loss(hp), metrics=["mae"])
    return model


def fit_settings(hp):
    """Epochs: the book's 80 (20-300), or with early stopping (``early_stopping``: a patience
    of 10-40 epochs on each fold's validation loss) a cap of 100-500 epochs instead."""
    patience = hp.Choice("early_stopping", [0, 10, 20, 40], default=0)
    if patience:
        epochs = hp.Int("early_stopping_epochs", 100, 500, step=50, default=300)
    else:
        epochs = hp.Int("epochs", 20, 300, step=10, default=80)
    return {
        "epochs": epochs,
        "batch_size": hp.Choice("batch_size", [8, 16, 32, 64], default=16),
        "early_stopping": patience,
    }
