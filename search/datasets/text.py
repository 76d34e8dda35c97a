"""IMDB and Reuters, read from Keras' file layouts, with Keras' index conventions.

The files store raw word ranks (1 = most frequent word). The loaders here repeat, step by
step, what ``keras.datasets.imdb/reuters.load_data`` do to them -- seeded shuffle, then
``start_char`` / ``index_from`` offsets, ``maxlen`` filtering, ``num_words`` / ``skip_top``
clipping to ``oov_char`` -- including Keras' quirks (``maxlen`` keeps sequences strictly
shorter than it; with ``num_words=None`` the largest index itself becomes ``oov_char``), so
results match Keras array for array.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search.datasets._dirs import PathLike
from search.datasets._npz import load_npz
from search.datasets._source import invalid_file_error, locate
from search.datasets.catalog import ENTRIES, Entry
from search.datasets.types import Array, LoadResult
from search.errors import UsageError

Sequences = list[list[int]]


def _read(entry: Entry, path: Path, keys: tuple[str, ...]) -> list[Array]:
    try:
        arrays = load_npz(path)
        return [arrays[key] for key in keys]
    except (
        KeyError,
        ValueError,
        OSError,
        EOFError,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
    ) as exc:
        raise invalid_file_error(entry, path, exc) from exc


def _shuffled(rng: np.random.RandomState, x: Array, y: Array) -> tuple[Array, Array]:
    indices = np.arange(len(x))
    rng.shuffle(indices)
    return x[indices], y[indices]


def _offset(xs: Iterable[Sequence[int]], start_char: int | None, index_from: int) -> Sequences:
    """Shift ranks by ``index_from`` and prepend ``start_char``, as Keras does."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    if index_from:
        return [[w + index_from for w in x] for x in xs]
    return [list(x) for x in xs]


