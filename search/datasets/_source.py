"""Find a dataset's files: data directory first, then Keras' cache, then a download.

Every loader goes through ``locate`` so the source order and the "what to do" message are
the same for all datasets. Reaching the third step on a machine without internet raises
``DataNotFoundError`` within seconds, naming the file, the directory to put it in and how
to get it.
"""

from __future__ import annotations

from pathlib import Path

from search.datasets import _remote
from search.datasets._dirs import (
    DATA_DIR_ENV,
    PathLike,
    describe_data_dir,
    keras_cache_dir,
    resolve_data_dir,
)
from search.datasets.catalog import Entry
from search.errors import DataNotFoundError


def locate(entry: Entry, data_dir: PathLike | None) -> list[Path]:
    """Return the paths of ``entry``'s files, in ``entry.files`` order.

    Files in the data directory are used as they are (no hash check: offline builders write
    rebuilt files whose bytes differ from Keras'); files in Keras' cache must match Keras'
    hash, as ``keras.utils.get_file`` demands; missing ones are downloaded into Keras' cache.

    Raises:
        DataNotFoundError: If the files are neither local nor downloadable.
    """
    resolved = resolve_data_dir(data_dir)
    if resolved is not None:
        local = [resolved / f.relpath for f in entry.files]
        if all(path.is_file() for path in local):
            return local

    cache = keras_cache_dir() / entry.keras_subdir
    cached = [cache / f.filename for f in entry.files]
    stale = [
        (data_file, path)
        for data_file, path in zip(entry.files, cached, strict=True)
        if not path.is_file()
        or (data_file.file_hash and not _remote.hash_matches(path, data_file.file_hash))
    ]
    if not stale:
        return cached

    if _remote.offline_forced():
        reason = f"{_remote.OFFLINE_ENV} is set"
    elif not _remote.internet_reachable():
        reason = (
            f"no internet: {_remote.PROBE_HOST}:443 unreachable within "
            f"{_remote.PROBE_TIMEOUT_S:g} s"
        )
    else:
        try:
            for data_file, path in stale:
                _remote.download(data_file, path)
        except _remote.DownloadError as exc:
            reason = str(exc)
        else:
            return cached
    raise missing_error(entry, resolved, explicit=data_dir is not None, reason=reason)


def missing_error(
    entry: Entry, data_dir: Path | None, *, explicit: bool, reason: str
) -> DataNotFoundError:
    """Build the one-paragraph message: what is missing, where to put it, how to get it."""
    if data_dir is not None:
        missing = [f.relpath for f in entry.files if not (data_dir / f.relpath).is_file()]
    else:
        missing = [f.relpath for f in entry.files]
    where = str(data_dir) if data_dir is not None else "DIR"
    origins = " ".join(f.origin for f in entry.files)
    message = (
        f"{entry.name}: {', '.join(missing)} not found ({describe_data_dir(data_dir, explicit)}"
        f"; not in Keras' cache {keras_cache_dir() / entry.keras_subdir}) and cannot be "
        f"downloaded ({reason}). Put {entry.location} ({entry.layout}) into {where} and pass "
        f"--data-dir {where} or set {DATA_DIR_ENV}={where}. To get it, run "
        f"`python -m search data fetch {entry.name} --data-dir {where}` on a machine with "
        f"internet and copy the directory here, or download {origins}"
    )
    if entry.offline_hint:
        message += f". Without internet: {entry.offline_hint.replace('DIR', where)}"
    return DataNotFoundError(message + ".")


def invalid_file_error(entry: Entry, path: Path, problem: object) -> DataNotFoundError:
    """Report a file that exists but is not in the Keras layout, saying how to replace it."""
    return DataNotFoundError(
        f"{entry.name}: {path} is not a valid Keras-layout file ({problem}); expected "
        f"{entry.layout}. Delete it and fetch or rebuild it "
        f"(`python -m search data fetch {entry.name} --data-dir DIR`)."
    )
