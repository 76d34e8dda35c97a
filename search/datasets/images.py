"""Cats vs dogs from a folder of JPEGs, split 2,000 / 1,000 / 1,000 as the book does.

The book copies 1,000 + 500 + 500 images of each class out of Kaggle's ``train/`` folder;
Microsoft's PetImages archive holds the same photos as ``Cat/`` and ``Dog/`` folders, with a
few corrupt, empty or non-JPEG files (and ``Thumbs.db``). Decoding here, once, up front,
means a bad file is skipped and reported instead of crashing a run mid-epoch, and every
trial of a search sees the same uint8 arrays.

Images are decoded with Pillow and resized the way ``keras.utils.load_img`` (and so the
book's ``flow_from_directory``) does: converted to RGB, resized to ``(height, width)`` with
nearest-neighbour interpolation unless told otherwise.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np

from search.datasets._dirs import PathLike
from search.datasets.types import Array, Split
from search.errors import DataNotFoundError, UsageError

CLASS_NAMES = ("cat", "dog")
"""Label 0 is cat, 1 is dog, as in the book (alphabetical folder order)."""

Layout = Literal["kaggle", "petimages"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"]

_KAGGLE_NAME = re.compile(r"^(cat|dog)\.\d+\.[^.]+$", re.IGNORECASE)
_FOLDER_NAMES = ({"cat", "cats"}, {"dog", "dogs"})
_JPEG_MAGIC = b"\xff\xd8\xff"
_CHUNK = 64
_IN_MEMORY = re.compile(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


class NotEnoughImagesError(DataNotFoundError):
    """The folder holds fewer readable images of a class than the split asks for."""


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the dataset, and why (empty, not a JPEG, corrupt, unreadable)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ImageFolderData:
    """Decoded, resized, split images of a cats-vs-dogs folder.

    Attributes:
        x_train, x_val, x_test: uint8 arrays ``(n, height, width, 3)``.
        y_train, y_val, y_test: int64 labels, 0 = cat, 1 = dog.
        skipped: Files examined but left out, with reasons. Only files the split reached are
            examined, so a folder's other bad files are not listed.
        layout: ``"kaggle"`` (``cat.N.jpg`` / ``dog.N.jpg`` in one folder) or ``"petimages"``
            (``Cat/`` and ``Dog/`` folders).
        root: The folder the images were read from.
        scaled: True if ``scale_down`` shrank the split because images were missing.
    """

    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array
    x_test: Array
    y_test: Array
    skipped: tuple[SkippedFile, ...]
    layout: Layout
    root: Path
    scaled: bool = False
    class_names: tuple[str, ...] = field(default=CLASS_NAMES)

    @property
    def n_skipped(self) -> int:
        """How many files were skipped."""
        return len(self.skipped)

    def kfold_sets(self) -> tuple[Split, Split]:
        """``((x, y) of train + validation, (x, y) of test)``: a space's ``load_data`` result.

        K-fold validation replaces the book's fixed validation folder, so the training and
        validation images together are the set the folds are cut from.
        """
        return ((np.concatenate([self.x_train, self.x_val]),
                 np.concatenate([self.y_train, self.y_val])), (self.x_test, self.y_test))

    def splits(self) -> tuple[Split, Split, Split]:
        """Return ``((x_train, y_train), (x_val, y_val), (x_test, y_test))``."""
        return (self.x_train, self.y_train), (self.x_val, self.y_val), (self.x_test, self.y_test)


def _natural_key(path: Path) -> list[Any]:
    """Sort ``cat.2.jpg`` before ``cat.10.jpg``, as the book's file numbering intends."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file()), key=_natural_key)


