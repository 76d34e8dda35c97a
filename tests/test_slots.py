"""``--jobs`` child processes: pruning answered by the driver, a dying child fails only its
trial (recorded), and the run goes on with a fresh child."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.runner import RunSettings, start_run

SPACES = Path(__file__).resolve().parent / "spaces"
GOOD = {"bad": False, "boom": False}


def test_children_are_pruned_by_the_drivers_pruner(tmp_path: Path) -> None:
    settings = RunSettings(trials=5, folds=2, seed=2, jobs=2, keep_models=0,
                           options={"sampler": "random", "pruner": "median"})
    store = start_run(SPACES / "contract.py", settings, out=tmp_path, name="p",
                      enqueue=[GOOD, GOOD, GOOD, {"bad": True, "boom": False}])
    # enqueued trials are asked in order, but two slot threads may take store numbers in
    # either order: the bad one is the only trial with bad=True (all 4 are enqueued)
    bad = next(t for t in store.trials() if t.params.get("bad"))
    assert bad.number in (3, 4) and bad.worker in (1, 2)
    assert bad.status == "pruned" and len(bad.folds) == 1, (bad.status, bad.error)
    assert [t.status for t in store.trials() if t.number != bad.number] == ["complete"] * 4


def test_a_dying_child_fails_its_trial_and_the_run_goes_on(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("SEARCH_CRASH_MARKER", str(tmp_path / "crashed"))
    settings = RunSettings(trials=4, folds=2, seed=2, jobs=2, keep_models=0,
                           options={"sampler": "random"})
    # The other trials are enqueued with crash=False: a sampled crash=True in the second
    # slot, built before the first crash wrote its marker, would crash too (a race).
    store = start_run(SPACES / "crash_once.py", settings, out=tmp_path, name="c",
                      enqueue=[{"crash": True}, {"crash": False}, {"crash": False}])
    trials = store.trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    # The enqueued trial is the first asked, but two slot threads take store numbers in
    # either order: find it by its outcome, not by number.
    failed = [t for t in trials if t.status != "complete"]
    assert len(failed) == 1 and failed[0].number in (1, 2), [(t.number, t.status) for t in trials]
    crashed = failed[0]
    assert crashed.status == "failed" and "worker process died" in (crashed.error or "")
    assert crashed.params["crash"] is True
    assert "exit code 3" in (crashed.error or "")


def test_ctrl_c_stops_the_children_and_the_next_session_continues_them(tmp_path: Path
                                                                         ) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from search.store import RunStore

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "run", str(SPACES / "tiny_regression.py"),
         "--trials", "40", "--jobs", "2", "--out", str(tmp_path), "--name", "i", "--top", "0"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = RunStore(tmp_path / "i")
    deadline = time.monotonic() + 240
    while sum(t.status == "complete" for t in store.trials()) < 4:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # the driver only, as a terminal's Ctrl-C reaches it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "continue with --resume" in err
    trials = store.trials()
    assert len(trials) < 40
    # the children's trials stay running (interrupted): none is counted or failed
    unfinished = [t for t in trials if t.status != "complete"]
    assert unfinished and all(t.status == "running" for t in unfinished), \
        [(t.status, t.error) for t in unfinished]
    assert not any(store.trial_alive(t.number) for t in unfinished)
    # and the next session continues them under their numbers, on its slots
    total = len(trials)
    res = subprocess.run(
        [sys.executable, "-m", "search", "run", str(SPACES / "tiny_regression.py"),
         "--resume", str(store.root), "--trials", str(total), "--jobs", "2", "--top", "0"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    after = store.trials()
    assert [t.number for t in after] == [t.number for t in trials]
    assert all(t.status == "complete" and len(t.folds) == 2 for t in after)
    for t in unfinished:
        assert store.read_trial(t.number).resumed == 1
        assert store.read_trial(t.number).params == t.params
