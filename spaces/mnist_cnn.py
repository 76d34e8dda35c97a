"""MNIST digits with a small convnet (Deep Learning with Python, 5.1).

Default point = the book's model: Conv2D(32, 3, relu) -> MaxPool(2) -> Conv2D(64, 3, relu) ->
MaxPool(2) -> Conv2D(64, 3, relu) -> Flatten -> Dense(64, relu) -> Dense(10, softmax),
rmsprop, categorical cross-entropy (sparse labels: the same loss without one-hot copies),
5 epochs, batch 64; images as (28, 28, 1) floats in [0, 1]. Book: 99.3% test accuracy.

The ranges vary what the book says is worth tuning: conv blocks (1-3, a max-pool between
blocks as in the book), filters per block, kernel size, padding, activation,
BatchNormalization after each conv, dropout before the classifier, dense units, optimizer,
learning rate (log scale), batch size, epochs, and the book's callbacks (off by default).
A 5x5 kernel with "valid" padding would shrink 28x28 to nothing after three blocks, so a
block that "valid" padding would shrink below 2x2 switches to "same" padding.

``architecture="adadelta_tutorial"`` is the Keras tutorial's convnet instead, fixed as
published: Conv2D(32, 3) -> Conv2D(64, 3) -> MaxPool(2) -> Dropout(0.25) -> Flatten ->
Dense(128) -> Dropout(0.5) -> Dense(10), Adadelta (learning rate 1.0, rho 0.95: the old
Keras defaults the tutorial ran with; Keras 3's default of 0.001 barely trains in 6 epochs),
6 epochs, batch 128. Tutorial: 99.0%.
"""

import keras
import numpy as np

from search import building
from search.callbacks import book_callbacks
from search.datasets import mnist

TASK = "multiclass"
METRIC = "accuracy"
REFERENCE = {"test": 0.993, "source": "the book (DLwP 5.1)"}
FOLDS = 3

ARCHITECTURES = ["search", "adadelta_tutorial"]
TUTORIAL_FIT = {"epochs": 6, "batch_size": 128}


def load_data(data_dir=None):
    (x_train, y_train), (x_test, y_test) = mnist(data_dir=data_dir)
    prep = lambda x: (x.reshape(len(x), 28, 28, 1).astype("float32") / 255.0)  # noqa: E731
    return (prep(x_train), y_train.astype(np.int64)), (prep(x_test), y_test.astype(np.int64))



def _tutorial():
    layers = [
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.5),
    ]
    return layers, keras.optimizers.Adadelta(learning_rate=1.0, rho=0.95)


def _searched(hp):
    activation = hp.Choice("activation", ["relu", "elu", "tanh"], default="relu")
    batchnorm = hp.Boolean("batchnorm", default=False)
    kernel = hp.Choice("kernel_size", [3, 5], default=3)
    padding = hp.Choice("padding", ["valid", "same"], default="valid")
    defaults = [32, 64, 64]
    layers, size = [], 28
    for i in range(hp.Int("conv_blocks", 1, 3, default=3)):
        if i > 0:
            layers.append(keras.layers.MaxPooling2D(2))
            size //= 2
        pad = padding if size - kernel + 1 >= 2 else "same"
        size = size - kernel + 1 if pad == "valid" else size
        filters = hp.Int(f"filters_{i}", 16, 128, step=16, default=defaults[i])
        if batchnorm:  # conv -> BN -> activation, the usual order
            layers += [keras.layers.Conv2D(filters, kernel, padding=pad),
                       keras.layers.BatchNormalization(), keras.layers.Activation(activation)]
        else:
            layers.append(keras.layers.Conv2D(filters, kernel, padding=pad,
                                              activation=activation))
    layers.append(keras.layers.Flatten())
    layers.append(keras.layers.Dense(hp.Int("dense_units", 32, 512, step=32, default=64),
                                     activation=activation))
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
    if dropout > 0:
        layers.append(keras.layers.Dropout(dropout))
    optimizer = building.optimizer(
        hp.Choice("optimizer", ["rmsprop", "adam", "sgd"], default="rmsprop"),
        hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3),
    )
    return layers, optimizer


def build(hp):
    architecture = hp.Choice("architecture", ARCHITECTURES, default="search")
    layers, optimizer = _tutorial() if architecture == "adadelta_tutorial" else _searched(hp)
    # one Sequential of all the layers: ``model.add`` re-traces the stack after each layer
    model = keras.Sequential([keras.Input((28, 28, 1)), *layers,
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def fit_settings(hp):
    if hp.Choice("architecture", ARCHITECTURES, default="search") == "adadelta_tutorial":
        return {**TUTORIAL_FIT, "callbacks": book_callbacks(hp)}
    return {
        "epochs": hp.Int("epochs", 1, 20, default=5),
        "batch_size": hp.Choice("batch_size", [32, 64, 128, 256], default=64),
        "callbacks": book_callbacks(hp),
    }