def find_layout(root: Path) -> tuple[Layout, Path, list[list[Path]]]:
    """Recognise the folder layout and list each class's candidate files in natural order.

    Accepts the folder itself or its parent: ``PetImages/`` or the folder containing it,
    Kaggle's ``train/`` or the folder containing it.

    Raises:
        DataNotFoundError: If neither layout is found.
    """
    if not root.is_dir():
        raise DataNotFoundError(f"Image folder {root} does not exist.")
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    class_dirs = [
        next((subdirs[n] for n in sorted(names) if n in subdirs), None) for names in _FOLDER_NAMES
    ]
    if all(class_dirs):
        return "petimages", root, [_files(d) for d in class_dirs if d is not None]
    kaggle: list[list[Path]] = [[], []]
    for path in _files(root):
        match = _KAGGLE_NAME.match(path.name)
        if match:
            kaggle[CLASS_NAMES.index(match.group(1).lower())].append(path)
    if any(kaggle):
        return "kaggle", root, kaggle
    for name in ("petimages", "train"):
        if name in subdirs:
            return find_layout(subdirs[name])
    raise DataNotFoundError(
        f"{root} holds no cats-vs-dogs images: expected Kaggle's layout (cat.0.jpg, dog.0.jpg "
        "... in one folder, e.g. train/) or Microsoft's PetImages layout (Cat/ and Dog/ "
        "folders). Download one of them and pass its folder."
    )


def _per_class(total: int, n_classes: int) -> list[int]:
    """Share ``total`` between classes as evenly as possible (earlier classes get the rest)."""
    base, rest = divmod(total, n_classes)
    return [base + (1 if i < rest else 0) for i in range(n_classes)]


def _decode(path: Path, size: tuple[int, int], resample: int) -> Array | str:
    """Return the image as uint8 ``(h, w, 3)``, or the reason it cannot be used."""
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if not data:
        return "empty file"
    if not data.startswith(_JPEG_MAGIC):
        return f"not a JPEG (starts with {data[:4]!r})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgb = image if image.mode == "RGB" else image.convert("RGB")
                height, width = size
                if rgb.size != (width, height):
                    rgb = rgb.resize((width, height), resample)
                return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"corrupt JPEG: {_IN_MEMORY.sub('', str(exc)) or type(exc).__name__}"


def _decoded(
    files: Sequence[Path], size: tuple[int, int], resample: int, pool: ThreadPoolExecutor
) -> Iterator[tuple[Path, Array | str]]:
    """Decode files in order, a chunk at a time, so we stop soon after the quota is met."""
    it = iter(files)
    while chunk := list(islice(it, _CHUNK)):
        yield from zip(chunk, pool.map(lambda p: _decode(p, size, resample), chunk), strict=True)


def _check_args(image_size: Sequence[int], split: Sequence[int]) -> None:
    if len(image_size) != 2 or any(int(v) <= 0 for v in image_size):
        raise UsageError(f"`{image_size=}` must be two positive ints (height, width).")
    if len(split) != 3 or any(int(v) < 0 for v in split) or sum(split) == 0:
        raise UsageError(f"`{split=}` must be three non-negative counts (train, val, test).")


def _pillow_resample(interpolation: str) -> int:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("image_folder needs Pillow: `pip install pillow`.") from exc
    methods = {
        "nearest": Image.Resampling.NEAREST,
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
        "box": Image.Resampling.BOX,
        "hamming": Image.Resampling.HAMMING,
    }
    if interpolation not in methods:
        raise UsageError(f"`{interpolation=}` must be one of {', '.join(methods)}.")
    return int(methods[interpolation])


def _collect(
    by_class: list[list[Path]],
    needed: list[int],
    size: tuple[int, int],
    resample: int,
    workers: int,
) -> tuple[list[list[Array]], list[SkippedFile]]:
    """Decode each class's files in order until it has ``needed`` images; note skipped ones."""
    images: list[list[Array]] = [[] for _ in by_class]
    skipped: list[SkippedFile] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for c, files in enumerate(by_class):
            for file, outcome in _decoded(files, size, resample, pool):
                if len(images[c]) >= needed[c]:
                    break
                if isinstance(outcome, str):
                    skipped.append(SkippedFile(file, outcome))
                else:
                    images[c].append(outcome)
    return images, skipped


