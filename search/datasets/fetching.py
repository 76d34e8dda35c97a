"""Fill a data directory on a machine with internet; report what a directory holds.

Cluster workers often have no internet: run ``fetch`` once where there is, copy the
directory, and point ``--data-dir`` / ``$SEARCH_DATA_DIR`` at it. Both functions return data
and never print; the CLI (``python -m search data fetch/list``) renders them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from search.datasets import _remote
from search.datasets._dirs import DATA_DIR_ENV, PathLike, resolve_data_dir
from search.datasets.catalog import ENTRIES, Entry, get_entry
from search.errors import DataNotFoundError, UsageError


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch`` did for one name.

    Attributes:
        name: Catalog name (``mnist``, ``fashion_mnist``, ...).
        paths: Every file of the entry, now present in the data directory.
        status: ``"downloaded"`` if at least one file was downloaded, ``"present"`` if all
            were already there (and matched Keras' hash where Keras has one).
    """

    name: str
    paths: tuple[Path, ...]
    status: Literal["downloaded", "present"]


class LocalEntry(NamedTuple):
    """One row of ``list_local``: ``(name, present, path)``.

    ``path`` is where the entry's file (or folder, for Fashion-MNIST) is or belongs;
    ``present`` means every file of the entry is there.
    """

    name: str
    present: bool
    path: Path


def _is_current(path: Path, file_hash: str | None) -> bool:
    return path.is_file() and (file_hash is None or _remote.hash_matches(path, file_hash))


def _names(names: str | Iterable[str]) -> list[Entry]:
    wanted = [names] if isinstance(names, str) else list(names)
    if any(name.strip().lower() == "all" for name in wanted):
        return list(ENTRIES.values())
    if not wanted:
        raise UsageError(f"No dataset named; choose from: all, {', '.join(ENTRIES)}.")
    entries = [get_entry(name) for name in wanted]
    return list(dict.fromkeys(entries))


def _writable_dir(data_dir: PathLike | None) -> Path:
    target = resolve_data_dir(data_dir)
    if target is None:
        raise UsageError(f"No data directory: pass --data-dir DIR or set {DATA_DIR_ENV}=DIR.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"Cannot create data directory {target}: {exc}.") from exc
    if not os.access(target, os.W_OK):
        raise UsageError(f"Data directory {target} is not writable.")
    return target


def fetch(
    names: str | Iterable[str],
    data_dir: PathLike | None = None,
    *,
    force: bool = False,
    progress: _remote.Progress | None = None,
) -> list[FetchResult]:
    """Download datasets into ``data_dir`` in Keras' cache layout.

    Files already present and matching Keras' hash are kept. A file that differs -- for
    instance an offline stand-in -- is replaced by the real one; the replacement is atomic,
    so a failed download leaves the old file in place.

    Args:
        names: Catalog names (``"all"`` for everything): mnist, fashion_mnist,
            boston_housing, imdb, imdb_word_index, reuters, reuters_word_index, vgg16.
        data_dir: Target directory; defaults to ``$SEARCH_DATA_DIR``. Created if missing.
        force: Download even files that are present and current.
        progress: Optional ``progress(file_name, bytes_done, total_or_None)`` callback.

    Returns:
        One ``FetchResult`` per name, in the order given.

    Raises:
        UsageError: Unknown name, or no usable data directory.
        DataNotFoundError: A download failed (no internet, HTTP error, hash mismatch); names
            already fetched stay fetched.
    """
    entries = _names(names)
    target = _writable_dir(data_dir)
    results: list[FetchResult] = []
    for entry in entries:
        paths = tuple(target / f.relpath for f in entry.files)
        todo = [
            (data_file, path)
            for data_file, path in zip(entry.files, paths, strict=True)
            if force or not _is_current(path, data_file.file_hash)
        ]
        if todo and not _remote.internet_reachable():
            raise DataNotFoundError(
                f"Cannot fetch {entry.name}: no internet ({_remote.PROBE_HOST}:443 unreachable "
                f"or {_remote.OFFLINE_ENV} set). Run the fetch on a machine with internet and "
                f"copy {target} here."
                + (
                    f" Without internet: {entry.offline_hint.replace('DIR', str(target))}."
                    if entry.offline_hint
                    else ""
                )
            )
        for data_file, path in todo:
            try:
                _remote.download(data_file, path, progress=progress)
            except _remote.DownloadError as exc:
                raise DataNotFoundError(f"Cannot fetch {entry.name}: {exc}") from exc
        results.append(FetchResult(entry.name, paths, "downloaded" if todo else "present"))
    return results


def list_local(data_dir: PathLike | None = None) -> list[LocalEntry]:
    """Describe which catalog entries a data directory holds.

    Presence means the files exist; hashes are not checked, because files rebuilt offline
    are valid data whose bytes differ from Keras'.

    Args:
        data_dir: Directory to inspect; defaults to ``$SEARCH_DATA_DIR``.

    Raises:
        UsageError: If no data directory is given or set.
    """
    root = resolve_data_dir(data_dir)
    if root is None:
        raise UsageError(f"No data directory: pass --data-dir DIR or set {DATA_DIR_ENV}=DIR.")
    return [
        LocalEntry(
            entry.name,
            all((root / f.relpath).is_file() for f in entry.files),
            root / entry.location.rstrip("/"),
        )
        for entry in ENTRIES.values()
    ]
