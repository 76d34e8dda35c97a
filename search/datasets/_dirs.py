"""Where datasets live: the project's data directory and Keras' own download cache.

The data directory holds files in exactly the layouts Keras caches them under
``~/.keras/datasets`` (``mnist.npz``, ``fashion-mnist/*.gz`` ...), so a directory filled on a
machine with internet (``python -m search data fetch``) or by the offline builders can be
copied to cluster workers that have none. Keras' cache is consulted second because a file
Keras already downloaded needs no network.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "SEARCH_DATA_DIR"
"""Environment variable naming the data directory when no ``data_dir`` argument is given."""

PathLike = str | os.PathLike[str]


def resolve_data_dir(data_dir: PathLike | None) -> Path | None:
    """Return the data directory to read from, or ``None`` if none is configured.

    The explicit argument wins over ``$SEARCH_DATA_DIR`` so that a ``--data-dir`` flag can
    override a site-wide setting; an empty variable counts as unset.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else None


def describe_data_dir(data_dir: Path | None, explicit: bool) -> str:
    """Say which data directory was searched and where that setting came from, for messages."""
    if data_dir is None:
        return f"no data directory is set (pass --data-dir DIR or set {DATA_DIR_ENV}=DIR)"
    origin = "given as data_dir" if explicit else f"from {DATA_DIR_ENV}"
    missing = "" if data_dir.is_dir() else ", which does not exist"
    return f"data directory {data_dir} ({origin}{missing})"


def keras_cache_dir() -> Path:
    """Return Keras' cache root the way ``keras.src.backend.config`` picks it.

    Keras uses ``$KERAS_HOME`` if set, else ``~/.keras`` (``/tmp/.keras`` when the home folder
    is not writable); we mirror it so a file we download is found by ``keras.datasets`` too,
    and one Keras already downloaded is found by us without network.
    """
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    base = Path.home()
    if not os.access(base, os.W_OK):
        base = Path("/tmp")
    return base / ".keras"
