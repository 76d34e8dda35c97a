"""Optuna across hosts: `search worker` processes join a run's study on a real PostgreSQL.

The server is started by the ``postgres_url`` fixture (tests/postgres_server.py). The
"other host" is a second process given only the run directory (as a shared filesystem
would give it) and the storage URL. The URL's password must never reach run.json, any
file of the run, or what the commands print.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from search.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "tests" / "spaces" / "tiny_regression.py"
#: Trials of at least 4 s: the driver must not finish all 6 before the worker (a new
#: process: imports, data) can claim one; tiny_regression's trials now take well under 1 s.
SLOW = ROOT / "tests" / "spaces" / "slow.py"


def _env(url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    env.pop("SEARCH_STORAGE", None)
    if url:
        env["SEARCH_STORAGE"] = url
    return env


def _password(url: str) -> str:
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    assert password
    return password


def test_worker_on_another_host_joins_the_study(postgres_url: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "pg"
    driver = subprocess.Popen(
        [sys.executable, "-m", "search", "run", str(SLOW), "--trials", "6", "--storage",
         postgres_url, "--out", str(tmp_path), "--name", "pg", "--sampler", "random",
         "--top", "0"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "run.json").is_file():
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, "the driver never wrote run.json"
        time.sleep(0.2)
    # The other host: the password comes from its environment, not from run.json.
    worker = subprocess.run([sys.executable, "-m", "search", "worker", str(run_dir)],
                            cwd=tmp_path, env=_env(postgres_url), capture_output=True,
                            text=True, timeout=300)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    assert worker.returncode == 0, worker.stderr
    trials = RunStore(run_dir).trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4, 5]  # exactly the total, no overshoot
    assert all(t.status == "complete" for t in trials)
    assert trials[0].worker == 0 and trials[0].is_default
    assert {t.worker for t in trials} - {0}, "the worker ran no trial"

    secret = _password(postgres_url)
    for text in (out, err, worker.stdout, worker.stderr):
        assert secret not in text
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    stored = RunStore(run_dir).read_run()
    assert stored["settings"]["options"]["storage"].startswith("postgresql+psycopg2://search:***@")


def test_worker_without_the_password_is_told_how_to_give_it(postgres_url: str,
                                                            tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "search", "run", str(SPACE), "--trials", "1", "--storage",
         postgres_url, "--out", str(tmp_path), "--name", "one", "--top", "0"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([sys.executable, "-m", "search", "worker", str(tmp_path / "one")],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "SEARCH_STORAGE" in res.stderr and "password" in res.stderr
    assert _password(postgres_url) not in res.stderr


def test_wrong_password_message_hides_it(postgres_url: str, tmp_path: Path) -> None:
    wrong = postgres_url.replace(_password(postgres_url), "not-the-pw-93x")
    res = subprocess.run(
        [sys.executable, "-m", "search", "run", str(SPACE), "--trials", "1", "--storage",
         wrong, "--out", str(tmp_path), "--name", "bad", "--top", "0"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "--storage postgresql+psycopg2://search:***@" in res.stderr
    assert "not-the-pw-93x" not in res.stderr + res.stdout
    assert not (tmp_path / "bad").exists()  # checked before the run directory is made
