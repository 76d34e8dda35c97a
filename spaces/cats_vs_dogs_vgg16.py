"""Dogs vs cats on a pretrained VGG16 base (Deep Learning with Python, 5.3).

Default point = the book's feature-extraction model: VGG16 (ImageNet weights,
``include_top=False``, 150x150x3 input, frozen) -> Flatten -> Dense(256, relu) ->
Dropout(0.5) -> Dense(1, sigmoid), RMSprop(2e-5), binary cross-entropy, 30 epochs,
batch 20, pixels scaled to [0, 1] as the book's generators do. Book: ~90% test accuracy
(feature extraction), ~96% with augmentation (``augment=True``), ~97% fine-tuned.

``mode="fine_tune"`` unfreezes the last convolution block (``block5_*``) and trains with
RMSprop at ``fine_tune_learning_rate`` (book: 1e-5, searched 1e-6 to 1e-4). The book first
trains the classifier on the frozen base, then unfreezes block 5; a trial has one ``fit``,
so here block 5 is trainable from the first epoch and the small learning rate alone
protects its pretrained filters. Add ``augment=True`` for the book's fine-tuning setup.

The frozen base runs on every batch (the book's second method, end to end). Its first
method -- computing the base's features once, then training only the classifier -- is
faster but cannot use augmentation, and the space contract trains on images.

Weights (``weights()``): ``$SEARCH_VGG16_WEIGHTS`` if set -- ``none`` builds the base with
random weights (for tests; the numbers mean nothing), any other value is a weights file --
else ``search.datasets.vgg16_weights`` finds Keras' ``..._notop.h5`` in the data directory
(the one last given to ``load_data``, else ``$SEARCH_DATA_DIR``), Keras' cache or online.
Without any of them ``load_data`` (and ``build``) raise ``DataNotFoundError`` naming the file
and where to put it; ``load_data`` checks first so a worker fails before decoding images.

Data: as ``cats_vs_dogs.py`` -- training + validation images (3,000) are the K-fold
training set (``FOLDS = 3``: 2,000 / 1,000 per fold, the book's sizes), the 1,000 test
images the test set; same folder lookup (``$SEARCH_CATS_DOGS_DIR``, else ``PetImages/``,
``dogs-vs-cats/train/``, ``dogs-vs-cats/``, ``train/`` in the data directory), same module
settings ``SPLIT``, ``SCALE_DOWN``, ``IMAGE_SIZE``; skipped files are logged and kept in
``SKIPPED``.
"""

import os

import keras

from search import building
from search.callbacks import book_callbacks
from search.datasets import cats_vs_dogs, vgg16_weights

TASK = "binary"
METRIC = "accuracy"
REFERENCE = {"test": 0.90, "source": "the book (DLwP 5.3), feature extraction"}
FOLDS = 3

WEIGHTS_ENV = "SEARCH_VGG16_WEIGHTS"
IMAGE_SIZE = (150, 150)
SPLIT = (2000, 1000, 1000)
SCALE_DOWN = False
SKIPPED = ()

_data_dir = None
_resolved = {}


def weights():
    """What ``VGG16(weights=...)`` gets: None, a weights file path, or ``"imagenet"``."""
    setting = os.environ.get(WEIGHTS_ENV, "").strip()
    if setting.lower() == "none":
        return None
    if setting:
        return vgg16_weights(setting)
    key = str(_data_dir)
    if key not in _resolved:  # the helper may probe the network: once per data directory
        _resolved[key] = vgg16_weights(data_dir=_data_dir)
    return _resolved[key]


def load_data(data_dir=None):
    global SKIPPED, _data_dir
    _data_dir = data_dir
    weights()  # no weights, no run: fail before spending minutes on decoding images
    data = cats_vs_dogs(data_dir, image_size=IMAGE_SIZE, split=SPLIT, scale_down=SCALE_DOWN)
    SKIPPED = data.skipped  # also logged by the loader
    return data.kfold_sets()


def build(hp):
    mode = hp.Choice("mode", ["feature_extraction", "fine_tune"], default="feature_extraction")
    base = keras.applications.VGG16(weights=weights(), include_top=False,
                                    input_shape=(*IMAGE_SIZE, 3))
    for layer in base.layers:  # the book's loop: only block 5 learns when fine-tuning
        layer.trainable = mode == "fine_tune" and layer.name.startswith("block5")
    if mode == "fine_tune":
        lr = hp.Float("fine_tune_learning_rate", 1e-6, 1e-4, sampling="log", default=1e-5)
    else:
        lr = hp.Float("learning_rate", 1e-6, 1e-3, sampling="log", default=2e-5)
    # layers listed, one Sequential at the end: ``model.add`` re-traces
    # the whole stack after every layer (README, "Speed")
    stack = [keras.Input((*IMAGE_SIZE, 3)), keras.layers.Rescaling(1 / 255)]
    for layer in building.augmentation(hp, default=False):
        stack.append(layer)
    stack.append(base)
    stack.append(keras.layers.Flatten())
    stack.append(keras.layers.Dense(hp.Int("dense_units", 64, 1024, step=64, default=256),
                                    activation="relu"))
    dropout = hp.Float("dropout", 0.0, 0.6, step=0.1, default=0.5)
    if dropout > 0:
        stack.append(keras.layers.Dropout(dropout))
    stack.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(stack)
    optimizer = hp.Choice("optimizer", ["rmsprop", "adam"], default="rmsprop")
    optimizer = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}[
        optimizer](learning_rate=lr)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {
        "epochs": hp.Int("epochs", 1, 100, default=30),
        "batch_size": hp.Choice("batch_size", [16, 20, 32, 64], default=20),
        "callbacks": book_callbacks(hp),
    }
