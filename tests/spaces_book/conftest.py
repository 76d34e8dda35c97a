"""Fixtures for the book spaces' tests: real Keras, tiny data in Keras' file layouts, no network.

Each test gets an empty Keras cache, no data-directory variable and ``SEARCH_OFFLINE=1``, so
a space can only see the files a test wrote. Data is written in the layouts the spaces'
loaders read (``mnist.npz``, ``imdb.npz`` with raw word ranks, ``reuters.npz``, a
``PetImages/`` folder of JPEGs) so every test goes through the real ``load_data``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.folds import make_folds
from search.hp import FixedHP
from search.space import Space, load_space

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPACES = Path(__file__).resolve().parents[2] / "spaces"


Ragged = Callable[[np.random.Generator, int, int, int], np.ndarray]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("SEARCH_OFFLINE", "1")
    for name in ("SEARCH_DATA_DIR", "SEARCH_VGG16_WEIGHTS", "SEARCH_CATS_DOGS_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def book_space() -> Callable[[str], Space]:
    """Load ``spaces/<name>.py`` afresh (module settings start from the file's values)."""
    return lambda name: load_space(SPACES / f"{name}.py")


def describe(model: Any) -> list[tuple[Any, ...]]:
    """Each layer as (type, sizes..., activation): what the book's listings specify."""
    rows = []
    for layer in model.layers:
        row: list[Any] = [type(layer).__name__]
        for attr in ("input_dim", "output_dim", "units", "filters", "kernel_size", "pool_size",
                     "rate"):
            if hasattr(layer, attr):
                value = getattr(layer, attr)
                row.append(tuple(value) if isinstance(value, (list, tuple)) else value)
        activation = getattr(layer, "activation", None)
        if activation is not None and row[0] != "Activation":
            row.append(activation.__name__)
        rows.append(tuple(row))
    return rows


@pytest.fixture
def layers_of() -> Callable[[Any], list[tuple[Any, ...]]]:
    return describe


def run_default_trial(space: Space, data_dir: Path | None, **params: Any) -> Any:
    """Load through the space, make 2 folds, run the default point (``params`` override)."""
    from search.trial import Dataset, run_trial

    (x_train, y_train), (x_test, y_test) = space.load_data(data_dir)
    data = Dataset(x_train, np.asarray(y_train), x_test, np.asarray(y_test))
    fold_of = make_folds(data.y_train, space.task, 2, 0)
    result = run_trial(space, FixedHP(params), data, fold_of=fold_of, number=0, seed=0)
    assert result.record.status == "complete", result.record.error
    assert [f.epochs_run for f in result.record.folds] == [params.get("epochs", 1)] * 2
    assert result.oof.shape[0] == len(data.y_train) and not np.isnan(result.oof).any()
    assert result.test_pred is not None and len(result.test_pred) == len(data.y_test)
    return result


@pytest.fixture
def run_default() -> Callable[..., Any]:
    return run_default_trial



@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def write_mnist(data_dir: Path) -> Callable[..., Path]:
    def write(n_train: int = 40, n_test: int = 20) -> Path:
        rng = np.random.default_rng(0)
        np.savez(
            data_dir / "mnist.npz",
            x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            y_train=(np.arange(n_train) % 10).astype(np.uint8),
            x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            y_test=(np.arange(n_test) % 10).astype(np.uint8),
        )
        return data_dir

    return write


@pytest.fixture
def write_imdb(data_dir: Path, ragged: Ragged) -> Callable[..., Path]:
    """Raw ranks up to ``vocab`` (beyond num_words, so clipping to oov_char is exercised)."""

    def write(n_train: int = 40, n_test: int = 20, vocab: int = 12000,
              max_len: int = 60) -> Path:
        rng = np.random.default_rng(1)
        np.savez(
            data_dir / "imdb.npz",
            x_train=ragged(rng, n_train, vocab, max_len),
            y_train=np.arange(n_train) % 2,
            x_test=ragged(rng, n_test, vocab, max_len),
            y_test=np.arange(n_test) % 2,
        )
        return data_dir

    return write


@pytest.fixture
def write_reuters(data_dir: Path, ragged: Ragged) -> Callable[..., Path]:
    def write(n: int = 130, classes: int = 52, vocab: int = 12000, max_len: int = 40) -> Path:
        rng = np.random.default_rng(2)
        np.savez(data_dir / "reuters.npz", x=ragged(rng, n, vocab, max_len),
                 y=np.arange(n) % classes)
        return data_dir

    return write


def _jpeg(label: int, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (30, 40, 3), dtype=np.uint8)
    pixels[..., 0 if label == 0 else 2] += 180  # cats reddish, dogs bluish
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture
def write_pets(data_dir: Path) -> Callable[..., Path]:
    """``PetImages/Cat`` and ``Dog`` with ``n_good`` small JPEGs each, plus PetImages' junk:
    an empty file, a truncated JPEG and a ``Thumbs.db`` per class."""

    def write(n_good: int = 8) -> Path:
        for label, name in enumerate(("Cat", "Dog")):
            folder = data_dir / "PetImages" / name
            folder.mkdir(parents=True)
            for i in range(n_good):
                (folder / f"{i}.jpg").write_bytes(_jpeg(label, 100 * label + i))
            (folder / "666.jpg").write_bytes(b"")
            (folder / "667.jpg").write_bytes(_jpeg(label, 999)[:200])
            (folder / "Thumbs.db").write_bytes(b"\x00" * 64)
        return data_dir

    return write
