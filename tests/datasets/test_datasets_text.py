"""IMDB and Reuters loaders: Keras' index conventions, and equality with Keras' own code.

The equality tests hand Keras' ``load_data`` the same small generated file (by patching its
``get_file``, so nothing is downloaded) and compare every array, for many argument sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.datasets import imdb, imdb_word_index, reuters, reuters_word_index
from search.errors import DataNotFoundError, UsageError

ARGUMENT_SETS: list[dict[str, Any]] = [
    {},
    {"num_words": 20},
    {"num_words": 20, "skip_top": 6},
    {"maxlen": 15},
    {"maxlen": 15, "num_words": 25, "oov_char": None},
    {"seed": 7, "start_char": None},
    {"start_char": None, "index_from": 0},
    {"start_char": 5, "oov_char": 9, "index_from": 10, "num_words": 40},
]


def test_imdb_conventions(write_imdb: Callable[..., Path]) -> None:
    data_dir = write_imdb(vocab=50)
    (x_train, y_train), (x_test, y_test) = imdb(data_dir)
    assert x_train.shape == (60,)
    assert x_test.shape == (40,)
    assert x_train.dtype == object
    assert y_train.shape == (60,)
    assert y_test.shape == (40,)
    assert all(seq[0] == 1 for seq in (*x_train, *x_test))
    assert min(w for seq in x_train for w in seq[1:]) >= 2  # ranks from 1, plus index_from 3
    assert set(np.unique(np.concatenate([y_train, y_test]))) <= {0, 1}


def test_imdb_num_words_maps_rare_words_to_oov(write_imdb: Callable[..., Path]) -> None:
    data_dir = write_imdb(vocab=50)
    (x_train, _), (x_test, _) = imdb(data_dir, num_words=10)
    words = [w for seq in (*x_train, *x_test) for w in seq]
    assert max(words) < 10
    assert 2 in words  # rare words became oov_char
    (x_dropped, _), _ = imdb(data_dir, num_words=10, oov_char=None)
    assert 2 not in {w for seq in x_dropped for w in seq[1:]}


def test_imdb_maxlen_keeps_shorter_sequences(write_imdb: Callable[..., Path]) -> None:
    data_dir = write_imdb(max_len=30)
    (x_train, y_train), (x_test, _) = imdb(data_dir, maxlen=10)
    assert 0 < len(x_train) < 60
    assert len(x_train) == len(y_train)
    assert all(len(seq) < 10 for seq in (*x_train, *x_test))
    with pytest.raises(UsageError, match="maxlen=1"):
        imdb(data_dir, maxlen=1)


def test_imdb_seed_changes_order_reproducibly(write_imdb: Callable[..., Path]) -> None:
    data_dir = write_imdb()
    first = imdb(data_dir)[0][1]
    np.testing.assert_array_equal(first, imdb(data_dir)[0][1])
    assert not np.array_equal(first, imdb(data_dir, seed=1)[0][1])


def test_reuters_split_and_conventions(write_reuters: Callable[..., Path]) -> None:
    data_dir = write_reuters(n=100)
    (x_train, y_train), (x_test, y_test) = reuters(data_dir, num_words=30)
    assert len(x_train) == 80
    assert len(x_test) == 20
    assert y_train.shape == (80,)
    assert y_test.shape == (20,)
    assert all(seq[0] == 1 and max(seq) < 30 for seq in (*x_train, *x_test))
    (x_train, _), _ = reuters(data_dir, test_split=0.5)
    assert len(x_train) == 50


@pytest.mark.parametrize("kwargs", ARGUMENT_SETS, ids=lambda k: repr(k))
def test_imdb_matches_keras(
    kwargs: dict[str, Any],
    write_imdb: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    keras_module: Any,
    assert_same_result: Callable[[Any, Any], None],
) -> None:
    data_dir = write_imdb()
    from keras.src.datasets import imdb as keras_imdb

    monkeypatch.setattr(keras_imdb, "get_file", lambda *a, **k: str(data_dir / "imdb.npz"))
    assert_same_result(imdb(data_dir, **kwargs), keras_imdb.load_data(**kwargs))


@pytest.mark.parametrize(
    "kwargs", [*ARGUMENT_SETS, {"test_split": 0.35, "seed": 2}], ids=lambda k: repr(k)
)
def test_reuters_matches_keras(
    kwargs: dict[str, Any],
    write_reuters: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    keras_module: Any,
    assert_same_result: Callable[[Any, Any], None],
) -> None:
    data_dir = write_reuters()
    from keras.src.datasets import reuters as keras_reuters

    path = str(data_dir / "reuters.npz")
    monkeypatch.setattr(keras_reuters, "get_file", lambda *a, **k: path)
    assert_same_result(reuters(data_dir, **kwargs), keras_reuters.load_data(**kwargs))


def test_word_indexes_read_json(tmp_path: Path) -> None:
    (tmp_path / "imdb_word_index.json").write_text(json.dumps({"the": 1, "film": 2}))
    (tmp_path / "reuters_word_index.json").write_text(json.dumps({"said": 1}))
    assert imdb_word_index(tmp_path) == {"the": 1, "film": 2}
    assert reuters_word_index(tmp_path) == {"said": 1}
    with pytest.raises(DataNotFoundError, match=r"imdb_word_index\.json"):
        imdb_word_index(tmp_path / "empty")


def test_pickled_code_in_npz_is_refused(tmp_path: Path) -> None:
    """A tampered imdb.npz whose object array pickles a callable is rejected, not run."""
    bad = np.empty(1, dtype=object)
    bad[0] = len  # unpickling it would need builtins.len: refused
    np.savez(
        tmp_path / "imdb.npz", x_train=bad, y_train=np.zeros(1), x_test=bad, y_test=np.zeros(1)
    )
    with pytest.raises(DataNotFoundError, match=r"refusing to unpickle builtins\.len"):
        imdb(tmp_path)
