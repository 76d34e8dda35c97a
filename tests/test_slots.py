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
    bad = store.read_trial(4)
    assert bad.params["bad"] is True and bad.worker in (1, 2)
    assert bad.status == "pruned" and len(bad.folds) == 1, (bad.status, bad.error)
    assert [t.status for t in store.trials()[:4]] == ["complete"] * 4


def test_a_dying_child_fails_its_trial_and_the_run_goes_on(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("SEARCH_CRASH_MARKER", str(tmp_path / "crashed"))
    settings = RunSettings(trials=4, folds=2, seed=2, jobs=2, keep_models=0,
                           options={"sampler": "random"})
    store = start_run(SPACES / "crash_once.py", settings, out=tmp_path, name="c",
                      enqueue=[{"crash": True}])
    trials = store.trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    crashed = store.read_trial(1)
    assert crashed.status == "failed" and "worker process died" in (crashed.error or "")
    assert crashed.params["crash"] is True
    assert "exit code 3" in (crashed.error or "")
    assert all(t.status == "complete" for t in trials if t.number != 1)
