"""IMDB movie-review sentiment from multi-hot word vectors (Deep Learning with Python, 3.4).

Default point = the book's model: Dense(16, relu) -> Dense(16, relu) -> Dense(1, sigmoid),
rmsprop, binary cross-entropy, 4 epochs, batch 512, on reviews encoded as 10,000-dimensional
multi-hot vectors of the 10,000 most frequent words (``num_words=10000``). Book: 88% test
accuracy.

The vectors are **uint8** 0/1 bytes: 25,000 x 10,000 is 250 MB as bytes, 1 GB as float32,
and a search holds the training set for its whole run. The trial streams arrays this big to
Keras in float32 batches (``search.feeding``), so no float copy of the whole set is made.

The ranges follow the book's "further experiments" (3.4.6: one or three layers, more units,
``mse`` loss, ``tanh``) and chapter 4's regularisers (L2 weight decay, dropout), plus
BatchNormalization, optimizer, learning rate (log scale), batch size, epochs and the book's
callbacks (off by default).
"""

import keras
import numpy as np

from search import building
from search.callbacks import book_callbacks
from search.datasets import imdb, multi_hot

TASK = "binary"
METRIC = "accuracy"
REFERENCE = {"test": 0.88, "source": "the book (DLwP 3.4), on the real IMDB"}
FOLDS = 3

NUM_WORDS = 10000



def load_data(data_dir=None):
    (x_train, y_train), (x_test, y_test) = imdb(data_dir=data_dir, num_words=NUM_WORDS)
    x_train = multi_hot(x_train, NUM_WORDS)  # rebinding frees the lists first
    x_test = multi_hot(x_test, NUM_WORDS)
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))



def build(hp):
    activation = hp.Choice("activation", ["relu", "tanh", "elu"], default="relu")
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
    batchnorm = hp.Boolean("batchnorm", default=False)
    l2 = hp.Choice("l2", [0.0, 1e-4, 1e-3, 1e-2], default=0.0)
    regularizer = keras.regularizers.L2(l2) if l2 else None
    # layers listed, one Sequential at the end: ``model.add`` re-traces
    # the whole stack after every layer (README, "Speed")
    stack = [keras.Input((NUM_WORDS,))]
    for i in range(hp.Int("layers", 1, 3, default=2)):
        units = hp.Int(f"units_{i}", 8, 128, step=8, default=16)
        if batchnorm:
            stack.append(keras.layers.Dense(units, kernel_regularizer=regularizer))
            stack.append(keras.layers.BatchNormalization())
            stack.append(keras.layers.Activation(activation))
        else:
            stack.append(keras.layers.Dense(units, activation=activation,
                                            kernel_regularizer=regularizer))
        if dropout > 0:
            stack.append(keras.layers.Dropout(dropout))
    stack.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(stack)
    optimizer = building.optimizer(
        hp.Choice("optimizer", ["rmsprop", "adam", "sgd"], default="rmsprop"),
        hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3),
    )
    loss = hp.Choice("loss", ["binary_crossentropy", "mse"], default="binary_crossentropy")
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {
        "epochs": hp.Int("epochs", 1, 20, default=4),
        "batch_size": hp.Choice("batch_size", [64, 128, 256, 512, 1024], default=512),
        "callbacks": book_callbacks(hp),
    }
