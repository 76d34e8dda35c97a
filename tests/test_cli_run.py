"""End to end through the real entry point: run → store → list/show → resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.metrics import get_metric
from search.store import RunStore

pytestmark = pytest.mark.timeout(600)


def _check_store(run: Path, n_trials: int, n_outputs: int) -> RunStore:
    store = RunStore(run)
    meta = store.read_run()
    for key in ("name", "created", "space", "task", "metric", "direction", "settings", "storage",
                "data", "params", "default_params", "versions", "invocations"):
        assert key in meta, key
    assert len(meta["space"]["sha256"]) == 64 and Path(meta["space"]["path"]).is_file()
    assert {"tensorflow-cpu", "keras", "optuna", "numpy"} & meta["versions"].keys()
    assert meta["settings"]["folds"] == 2
    assert (run / "optuna.journal").stat().st_size > 0
    trials = store.trials()
    assert [t.number for t in trials] == list(range(n_trials))
    fold_of = store.load_array("folds.npy")
    y = store.load_array("y_train.npy")
    metric = get_metric(meta["metric"])
    assert trials[0].is_default and trials[0].params == meta["default_params"]
    for t in trials:
        assert t.status == "complete", t
        oof = store.load_oof(t.number)
        assert oof.shape == (meta["data"]["n_train"], n_outputs)
        assert not np.isnan(oof).any()
        # Folds identical across trials: rescoring each trial's OOF rows with the run's
        # shared fold assignment reproduces the fold scores the trial itself recorded.
        for f in t.folds:
            rows = fold_of == f.fold
            assert metric(y[rows], oof[rows], meta["task"]) == pytest.approx(f.score, rel=1e-4)
        assert len(t.folds) == 2 and all(f.best_epoch >= 1 for f in t.folds)
        assert t.score == pytest.approx(np.mean([f.score for f in t.folds]))
        assert store.load_test(t.number).shape == (meta["data"]["n_test"], n_outputs)
    return store


def test_regression_run_list_show_resume(tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    space = spaces_dir / "tiny_regression.py"
    res = run_cli("run", space, "--trials", "3", "--folds", "2", "--seed", "7",
                  "--out", tmp_path, "--name", "reg", "--keep-models", "2")
    assert res.returncode == 0, res.stderr
    run = tmp_path / "reg"
    assert str(run) in res.stdout and "mae" in res.stdout
    # run ends with the answer first and the report's absolute path
    assert "final ensemble: Nelder-Mead weights" in res.stdout
    assert f"report: {run / 'report.html'}" in res.stdout.replace("\n", "")
    assert (run / "report.html").stat().st_size > 100_000
    store = _check_store(run, 3, 1)
    assert store.read_run()["settings"]["seed"] == 7
    # --keep-models 2: only the two best trials keep their fold models.
    kept = {t.number for t in store.trials() if store.model_paths(t.number)}
    assert kept == {t.number for t in store.ranked("minimize")[:2]}

    listed = run_cli("list", "--out", tmp_path)
    assert listed.returncode == 0 and "reg" in listed.stdout and "3/3" in listed.stdout
    shown = run_cli("show", run)
    assert shown.returncode == 0, shown.stderr
    assert "baseline trial 0" in shown.stdout and "best epochs" in shown.stdout
    assert "final ensemble" in shown.stdout and "default point (trial 0)" in shown.stdout
    assert "ensembles of folds members" in shown.stdout  # show's ensemble section
    out = tmp_path / "elsewhere" / "r.html"
    rep = run_cli("report", run, "-o", out)
    assert rep.returncode == 0, rep.stderr
    assert out.is_file() and str(out) in rep.stdout.replace("\n", "")
    index = run_cli("report", tmp_path)
    assert index.returncode == 0 and (tmp_path / "index.html").is_file(), index.stderr

    before = {t.number: t.started for t in store.trials()}
    res = run_cli("run", space, "--trials", "5", "--resume", run)
    assert res.returncode == 0, res.stderr
    best = store.ranked("minimize", [t for t in store.trials() if t.number < 3])[0]
    assert f"resuming: 3 trials done, best mae so far {best.score:.4g} (trial {best.number})" \
        in res.stderr
    after = store.trials()
    assert len(after) == 5 and all(t.status == "complete" for t in after)
    assert {t.number: t.started for t in after if t.number < 3} == before  # not re-run
    assert len(store.read_run()["invocations"]) == 2
    # Params of the resumed session are new proposals, not a replay of the first session.
    assert [t.params for t in after[3:]] != [t.params for t in after[1:3]]


def test_classification_run(tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    res = run_cli("run", spaces_dir / "tiny_multiclass.py", "--trials", "3", "--out", tmp_path,
                  "--name", "cls", "--sampler", "random")
    assert res.returncode == 0, res.stderr
    store = _check_store(tmp_path / "cls", 3, 3)
    for t in store.trials():
        assert np.allclose(store.load_oof(t.number).sum(axis=1), 1.0, atol=1e-4)
    # Stratified folds: every fold holds every class in equal share.
    y, fold_of = store.load_array("y_train.npy"), store.load_array("folds.npy")
    counts = [np.bincount(y[fold_of == f], minlength=3) for f in range(2)]
    assert all(c.min() == c.max() for c in counts)


def test_failing_trials_are_recorded_and_search_goes_on(tmp_path: Path, run_cli,
                                                        spaces_dir: Path) -> None:
    res = run_cli("run", spaces_dir / "flaky.py", "--trials", "4", "--sampler", "grid",
                  "--out", tmp_path, "--name", "flaky")
    assert res.returncode == 0, res.stderr
    trials = RunStore(tmp_path / "flaky").trials()
    assert len(trials) == 4
    failed = {t.params["mode"]: t for t in trials if t.status == "failed"}
    assert set(failed) == {"nan", "boom"}
    assert "NaN" in (failed["nan"].error or "")
    assert "boom" in (failed["boom"].error or "") and "RuntimeError" in (
        failed["boom"].error_detail or "")
    assert sum(t.status == "complete" for t in trials) == 2
    assert "failed" in res.stderr


def test_parallel_jobs_reach_exact_total(tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    res = run_cli("run", spaces_dir / "tiny_regression.py", "--trials", "5", "--jobs", "2",
                  "--out", tmp_path, "--name", "par", "--sampler", "random", "--top", "0")
    assert res.returncode == 0, res.stderr
    store = RunStore(tmp_path / "par")
    trials = store.trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]  # exactly the total, no overshoot
    assert all(t.status == "complete" for t in trials)
    # trial 0 runs in the driver; the others in the two child processes (slots 1 and 2)
    assert trials[0].worker == 0 and trials[0].is_default
    assert {t.worker for t in trials[1:]} <= {1, 2}
    assert "resuming" not in res.stderr  # the driver's default point is not a resume
    log = tmp_path / "par" / "workers" / "slot_1.log"
    assert log.is_file() and "Traceback" not in log.read_text()
    assert store.read_run()["settings"]["jobs"] == 2
