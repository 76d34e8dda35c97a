"""``image_folder`` on small generated JPEGs in Kaggle's and PetImages' layouts.

Cats are drawn reddish and dogs bluish, so labels can be checked from the pixels. Each class
also gets files like PetImages' bad ones: empty, truncated, not a JPEG, and ``Thumbs.db``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.datasets import NotEnoughImagesError, image_folder
from search.errors import DataNotFoundError, UsageError

Image = pytest.importorskip("PIL.Image")

BAD_NAMES = ("empty", "truncated", "png", "garbage")


def _jpeg(label: int, seed: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
    pixels[..., 0 if label == 0 else 2] += 180
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _bad(kind: str) -> bytes:
    if kind == "empty":
        return b""
    if kind == "truncated":
        return _jpeg(0, 99)[:300]
    if kind == "png":
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, format="PNG")
        return buffer.getvalue()
    return b"\xff\xd8\xff" + b"\x00garbage" * 20


def _kaggle(root: Path, n_good: int) -> Path:
    """``train/cat.N.jpg``: bad files take the lowest numbers, so natural order meets them."""
    folder = root / "train"
    folder.mkdir(parents=True)
    for label, name in enumerate(("cat", "dog")):
        for i, kind in enumerate(BAD_NAMES):
            (folder / f"{name}.{i}.jpg").write_bytes(_bad(kind))
        for i in range(n_good):
            number = len(BAD_NAMES) + i
            (folder / f"{name}.{number}.jpg").write_bytes(_jpeg(label, 100 * label + i))
    (folder / "notes.txt").write_text("not an image and not labelled: ignored")
    return root


def _petimages(root: Path, n_good: int) -> Path:
    for label, name in enumerate(("Cat", "Dog")):
        folder = root / "PetImages" / name
        folder.mkdir(parents=True)
        (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 windows thumbnail cache")
        for i, kind in enumerate(BAD_NAMES):
            (folder / f"{i}.jpg").write_bytes(_bad(kind))
        for i in range(n_good):
            mode = "L" if (label, i) == (1, 0) else "RGB"  # PetImages has greyscale JPEGs
            (folder / f"{len(BAD_NAMES) + i}.jpg").write_bytes(
                _jpeg(label, 100 * label + i, mode=mode)
            )
    return root


@pytest.mark.parametrize("make", [_kaggle, _petimages], ids=["kaggle", "petimages"])
def test_book_order_split_counts_labels_and_skips(
    make: Callable[[Path, int], Path], tmp_path: Path
) -> None:
    root = make(tmp_path, 8)
    data = image_folder(root, image_size=(16, 20), split=(8, 4, 4), seed=None)
    assert data.layout == ("kaggle" if make is _kaggle else "petimages")
    assert data.x_train.shape == (8, 16, 20, 3)
    assert data.x_train.dtype == np.uint8
    assert data.x_val.shape == data.x_test.shape == (4, 16, 20, 3)
    for x, y in data.splits():
        assert np.bincount(y, minlength=2).tolist() == [len(y) // 2] * 2  # balanced
        red_is_cat = x[..., 0].mean(axis=(1, 2)) > x[..., 2].mean(axis=(1, 2))
        np.testing.assert_array_equal(red_is_cat, y == 0)  # cat = 0, dog = 1
    # Bad files sort first, so all are met; Thumbs.db sorts after the last image needed.
    assert data.n_skipped == 2 * len(BAD_NAMES)
    reasons = " ".join(s.reason for s in data.skipped)
    for word in ("empty file", "not a JPEG", "corrupt JPEG"):
        assert word in reasons
    assert not data.scaled


def test_seeded_split_is_reproducible_and_seed_dependent(tmp_path: Path) -> None:
    root = _kaggle(tmp_path, 12)
    first = image_folder(root, image_size=(8, 8), split=(8, 4, 4), seed=3)
    again = image_folder(root, image_size=(8, 8), split=(8, 4, 4), seed=3)
    other = image_folder(root, image_size=(8, 8), split=(8, 4, 4), seed=4)
    for a, b in zip(first.splits(), again.splits(), strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert first.skipped == again.skipped
    assert not np.array_equal(first.x_train, other.x_train)
    all_x = np.concatenate([first.x_train, first.x_val, first.x_test])
    assert len(np.unique(all_x.reshape(len(all_x), -1), axis=0)) == 16  # no image reused


def test_pixels_match_keras_load_img(tmp_path: Path, keras_module: Any) -> None:
    """Same decode + resize as keras.utils.load_img, i.e. the book's flow_from_directory."""
    root = _kaggle(tmp_path, 2)
    data = image_folder(root, image_size=(16, 20), split=(2, 0, 0), seed=None)
    want = np.asarray(
        keras_module.utils.load_img(root / "train" / "cat.4.jpg", target_size=(16, 20)),
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(data.x_train[0], want)


def test_too_few_images_raises_or_scales_down(tmp_path: Path) -> None:
    root = _petimages(tmp_path, 4)
    with pytest.raises(NotEnoughImagesError, match=r"4 cats \(need 8\)"):
        image_folder(root, image_size=(8, 8), split=(8, 4, 4))
    data = image_folder(root, image_size=(8, 8), split=(8, 4, 4), scale_down=True)
    assert data.scaled
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (4, 2, 2)
    assert data.n_skipped == 2 * (len(BAD_NAMES) + 1)


def test_layout_and_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist"):
        image_folder(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.jpg").write_bytes(_jpeg(0, 1))
    with pytest.raises(DataNotFoundError, match="PetImages layout"):
        image_folder(tmp_path / "other")
    with pytest.raises(UsageError, match="split="):
        image_folder(tmp_path, split=(1, 2))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="interpolation="):
        image_folder(tmp_path, interpolation="cubic")  # type: ignore[arg-type]
