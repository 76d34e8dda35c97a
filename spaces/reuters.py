"""Reuters newswire topics from multi-hot word vectors (Deep Learning with Python, 3.5).

Default point = the book's model: Dense(64, relu) -> Dense(64, relu) -> Dense(46, softmax),
rmsprop, categorical cross-entropy (sparse integer labels: the same loss without one-hot
copies, the book's own alternative in 3.5.6), 9 epochs, batch 512, on wires encoded as
10,000-dimensional multi-hot vectors (``num_words=10000``). Book: ~80% test accuracy
(random baseline ~19%).

The vectors are **uint8** 0/1 bytes (8,982 x 10,000 = 90 MB; float32 would be 4x that),
fed to the model in float32 batches (``search.feeding``).

The output layer has one unit per topic *found in the data*: ``load_data`` sets
``NUM_CLASSES`` to the largest label + 1 (46 for Keras' Reuters, 52 for the offline R52
stand-in), and ``build`` records it as the fixed parameter ``classes``. Until data is
loaded, ``NUM_CLASSES`` is the book's 46.

The ranges follow the book's experiments (3.5.5-3.5.7: fewer or more layers, narrower or
wider layers -- a 4-unit bottleneck drops accuracy to ~71%), plus activation,
BatchNormalization, dropout, optimizer, learning rate (log scale), batch size, epochs and
the book's callbacks (off by default).
"""

import keras
import numpy as np

from search import building
from search.callbacks import book_callbacks
from search.datasets import multi_hot, reuters

TASK = "multiclass"
METRIC = "accuracy"
REFERENCE = {"test": 0.80, "source": "the book (DLwP 3.5), ~80% on Reuters-46"}
FOLDS = 3

NUM_WORDS = 10000
NUM_CLASSES = 46



def load_data(data_dir=None):
    global NUM_CLASSES
    (x_train, y_train), (x_test, y_test) = reuters(data_dir=data_dir, num_words=NUM_WORDS)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    NUM_CLASSES = int(max(y_train.max(), y_test.max())) + 1
    x_train = multi_hot(x_train, NUM_WORDS)  # rebinding frees the lists first
    x_test = multi_hot(x_test, NUM_WORDS)
    return (x_train, y_train), (x_test, y_test)



def build(hp):
    classes = hp.Fixed("classes", NUM_CLASSES)
    activation = hp.Choice("activation", ["relu", "tanh", "elu"], default="relu")
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
    batchnorm = hp.Boolean("batchnorm", default=False)
    # layers listed, one Sequential at the end: ``model.add`` re-traces
    # the whole stack after every layer (README, "Speed")
    stack = [keras.Input((NUM_WORDS,))]
    for i in range(hp.Int("layers", 1, 3, default=2)):
        units = hp.Int(f"units_{i}", 16, 512, step=16, default=64)
        if batchnorm:
            stack.append(keras.layers.Dense(units))
            stack.append(keras.layers.BatchNormalization())
            stack.append(keras.layers.Activation(activation))
        else:
            stack.append(keras.layers.Dense(units, activation=activation))
        if dropout > 0:
            stack.append(keras.layers.Dropout(dropout))
    stack.append(keras.layers.Dense(classes, activation="softmax"))
    model = keras.Sequential(stack)
    optimizer = building.optimizer(
        hp.Choice("optimizer", ["rmsprop", "adam", "sgd"], default="rmsprop"),
        hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3),
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {
        "epochs": hp.Int("epochs", 1, 30, default=9),
        "batch_size": hp.Choice("batch_size", [64, 128, 256, 512, 1024], default=512),
        "callbacks": book_callbacks(hp),
    }