def _scaled_quotas(
    root: Path,
    split: Sequence[int],
    quotas: list[list[int]],
    images: list[list[Array]],
    needed: list[int],
    n_skipped: int,
    scale_down: bool,
) -> list[list[int]]:
    """Shrink every quota by the shortest class's shortfall, or explain why we cannot."""
    counts = ", ".join(
        f"{len(got)} {name}s (need {need})"
        for name, got, need in zip(CLASS_NAMES, images, needed, strict=True)
    )
    if not scale_down:
        raise NotEnoughImagesError(
            f"{root} has too few readable images for `{split=}`: {counts}; {n_skipped} files "
            "skipped. Add images, ask for a smaller split, or pass scale_down=True."
        )
    factor = min(len(got) / need for got, need in zip(images, needed, strict=True) if need)
    scaled = [[int(q * factor) for q in subset] for subset in quotas]
    if any(sum(new) == 0 and int(old) > 0 for new, old in zip(scaled, split, strict=True)):
        raise NotEnoughImagesError(
            f"{root} has too few readable images even scaled down: {counts}."
        )
    return scaled


def _assemble(
    images: list[list[Array]],
    quotas: list[list[int]],
    size: tuple[int, int],
    rng: np.random.Generator | None,
) -> list[Split]:
    """Deal each class's images out to the subsets in order, then mix classes per subset."""
    subsets: list[Split] = []
    start = [0] * len(images)
    for subset in quotas:
        xs: list[Array] = []
        ys: list[int] = []
        for c, count in enumerate(subset):
            xs.extend(images[c][start[c] : start[c] + count])
            ys.extend([c] * count)
            start[c] += count
        x = np.stack(xs) if xs else np.empty((0, *size, 3), dtype=np.uint8)
        y = np.asarray(ys, dtype=np.int64)
        if rng is not None:
            order = rng.permutation(len(y))
            x, y = x[order], y[order]
        subsets.append((x, y))
    return subsets


def image_folder(
    path: PathLike,
    *,
    image_size: tuple[int, int] = (150, 150),
    split: tuple[int, int, int] = (2000, 1000, 1000),
    seed: int | None = 113,
    scale_down: bool = False,
    interpolation: Interpolation = "nearest",
    workers: int | None = None,
) -> ImageFolderData:
    """Load a balanced train/validation/test split of cat and dog JPEGs.

    Each class's files are taken in a seeded random order (``seed=None``: natural file order,
    i.e. the book's ``cat.0``-``cat.999`` train, ``cat.1000``-``cat.1499`` validation, ...)
    and decoded until every subset has its share: half of each count per class. Files that
    are empty, not JPEGs, truncated or corrupt are skipped and reported in ``skipped``; the
    next file takes their place. Within each subset the classes are shuffled together with
    the same seed (``seed=None``: cats first).

    Args:
        path: The image folder (Kaggle's ``train/``, ``PetImages/``, or a folder holding one).
        image_size: ``(height, width)`` every image is resized to.
        split: Image counts ``(train, validation, test)``; odd counts give cats one more.
        seed: Seed of the file order and subset shuffles; ``None`` keeps the file order.
        scale_down: If a class has too few readable images, shrink all three counts by the
            same factor instead of raising (``ImageFolderData.scaled`` is then True).
        interpolation: Pillow resampling for the resize; Keras' ``load_img`` default is
            ``"nearest"``.
        workers: Decoding threads (Pillow releases the GIL); default ``min(4, cpu_count)``.

    Returns:
        The split images with labels 0 = cat, 1 = dog, and the list of skipped files.

    Raises:
        DataNotFoundError: If the folder is missing or in neither layout.
        NotEnoughImagesError: If a class lacks readable images and ``scale_down`` is False.
        UsageError: If ``image_size``, ``split`` or ``interpolation`` is invalid.
    """
    _check_args(image_size, split)
    resample = _pillow_resample(interpolation)
    size = (int(image_size[0]), int(image_size[1]))
    layout, root, by_class = find_layout(Path(path).expanduser())
    rng = np.random.default_rng(seed) if seed is not None else None
    if rng is not None:
        by_class = [[files[i] for i in rng.permutation(len(files))] for files in by_class]

    quotas = [_per_class(int(total), len(CLASS_NAMES)) for total in split]  # [subset][class]
    needed = [sum(subset[c] for subset in quotas) for c in range(len(CLASS_NAMES))]
    workers = workers or min(4, os.cpu_count() or 1)
    images, skipped = _collect(by_class, needed, size, resample, workers)
    scaled = any(len(got) < need for got, need in zip(images, needed, strict=True))
    if scaled:
        quotas = _scaled_quotas(root, split, quotas, images, needed, len(skipped), scale_down)
    subsets = _assemble(images, quotas, size, rng)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = subsets
    return ImageFolderData(
        x_train, y_train, x_val, y_val, x_test, y_test, tuple(skipped), layout, root, scaled
    )


