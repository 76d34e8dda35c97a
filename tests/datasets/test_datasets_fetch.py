"""``fetch`` and ``list_local``, downloading from a local HTTP server (never the internet)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from search.datasets import _remote, catalog, fetch, list_local, mnist
from search.errors import DataNotFoundError, UsageError


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """Serve ``tmp_path/www`` on 127.0.0.1 and mark the network reachable."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setattr(_remote, "internet_reachable", lambda *a, **k: True)
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serve files without logging requests to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        """Stay silent."""


def _serve_mnist(
    www: Path, base: str, monkeypatch: pytest.MonkeyPatch, corrupt_hash: bool = False
) -> Path:
    source = www / "mnist.npz"
    np.savez(
        source,
        x_train=np.ones((2, 28, 28), np.uint8),
        y_train=np.ones(2, np.uint8),
        x_test=np.ones((1, 28, 28), np.uint8),
        y_test=np.ones(1, np.uint8),
    )
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if corrupt_hash:
        digest = "0" * 64
    entry = catalog.ENTRIES["mnist"]
    files = (dataclasses.replace(entry.files[0], origin=base + "mnist.npz", file_hash=digest),)
    monkeypatch.setitem(catalog.ENTRIES, "mnist", dataclasses.replace(entry, files=files))
    return source


def test_fetch_downloads_then_reports_present(
    server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    www, base = server
    source = _serve_mnist(www, base, monkeypatch)
    data_dir = tmp_path / "data"
    seen: list[tuple[str, int, int | None]] = []
    results = fetch(["mnist"], data_dir, progress=lambda *args: seen.append(args))
    assert [(r.name, r.status) for r in results] == [("mnist", "downloaded")]
    assert (data_dir / "mnist.npz").read_bytes() == source.read_bytes()
    assert seen
    assert seen[-1][0] == "mnist.npz"
    assert seen[-1][1] == source.stat().st_size
    assert fetch("mnist", data_dir)[0].status == "present"
    monkeypatch.setattr(_remote, "internet_reachable", lambda *a, **k: False)
    assert mnist(data_dir)[0][0].shape == (2, 28, 28)


def test_fetch_rejects_hash_mismatch_and_keeps_old_file(
    server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    www, base = server
    _serve_mnist(www, base, monkeypatch, corrupt_hash=True)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "mnist.npz").write_bytes(b"stand-in")
    with pytest.raises(DataNotFoundError, match="hash differs"):
        fetch(["mnist"], data_dir)
    assert (data_dir / "mnist.npz").read_bytes() == b"stand-in"
    assert [p.name for p in data_dir.iterdir()] == ["mnist.npz"]  # no temp file left


def test_fetch_offline_raises_with_hint(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"no internet.*build_boston_from_mlxtend"):
        fetch(["boston_housing"], tmp_path)


def test_fetch_validates_names_and_dir(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="Unknown dataset 'cifar'"):
        fetch(["cifar"], tmp_path)
    with pytest.raises(UsageError, match="No data directory"):
        fetch(["mnist"], None)


def test_list_local_reports_every_entry(tmp_path: Path) -> None:
    (tmp_path / "mnist.npz").write_bytes(b"x")
    (tmp_path / "fashion-mnist").mkdir()
    (tmp_path / "fashion-mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"x")
    rows = {name: (present, path) for name, present, path in list_local(tmp_path)}
    assert list(rows) == list(catalog.ENTRIES)
    assert rows["mnist"] == (True, tmp_path / "mnist.npz")
    assert rows["fashion_mnist"] == (False, tmp_path / "fashion-mnist")
    assert rows["imdb"][0] is False
    with pytest.raises(UsageError):
        list_local(None)
