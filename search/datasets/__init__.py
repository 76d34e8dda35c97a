"""Datasets of the book's tasks, loaded exactly as ``keras.datasets`` loads them, offline too.

Each loader looks in the data directory (``data_dir`` argument, else ``$SEARCH_DATA_DIR``) for
the file in Keras' own cache layout, then in Keras' cache, then downloads it; without
internet it raises ``search.errors.DataNotFoundError`` naming the file and where to put it.
``fetch`` fills a data directory on a machine with internet; ``search.datasets.offline``
builds files from packages installed here. Importing this package does not import Keras or
TensorFlow.
"""

from __future__ import annotations

from search.datasets._dirs import DATA_DIR_ENV
from search.datasets.catalog import ENTRIES, VGG16_NOTOP
from search.datasets.fetching import FetchResult, LocalEntry, fetch, list_local
from search.datasets.images import (
    CATS_DOGS_DIR_ENV,
    ImageFolderData,
    NotEnoughImagesError,
    SkippedFile,
    cats_vs_dogs,
    cats_vs_dogs_dir,
    image_folder,
)
from search.datasets.keras_layouts import boston_housing, fashion_mnist, mnist
from search.datasets.text import imdb, imdb_word_index, multi_hot, reuters, reuters_word_index
from search.datasets.types import LoadResult, Split
from search.datasets.weights import vgg16_weights

__all__ = [
    "CATS_DOGS_DIR_ENV",
    "DATA_DIR_ENV",
    "ENTRIES",
    "VGG16_NOTOP",
    "FetchResult",
    "ImageFolderData",
    "LoadResult",
    "LocalEntry",
    "NotEnoughImagesError",
    "SkippedFile",
    "Split",
    "boston_housing",
    "cats_vs_dogs",
    "cats_vs_dogs_dir",
    "fashion_mnist",
    "fetch",
    "image_folder",
    "imdb",
    "imdb_word_index",
    "list_local",
    "mnist",
    "multi_hot",
    "reuters",
    "reuters_word_index",
    "vgg16_weights",
]