def _drop_long(maxlen: int, xs: Sequences, labels: Iterable[Any]) -> tuple[Sequences, list[Any]]:
    """Keep sequences strictly shorter than ``maxlen`` (``keras.utils.remove_long_seq``)."""
    kept = [(x, y) for x, y in zip(xs, labels, strict=False) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def _clip(xs: Sequences, num_words: int | None, skip_top: int, oov_char: int | None) -> Sequences:
    """Map indices outside ``[skip_top, num_words)`` to ``oov_char``, or drop them if None."""
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def _object_array(xs: Sequences) -> Array:
    return np.array(xs, dtype="object")


def imdb(
    data_dir: PathLike | None = None,
    *,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
) -> LoadResult:
    """Load IMDB reviews as ``keras.datasets.imdb.load_data(...)`` does.

    Args:
        data_dir: Directory holding ``imdb.npz``; defaults to ``$SEARCH_DATA_DIR``.
        num_words: Keep the ``num_words - index_from - 1`` most frequent words (indices
            below ``num_words``); others become ``oov_char``. ``None``: keep all.
        skip_top: Indices below this also become ``oov_char`` (they include the reserved
            0-2, so use e.g. ``index_from + n`` to drop the ``n`` most frequent words).
        maxlen: Drop reviews with ``maxlen`` or more indices (after ``start_char``).
        seed: Seed of the shuffles of train and test.
        start_char: Index prepended to every review (``None``: none).
        oov_char: Index of out-of-vocabulary words (``None``: drop them).
        index_from: Offset added to every word rank, reserving 0 for padding.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: object arrays of lists of int indices and
        int labels (1 positive, 0 negative); 25,000 reviews each for the real data.

    Raises:
        UsageError: If ``maxlen`` removes every review of a subset.
        DataNotFoundError: If the file is nowhere to be found or downloaded.
    """
    entry = ENTRIES["imdb"]
    (path,) = locate(entry, data_dir)
    x_train, y_train, x_test, y_test = _read(
        entry, path, ("x_train", "y_train", "x_test", "y_test")
    )
    rng = np.random.RandomState(seed)
    x_train, y_train = _shuffled(rng, x_train, y_train)
    x_test, y_test = _shuffled(rng, x_test, y_test)
    xs_train = _offset(x_train, start_char, index_from)
    xs_test = _offset(x_test, start_char, index_from)
    labels_train: Any = y_train
    labels_test: Any = y_test
    if maxlen:
        xs_train, labels_train = _drop_long(maxlen, xs_train, labels_train)
        xs_test, labels_test = _drop_long(maxlen, xs_test, labels_test)
        if not xs_train or not xs_test:
            raise UsageError(f"`{maxlen=}` keeps no review of the train or test set; increase it.")
    xs = _clip(xs_train + xs_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    cut = len(xs_train)
    return (_object_array(xs[:cut]), labels[:cut]), (_object_array(xs[cut:]), labels[cut:])


def reuters(
    data_dir: PathLike | None = None,
    *,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    test_split: float = 0.2,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
) -> LoadResult:
    """Load Reuters newswires as ``keras.datasets.reuters.load_data(...)`` does.

    All wires are shuffled with ``seed``, offset, filtered and clipped as for ``imdb``, then
    the first ``int(n * (1 - test_split))`` become the training set (8,982 / 2,246 for the
    real data).

    Args:
        data_dir: Directory holding ``reuters.npz``; defaults to ``$SEARCH_DATA_DIR``.
        num_words: See ``imdb``.
        skip_top: See ``imdb``.
        maxlen: See ``imdb``.
        test_split: Fraction of wires for the test set.
        seed: Seed of the shuffle before the split.
        start_char: See ``imdb``.
        oov_char: See ``imdb``.
        index_from: See ``imdb``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: object arrays of lists of int indices and
        int topic labels (0-45 for the real data).

    Raises:
        DataNotFoundError: If the file is nowhere to be found or downloaded.
    """
    entry = ENTRIES["reuters"]
    (path,) = locate(entry, data_dir)
    x, y = _read(entry, path, ("x", "y"))
    x, y = _shuffled(np.random.RandomState(seed), x, y)
    xs = _offset(x, start_char, index_from)
    labels: Any = y
    if maxlen:
        xs, labels = _drop_long(maxlen, xs, labels)
    xs = _clip(xs, num_words, skip_top, oov_char)
    cut = int(len(xs) * (1 - test_split))
    return (
        (_object_array(xs[:cut]), np.array(labels[:cut])),
        (_object_array(xs[cut:]), np.array(labels[cut:])),
    )


def _word_index(name: str, data_dir: PathLike | None) -> dict[str, int]:
    entry = ENTRIES[name]
    (path,) = locate(entry, data_dir)
    try:
        with path.open(encoding="utf-8") as handle:
            index = json.load(handle)
    except (OSError, ValueError) as exc:
        raise invalid_file_error(entry, path, exc) from exc
    if not isinstance(index, dict):
        raise invalid_file_error(entry, path, "not a JSON object")
    return index


def imdb_word_index(data_dir: PathLike | None = None) -> dict[str, int]:
    """Return IMDB's word -> rank map (``keras.datasets.imdb.get_word_index()``).

    Ranks start at 1; add ``index_from`` to match the indices ``imdb`` returns.
    """
    return _word_index("imdb_word_index", data_dir)


def reuters_word_index(data_dir: PathLike | None = None) -> dict[str, int]:
    """Return Reuters' word -> rank map (``keras.datasets.reuters.get_word_index()``).

    Ranks start at 1; add ``index_from`` to match the indices ``reuters`` returns.
    """
    return _word_index("reuters_word_index", data_dir)


def multi_hot(sequences: Sequence[Sequence[int]], dim: int) -> Array:
    """Word-index sequences as 0/1 rows of ``dim`` columns, **uint8**, set in place.

    The book vectorises into float64 (IMDB: 25,000 × 10,000 = 2 GB); uint8 is 250 MB and the
    trial streams it to Keras in float32 batches (``search.feeding``). No float copy of the
    matrix is ever made.
    """
    out = np.zeros((len(sequences), dim), dtype=np.uint8)
    for row, seq in zip(out, sequences, strict=True):
        row[np.asarray(seq, dtype=np.intp)] = 1
    return out
