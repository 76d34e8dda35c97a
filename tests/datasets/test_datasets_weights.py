"""``vgg16_weights``: a local file, ``"imagenet"`` when downloadable, else a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.datasets import VGG16_NOTOP, _remote, vgg16_weights
from search.errors import DataNotFoundError


def test_given_path_is_returned(tmp_path: Path) -> None:
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"h5")
    assert vgg16_weights(weights) == str(weights)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        vgg16_weights(tmp_path / "missing.h5")


@pytest.mark.parametrize("subdir", ["", "models"])
def test_file_in_data_dir_is_found(tmp_path: Path, subdir: str) -> None:
    (tmp_path / subdir).mkdir(exist_ok=True)
    (tmp_path / subdir / VGG16_NOTOP).write_bytes(b"h5")
    assert vgg16_weights(data_dir=tmp_path) == str(tmp_path / subdir / VGG16_NOTOP)


def test_imagenet_only_when_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataNotFoundError, match=VGG16_NOTOP) as info:
        vgg16_weights(data_dir=tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "fetch vgg16" in str(info.value)
    monkeypatch.setattr(_remote, "internet_reachable", lambda *a, **k: True)
    assert vgg16_weights(data_dir=tmp_path) == "imagenet"


def test_imagenet_when_keras_has_it_cached(isolated_env: Path) -> None:
    (isolated_env / "models").mkdir(parents=True)
    (isolated_env / "models" / VGG16_NOTOP).write_bytes(b"h5")
    assert vgg16_weights() == "imagenet"