__all__ = [
    "CLASS_NAMES",
    "ImageFolderData",
    "NotEnoughImagesError",
    "SkippedFile",
    "find_layout",
    "image_folder",
]


CATS_DOGS_DIR_ENV = "SEARCH_CATS_DOGS_DIR"
"""Environment variable naming the cats-vs-dogs image folder directly."""

CATS_DOGS_FOLDERS = ("PetImages", "dogs-vs-cats/train", "dogs-vs-cats", "train")
"""Where, inside a data directory, the cats-vs-dogs images are looked for (in this order)."""


def cats_vs_dogs_dir(data_dir: PathLike | None = None) -> Path:
    """The cats-vs-dogs folder: ``$SEARCH_CATS_DOGS_DIR``, else one inside the data dir.

    Raises:
        DataNotFoundError: naming the folders looked for and how to point at one.
    """
    from search.datasets._dirs import DATA_DIR_ENV

    if os.environ.get(CATS_DOGS_DIR_ENV, "").strip():
        return Path(os.environ[CATS_DOGS_DIR_ENV].strip()).expanduser()
    root = data_dir or os.environ.get(DATA_DIR_ENV, "").strip()
    if not root:
        raise DataNotFoundError(
            f"No cats-vs-dogs images: set {CATS_DOGS_DIR_ENV}=FOLDER, or pass --data-dir DIR "
            f"(or set {DATA_DIR_ENV}) with one of {', '.join(CATS_DOGS_FOLDERS)} inside it.")
    for name in CATS_DOGS_FOLDERS:
        if (Path(root).expanduser() / name).is_dir():
            return Path(root).expanduser() / name
    raise DataNotFoundError(
        f"No cats-vs-dogs images in {root}: expected one of {', '.join(CATS_DOGS_FOLDERS)} "
        f"(Microsoft's PetImages archive or Kaggle's dogs-vs-cats train folder), or set "
        f"{CATS_DOGS_DIR_ENV}=FOLDER.")


def cats_vs_dogs(data_dir: PathLike | None = None, *, image_size: tuple[int, int] = (150, 150),
                 split: tuple[int, int, int] = (2000, 1000, 1000),
                 scale_down: bool = False) -> ImageFolderData:
    """The book's cats-vs-dogs split from :func:`cats_vs_dogs_dir`; skipped files are logged.

    Spaces use ``train + val`` as the K-fold training set (K-fold validation replaces the
    book's fixed validation folder) and ``test`` as the test set.
    """
    data = image_folder(cats_vs_dogs_dir(data_dir), image_size=image_size, split=split,
                        scale_down=scale_down)
    if data.skipped:
        reasons = Counter(s.reason.split(":")[0].split(" (")[0] for s in data.skipped)
        logging.getLogger("search.datasets").warning(
            "skipped %d unusable image files in %s: %s", len(data.skipped), data.root,
            ", ".join(f"{n} {why}" for why, n in reasons.items()))
    return data
