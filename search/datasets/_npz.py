"""Reading and writing Keras-layout ``.npz`` files safely and atomically.

IMDB and Reuters store ragged word-rank lists as object arrays, which ``np.load`` only opens
with ``allow_pickle=True`` -- and that would run any code a tampered file carries. Like Keras 3
(``keras/src/datasets/npz_utils.py``) we unpickle with a whitelist of the three numpy globals
an array needs. Writes go through a temporary file and ``os.replace`` so a crash never
leaves a truncated file that a later run would read as data.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class Readable(Protocol):
    """A binary file opened for reading, as ``pickle.Unpickler`` needs it."""

    def read(self, size: int = ..., /) -> bytes:
        """Read up to ``size`` bytes."""
        ...

    def readline(self, size: int = ..., /) -> bytes:
        """Read one line."""
        ...


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        """Allow the numpy array globals only, so a pickle cannot call arbitrary code."""
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def restricted_pickle_load(handle: Readable, *, encoding: str = "ASCII") -> Any:
    """Load a pickle made only of numpy arrays, tuples, lists and numbers."""
    return RestrictedUnpickler(handle, encoding=encoding).load()


def _read_member(buffer: io.BytesIO) -> np.ndarray:
    try:
        return np.lib.format.read_array(buffer, allow_pickle=False)
    except ValueError:
        buffer.seek(0)
        major, _minor = np.lib.format.read_magic(buffer)
        if major == 1:
            np.lib.format.read_array_header_1_0(buffer)
        elif major in (2, 3):
            np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"unsupported .npy format version {major}") from None
        array = restricted_pickle_load(buffer, encoding="latin1")
        if not isinstance(array, np.ndarray):
            raise ValueError("object member did not unpickle to an array") from None
        return array


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` archive, object arrays included, without exec risk."""
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    arrays[member[: -len(".npy")]] = _read_member(io.BytesIO(raw.read()))
    return arrays


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``dest`` that replaces ``dest`` if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=dest.suffix, dir=dest.parent
    )
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def save_npz(dest: Path, *, compress: bool = True, **arrays: np.ndarray) -> Path:
    """Write arrays to ``dest`` as an ``.npz`` atomically; object arrays are pickled."""
    writer: Callable[..., None] = np.savez_compressed if compress else np.savez
    with atomic_path(dest) as tmp, tmp.open("wb") as handle:
        writer(handle, **arrays)
    return dest
