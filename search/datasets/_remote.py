"""Network access for datasets: a fast reachability probe and a hash-checked download.

Offline, ``urllib`` can block for minutes on DNS or dropped packets, and Keras' ``get_file``
sets no timeout; a search worker must instead fail within seconds with a message saying which
file to copy where. So every download is preceded by a short probe, and ``SEARCH_OFFLINE=1``
skips the network entirely (for clusters known to have none).
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from search.datasets.catalog import DataFile

OFFLINE_ENV = "SEARCH_OFFLINE"
"""Set to a non-empty value other than ``0`` to never try the network."""

PROBE_HOST = "storage.googleapis.com"
"""Where Keras' datasets and weights are served from; reachable means downloads can work."""

PROBE_TIMEOUT_S = 3.0
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK = 1 << 20

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(file_name, bytes_so_far, total_bytes_or_None)`` during downloads."""


class DownloadError(OSError):
    """A download failed (no route, HTTP error, timeout, hash mismatch)."""


def offline_forced() -> bool:
    """Whether ``$SEARCH_OFFLINE`` forbids network access."""
    return os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0")


def _probe_target(host: str, port: int) -> tuple[str, int]:
    """Probe the HTTPS proxy instead of the host when one is configured, as urllib would."""
    proxy = urllib.request.getproxies().get("https")
    if not proxy:
        return host, port
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return parsed.hostname or host, parsed.port or 8080


def internet_reachable(
    host: str = PROBE_HOST, port: int = 443, timeout: float = PROBE_TIMEOUT_S
) -> bool:
    """Return whether a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    The connection runs in a daemon thread because name resolution ignores socket timeouts
    and can hang far longer than ``timeout`` on a machine without DNS.
    """
    if offline_forced():
        return False
    target = _probe_target(host, port)
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=probe, name="search-net-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome and outcome[0])


def hash_matches(path: Path, file_hash: str) -> bool:
    """Check a file against a Keras-style hash (SHA-256 if 64 hex digits, else MD5)."""
    digest = hashlib.sha256() if len(file_hash) == 64 else hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest() == file_hash.lower()


def download(
    data_file: DataFile,
    dest: Path,
    *,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    progress: Progress | None = None,
) -> Path:
    """Download ``data_file.origin`` to ``dest`` atomically and verify its hash.

    The bytes go to a temporary file next to ``dest`` that replaces it only once complete
    and verified, so an interrupted or corrupt download never leaves a half file that a
    later run would take for data.

    Raises:
        DownloadError: On any network failure, timeout or hash mismatch.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            _copy_url(data_file.origin, out, timeout, data_file.filename, progress)
        if data_file.file_hash and not hash_matches(tmp, data_file.file_hash):
            raise DownloadError(
                f"{data_file.origin} downloaded, but its hash differs from Keras' "
                f"{data_file.file_hash}; the download is corrupt or the file changed."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _copy_url(
    url: str, out: BinaryIO, timeout: float, name: str, progress: Progress | None
) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while block := response.read(_CHUNK):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(name, done, total)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"could not download {url}: {reason}") from exc
