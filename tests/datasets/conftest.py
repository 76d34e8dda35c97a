"""Fixtures for the dataset tests: no network, an empty Keras cache, small Keras-layout files.

Every test runs with the network probe answering "unreachable" and ``KERAS_HOME`` pointing at
an empty temporary folder, so no test depends on (or uses) the real internet or the real
``~/.keras`` cache. Tests that need a "reachable" network patch the probe back and serve
files from a local HTTP server.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.datasets import _remote

Ragged = Callable[[np.random.Generator, int, int, int], np.ndarray]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network, no data-dir variable, an empty Keras cache; returns the Keras home."""
    keras_home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv("SEARCH_DATA_DIR", raising=False)
    monkeypatch.delenv(_remote.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(_remote, "internet_reachable", lambda *a, **k: False)
    return keras_home


@pytest.fixture
def keras_module() -> object:
    """Import Keras only for the tests that compare against it (slow to import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")



@pytest.fixture
def write_imdb(tmp_path: Path, ragged: Ragged) -> Callable[..., Path]:
    """Write a small ``imdb.npz`` (raw ranks, 0/1 labels) into ``tmp_path/data``."""

    def write(n_train: int = 60, n_test: int = 40, vocab: int = 50, max_len: int = 30) -> Path:
        rng = np.random.default_rng(0)
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        np.savez(
            data_dir / "imdb.npz",
            x_train=ragged(rng, n_train, vocab, max_len),
            y_train=rng.integers(0, 2, n_train),
            x_test=ragged(rng, n_test, vocab, max_len),
            y_test=rng.integers(0, 2, n_test),
        )
        return data_dir

    return write


@pytest.fixture
def write_reuters(tmp_path: Path, ragged: Ragged) -> Callable[..., Path]:
    """Write a small ``reuters.npz`` (raw ranks, 46 topics) into ``tmp_path/data``."""

    def write(n: int = 100, vocab: int = 60, max_len: int = 40) -> Path:
        rng = np.random.default_rng(1)
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        np.savez(
            data_dir / "reuters.npz", x=ragged(rng, n, vocab, max_len), y=rng.integers(0, 46, n)
        )
        return data_dir

    return write


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def write_idx() -> Callable[[Path, np.ndarray], None]:
    """Return a writer of gzipped IDX files (magic, dims, then bytes), as Zalando ships them."""
    return _write_idx


def _assert_same_result(ours: Any, theirs: Any) -> None:
    (our_train, our_test), (their_train, their_test) = ours, theirs
    for got, want in zip((*our_train, *our_test), (*their_train, *their_test), strict=True):
        assert type(got) is type(want)
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        if got.dtype == object:
            assert [list(g) for g in got] == [list(w) for w in want]
        else:
            np.testing.assert_array_equal(got, want)


@pytest.fixture
def assert_same_result() -> Callable[[Any, Any], None]:
    """Assert two ``((x_train, y_train), (x_test, y_test))`` results are identical."""
    return _assert_same_result
