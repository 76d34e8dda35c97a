"""IMDB sentiment with a 1D convnet over word embeddings (Deep Learning with Python, 6.4, 7.2).

Default point = the book's model: Embedding(2000, 128) -> Conv1D(32, 7, relu) ->
MaxPool1D(5) -> Conv1D(32, 7, relu) -> GlobalMaxPool1D -> Dense(1), rmsprop (Keras' default
learning rate, 1e-3, as in 7.2.2), binary cross-entropy, 20 epochs, batch 128, on reviews
of the 2,000 most frequent words (``num_words=2000``) padded or truncated to 500 words
(``keras.utils.pad_sequences``, which pads and cuts at the front, as the book's loader did).
The book shows training curves, no test figure.

Where this differs from the book, and why:

- The book's ``Dense(1)`` has no activation although it is trained with binary
  cross-entropy (a known erratum: Keras then treats raw outputs as probabilities). Here it
  is ``Dense(1, activation="sigmoid")``, so predictions are probabilities, as the trial's
  accuracy and log-loss expect.
- The book's ``validation_split=0.2`` is replaced by the K-fold validation part: with
  ``FOLDS = 5`` every fold trains on 80% and validates on 20% of the training set, the same
  proportions, and every training row is validated once.
- The book's ``TensorBoard`` callback is not added here: logging each trial's fits for
  TensorBoard is a run flag of the toolkit, so no space needs to build the callback itself.

The ranges vary the embedding size, conv blocks (1-3), filters, kernel and pool sizes,
activation, BatchNormalization, dropout before the classifier, optimizer, learning rate (log
scale, covering 6.4's 1e-4), batch size, epochs and the book's callbacks (off by default).
"""

import keras
import numpy as np

from search import building
from search.callbacks import book_callbacks
from search.datasets import imdb

TASK = "binary"
METRIC = "accuracy"
FOLDS = 5

NUM_WORDS = 2000
MAXLEN = 500


def load_data(data_dir=None):
    (x_train, y_train), (x_test, y_test) = imdb(data_dir=data_dir, num_words=NUM_WORDS)
    pad = lambda x: keras.utils.pad_sequences(x, maxlen=MAXLEN)  # noqa: E731  int32
    return (pad(x_train), y_train.astype(np.int64)), (pad(x_test), y_test.astype(np.int64))



def build(hp):
    activation = hp.Choice("activation", ["relu", "elu", "tanh"], default="relu")
    batchnorm = hp.Boolean("batchnorm", default=False)
    kernel = hp.Choice("kernel_size", [3, 5, 7, 9], default=7)
    pool = hp.Choice("pool_size", [2, 3, 5], default=5)
    # layers listed, one Sequential at the end: ``model.add`` re-traces
    # the whole stack after every layer (README, "Speed")
    stack = [keras.Input((MAXLEN,), dtype="int32")]
    stack.append(keras.layers.Embedding(
        NUM_WORDS, hp.Choice("embedding_dim", [32, 64, 128, 256], default=128)))
    for i in range(hp.Int("conv_blocks", 1, 3, default=2)):
        if i > 0:
            stack.append(keras.layers.MaxPooling1D(pool))
        filters = hp.Int(f"filters_{i}", 16, 128, step=16, default=32)
        if batchnorm:
            stack.append(keras.layers.Conv1D(filters, kernel))
            stack.append(keras.layers.BatchNormalization())
            stack.append(keras.layers.Activation(activation))
        else:
            stack.append(keras.layers.Conv1D(filters, kernel, activation=activation))
    stack.append(keras.layers.GlobalMaxPooling1D())
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
    if dropout > 0:
        stack.append(keras.layers.Dropout(dropout))
    stack.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(stack)
    optimizer = building.optimizer(
        hp.Choice("optimizer", ["rmsprop", "adam", "sgd"], default="rmsprop"),
        hp.Float("learning_rate", 1e-5, 1e-2, sampling="log", default=1e-3),
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {
        "epochs": hp.Int("epochs", 1, 30, default=20),
        "batch_size": hp.Choice("batch_size", [32, 64, 128, 256], default=128),
        "callbacks": book_callbacks(hp),
    }
