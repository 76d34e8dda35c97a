"""Dogs vs cats, a small convnet trained from scratch (Deep Learning with Python, 5.2).

Default point = the book's final model of 5.2.5: data augmentation (rotation 40 degrees,
width and height shifts 0.2, shear 0.2, zoom 0.2, horizontal flips, nearest fill) ->
Conv2D(32) -> MaxPool -> Conv2D(64) -> MaxPool -> Conv2D(128) -> MaxPool -> Conv2D(128) ->
MaxPool -> Flatten -> Dropout(0.5) -> Dense(512, relu) -> Dense(1, sigmoid), 3x3 relu
convolutions, RMSprop(1e-4), binary cross-entropy, 100 epochs, batch 32, 150x150 RGB
images scaled to [0, 1]. Book: ~81% test accuracy (the book's generator drew 100 batches
per epoch, 1.6 passes over the 2,000 images; an epoch here is one pass). The book's plain
model (71%) is the point ``augment=False, dropout=0.0, epochs=30, batch_size=20``.

Augmentation is done by Keras' random preprocessing layers inside the model (the book's
``ImageDataGenerator`` arguments map onto ``RandomRotation``, ``RandomTranslation``,
``RandomShear``, ``RandomZoom`` and ``RandomFlip``); they are active only while training,
so validation and test images pass unchanged, as with the book's separate test generator.
Pixels come in as uint8 and a ``Rescaling(1/255)`` layer scales them, so the data set is
held as bytes (3,000 x 150 x 150 x 3 = 200 MB rather than 800 MB as float32).

Data: the book's split of 2,000 training, 1,000 validation and 1,000 test images
(``search.datasets.image_folder``; corrupt, empty and non-JPEG files are skipped, logged
and counted in ``SKIPPED``, never fatal). ``load_data`` returns training + validation
(3,000 images) as the training set that the K folds split, and the 1,000 test images as the
test set; with ``FOLDS = 3`` every fold trains on 2,000 and validates on 1,000 images,
exactly the book's sizes. The image folder is ``$SEARCH_CATS_DOGS_DIR`` if set, else the
first of ``PetImages/`` (Microsoft's archive), ``dogs-vs-cats/train/`` or
``dogs-vs-cats/`` (Kaggle's), ``train/`` found in the data directory (``data_dir`` or
``$SEARCH_DATA_DIR``). ``SPLIT``, ``SCALE_DOWN`` and ``IMAGE_SIZE`` are module settings.

Searched besides: each augmentation's strength (0 turns it off), conv blocks (3-5),
filters, dense units, activation, BatchNormalization, dropout, optimizer, learning rate (log
scale), batch size, epochs and the book's callbacks (off by default).
"""


import keras

from search import building
from search.callbacks import book_callbacks
from search.datasets import cats_vs_dogs

TASK = "binary"
METRIC = "accuracy"
REFERENCE = {"test": 0.81, "source": "the book (DLwP 5.2.5), with augmentation"}
FOLDS = 3

IMAGE_SIZE = (150, 150)
SPLIT = (2000, 1000, 1000)
SCALE_DOWN = False
SKIPPED = ()  # files the last load_data skipped (search.datasets.SkippedFile)


def load_data(data_dir=None):
    global SKIPPED
    data = cats_vs_dogs(data_dir, image_size=IMAGE_SIZE, split=SPLIT, scale_down=SCALE_DOWN)
    SKIPPED = data.skipped  # also logged by the loader
    return data.kfold_sets()


def build(hp):
    # layers listed, one Sequential at the end: ``model.add`` re-traces
    # the whole stack after every layer (README, "Speed")
    stack = [keras.Input((*IMAGE_SIZE, 3)), keras.layers.Rescaling(1 / 255)]
    for layer in building.augmentation(hp, default=True):
        stack.append(layer)
    activation = hp.Choice("activation", ["relu", "elu"], default="relu")
    batchnorm = hp.Boolean("batchnorm", default=False)
    defaults = [32, 64, 128, 128, 128]
    for i in range(hp.Int("conv_blocks", 3, 5, default=4)):
        filters = hp.Int(f"filters_{i}", 16, 256, step=16, default=defaults[i])
        if batchnorm:
            stack.append(keras.layers.Conv2D(filters, 3))
            stack.append(keras.layers.BatchNormalization())
            stack.append(keras.layers.Activation(activation))
        else:
            stack.append(keras.layers.Conv2D(filters, 3, activation=activation))
        stack.append(keras.layers.MaxPooling2D(2))
    stack.append(keras.layers.Flatten())
    dropout = hp.Float("dropout", 0.0, 0.6, step=0.1, default=0.5)
    if dropout > 0:
        stack.append(keras.layers.Dropout(dropout))
    stack.append(keras.layers.Dense(hp.Int("dense_units", 128, 1024, step=128, default=512),
                                    activation=activation))
    stack.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(stack)
    optimizer = building.optimizer(
        hp.Choice("optimizer", ["rmsprop", "adam", "sgd"], default="rmsprop"),
        hp.Float("learning_rate", 1e-5, 1e-2, sampling="log", default=1e-4),
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit_settings(hp):
    return {
        "epochs": hp.Int("epochs", 1, 150, default=100),
        "batch_size": hp.Choice("batch_size", [16, 20, 32, 64], default=32),
        "callbacks": book_callbacks(hp),
    }
