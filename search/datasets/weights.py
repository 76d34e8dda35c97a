"""Where VGG16's ImageNet weights come from: a local file, or Keras' download.

``keras.applications.VGG16(weights=...)`` accepts either ``"imagenet"`` (download, or Keras'
cache) or a path to a weights file. Workers without internet need the path; this helper
picks, so model code stays the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

from search.datasets import _remote
from search.datasets._dirs import PathLike, describe_data_dir, keras_cache_dir, resolve_data_dir
from search.datasets.catalog import ENTRIES, VGG16_NOTOP
from search.errors import DataNotFoundError


def vgg16_weights(path_or_none: PathLike | None = None, *, data_dir: PathLike | None = None) -> str:
    """Return what to pass as ``VGG16(weights=..., include_top=False)``.

    Order: the given file; else ``<data_dir>/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``
    (also looked for in ``<data_dir>/models/``, Keras' cache layout); else ``"imagenet"`` if
    Keras has the file cached or the internet is reachable.

    Args:
        path_or_none: A weights file to use; it must exist.
        data_dir: Data directory to look in; defaults to ``$SEARCH_DATA_DIR``.

    Returns:
        A local file path, or the string ``"imagenet"``.

    Raises:
        DataNotFoundError: If the given file does not exist, or no file is local and Keras
            cannot download one; the message names the file and where to put it.
    """
    if path_or_none is not None:
        given = Path(path_or_none).expanduser()
        if not given.is_file():
            raise DataNotFoundError(
                f"VGG16 weights file {given} does not exist; pass an existing .h5 file "
                f"(Keras' {VGG16_NOTOP}) or omit it to use the data directory."
            )
        return str(given)
    root = resolve_data_dir(data_dir)
    if root is not None:
        for candidate in (root / VGG16_NOTOP, root / "models" / VGG16_NOTOP):
            if candidate.is_file():
                return str(candidate)
    entry = ENTRIES["vgg16"]
    cached = keras_cache_dir() / entry.keras_subdir / VGG16_NOTOP
    if cached.is_file() or _remote.internet_reachable():
        return "imagenet"
    where = str(root) if root is not None else "DIR"
    raise DataNotFoundError(
        f"VGG16 ImageNet weights not found: {VGG16_NOTOP} is not local "
        f"({describe_data_dir(root, data_dir is not None)}; not in Keras' cache "
        f"{cached.parent}) and the internet is unreachable. Put the file into {where} (or pass "
        f"its path); get it "
        f"with `python -m search data fetch vgg16 --data-dir {where}` on a machine with "
        f"internet, or from {entry.files[0].origin}."
    )
