"""MNIST digits with a densely connected network (Deep Learning with Python, 2.1).

Default point = the book's model: Dense(512, relu) -> Dense(10, softmax), rmsprop,
categorical cross-entropy (sparse labels: the same loss without one-hot copies), 5 epochs,
batch 128; pixels flattened and scaled to [0, 1]. Book: 97.8% test accuracy.

``architecture`` also offers the tutorials' models as fixed alternatives:
``bn_sigmoid`` (Reshape-BatchNorm-Dense 200/100/60/30 sigmoid, SGD lr 0.03),
``adam_128_128`` (784-128-128-10 relu, adam, 3 epochs: 97.2%) and
``adam_512_512`` (784-512-512-10 relu, adam, 3 epochs: 96.7%).

The searched family goes beyond the book (every default is the book's choice): input
dropout, 1-4 layers of 64-2048 units, dropout, BatchNormalization, rmsprop/adam/adamw/sgd
with a learning-rate range per optimizer (:func:`search.building.searched_optimizer`), label
smoothing, a cosine learning-rate decay over the epochs, up to 60 epochs, and early
stopping inside the folds (``early_stopping``, a patience; its epochs are a cap): what a
dense net needs to pass 98.6% on MNIST.
"""

import keras
import numpy as np

from search import building
from search.datasets import mnist

TASK = "multiclass"
METRIC = "accuracy"
REFERENCE = {"test": 0.978, "source": "the book (DLwP 2.1)"}
FOLDS = 3

ARCHITECTURES = ["search", "bn_sigmoid", "adam_128_128", "adam_512_512"]


def load_data(data_dir=None):
    (x_train, y_train), (x_test, y_test) = mnist(data_dir=data_dir)
    prep = lambda x: (x.reshape(len(x), 784).astype("float32") / 255.0)  # noqa: E731
    return (prep(x_train), y_train.astype(np.int64)), (prep(x_test), y_test.astype(np.int64))



def _tutorial(architecture):
    if architecture == "bn_sigmoid":
        layers = [keras.layers.BatchNormalization()]
        layers += [keras.layers.Dense(u, activation="sigmoid") for u in (200, 100, 60, 30)]
        return layers, keras.optimizers.SGD(learning_rate=0.03)
    units = 128 if architecture == "adam_128_128" else 512
    return [keras.layers.Dense(units, activation="relu") for _ in range(2)], "adam"


LEARNING_RATES = {**building.LEARNING_RATES, "sgd": (1e-3, 0.3)}


def _searched(hp):
    activation = hp.Choice("activation", ["relu", "elu", "tanh", "sigmoid"], default="relu")
    input_dropout = hp.Choice("input_dropout", [0.0, 0.1, 0.2], default=0.0)
    dropout = hp.Float("dropout", 0.0, 0.6, step=0.1, default=0.0)
    batchnorm = hp.Boolean("batchnorm", default=False)
    layers = [keras.layers.Dropout(input_dropout)] if input_dropout else []
    for i in range(hp.Int("layers", 1, 4, default=1)):
        layers.append(keras.layers.Dense(hp.Int(f"units_{i}", 64, 2048, step=64,
                                                default=512)))
        if batchnorm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.Activation(activation))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout))
    return layers, building.searched_optimizer(hp, learning_rates=LEARNING_RATES)


def _loss(hp):
    smoothing = hp.Choice("label_smoothing", [0.0, 0.05, 0.1], default=0.0)
    if smoothing:
        return building.sparse_smoothed_crossentropy(smoothing, 10)
    return "sparse_categorical_crossentropy"


def build(hp):
    architecture = hp.Choice("architecture", ARCHITECTURES, default="search")
    if architecture != "search":
        layers, optimizer = _tutorial(architecture)
        loss = "sparse_categorical_crossentropy"
    else:
        layers, optimizer = _searched(hp)
        loss = _loss(hp)
    # one Sequential of all the layers: ``model.add`` re-traces the stack after each layer
    model = keras.Sequential([keras.Input((784,)), *layers,
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def fit_settings(hp):
    """Epochs: the book's 5 (1-60), or with early stopping (``early_stopping``: a patience of
    3-10 epochs on each fold's validation loss) a cap of 20-100 epochs instead."""
    patience = hp.Choice("early_stopping", [0, 3, 5, 10], default=0)
    if patience:
        epochs = hp.Int("early_stopping_epochs", 20, 100, step=10, default=50)
    else:
        epochs = hp.Int("epochs", 1, 60, default=5)
    settings = {
        "epochs": epochs,
        "batch_size": hp.Choice("batch_size", [32, 64, 128, 256, 512], default=128),
        "early_stopping": patience,
    }
    if hp.Choice("lr_schedule", ["constant", "cosine"], default="constant") == "cosine":
        settings["callbacks"] = [building.cosine_decay()]
    return settings
