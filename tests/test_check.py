"""``python -m search check``: a real tiny run, then one corruption at a time.

The run is made once with the real CLI (2 folds, 3 trials, the two best keep their fold
models) and copied for each test, so each corruption is checked against a store exactly as
a search writes it. Safe corruptions must be repaired (a second check is clean), unsafe ones
reported with their file's absolute path and left as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from search.checking import CheckReport, check_run
from search.errors import RunNotFoundError, StoreError
from search.store import RunStore

pytestmark = pytest.mark.timeout(600)

OLD = time.time() - 3 * 3600  # beyond check's grace period: no live writer is on it


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run, as a user makes it (conftest's ``run_cli`` is per test: this is once)."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("made")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200",
           "PYTHONPATH": str(root)}
    res = subprocess.run(
        [sys.executable, "-m", "search", "run", str(root / "tests/spaces/tiny_regression.py"),
         "--trials", "3", "--folds", "2", "--seed", "3", "--out", str(out), "--name", "tiny",
         "--keep-models", "2"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return out / "tiny"


@pytest.fixture
def run(made_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the made run for one test to corrupt."""
    copy = tmp_path / "tiny"
    shutil.copytree(made_run, copy)
    return copy


def _store(run: Path) -> RunStore:
    return RunStore(run)


def _kept(run: Path) -> tuple[int, int]:
    """(a trial keeping its fold models, a trial that does not)."""
    trials = _store(run).trials()
    kept = [t.number for t in trials if t.models_kept]
    dropped = [t.number for t in trials if not t.models_kept]
    assert kept and dropped
    return kept[0], dropped[0]


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and directory under ``root``: content hash and mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(root))] = (digest, p.stat().st_mtime_ns)
    return out


def _age(path: Path) -> Path:
    os.utime(path, (OLD, OLD))
    return path


def _problems(report: CheckReport) -> list[str]:
    return [f"{f.path}: {f.what}" for f in report.problems]


# -- a clean run ---------------------------------------------------------------------------
def test_clean_run_exits_0(run: Path, run_cli) -> None:
    report = check_run(_store(run))
    assert report.clean and not report.problems and not report.repairs, report
    assert report.counts == {"complete": 3}
    res = run_cli("check", run)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "clean" in res.stdout and str(run) in res.stdout
    assert run_cli("check", run, "--dry-run").returncode == 0


def test_not_a_run_directory_exits_2(tmp_path: Path, run_cli) -> None:
    res = run_cli("check", tmp_path)
    assert res.returncode == 2
    assert "not a run directory" in res.stderr
    with pytest.raises(RunNotFoundError):
        check_run(RunStore(tmp_path))


# -- unsafe corruptions: reported (absolute path), never touched -------------------------
def _truncate_oof(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0001" / "oof.npy"
    path.write_bytes(path.read_bytes()[:100])
    return path, "not a readable .npy"


def _delete_test(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0002" / "test.npy"
    path.unlink()
    return path, "is missing"


def _bad_trial_json(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0001" / "trial.json"
    path.write_text('{"number": 1, "status": "complete", "params": ')
    return path, "not a valid trial record"


def _wrong_number(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0001" / "trial.json"
    data = json.loads(path.read_text())
    data["number"] = 7
    path.write_text(json.dumps(data))
    return path, "its directory says 1"


def _wrong_shape_oof(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0002" / "oof.npy"
    oof = np.load(path)
    np.save(path, oof[:-3])
    return path, "has shape"


def _other_outputs(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0002" / "oof.npy"
    oof = np.load(path)
    np.save(path, np.concatenate([oof, oof], axis=1))
    return path, "has 2 outputs"


def _nan_row(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0000" / "oof.npy"
    oof = np.load(path)
    oof[5] = np.nan
    np.save(path, oof)
    return path, "1 row with NaN/inf (first: row 5)"


def _score_not_mean(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0000" / "trial.json"
    data = json.loads(path.read_text())
    data["score"] += 1.0
    path.write_text(json.dumps(data))
    return path, "fold scores' mean"


def _missing_fold(run: Path) -> tuple[Path, str]:
    path = run / "trials" / "0000" / "trial.json"
    data = json.loads(path.read_text())
    data["folds"] = data["folds"][:1]
    path.write_text(json.dumps(data))
    return path, "not 0..1"


def _run_json_key(run: Path) -> tuple[Path, str]:
    path = run / "run.json"
    data = json.loads(path.read_text())
    del data["direction"]
    del data["settings"]["seed"]
    path.write_text(json.dumps(data))
    return path, "lacks direction, settings.seed"


def _bad_fold_ids(run: Path) -> tuple[Path, str]:
    path = run / "folds.npy"
    folds = np.load(path)
    folds[0] = 5
    np.save(path, folds)
    return path, "the run has 2 folds"


def _short_y_train(run: Path) -> tuple[Path, str]:
    path = run / "y_train.npy"
    np.save(path, np.load(path)[:10])
    return path, "has 10 rows"


def _ensemble_member(run: Path) -> tuple[Path, str]:
    path = run / "ensemble.json"
    data = json.loads(path.read_text())
    data["kinds"]["folds"]["members"][0]["trial"] = 42
    path.write_text(json.dumps(data))
    return path, "member 42 is not a complete trial"


def _test_fold_only_copy(run: Path) -> tuple[Path, str]:
    tdir = run / "trials" / "0002"
    (tdir / "test.npy").rename(tdir / "test_fold_0.npy")
    return tdir, "their only copy"


def _orphan_files(run: Path) -> tuple[Path, str]:
    tdir = run / "trials" / "0007"
    tdir.mkdir()
    shutil.copy(run / "trials" / "0000" / "oof.npy", tdir / "oof.npy")
    return tdir, "has no trial.json but holds oof.npy"


def _refit_without_seed(run: Path) -> tuple[Path, str]:
    mdir = run / "members" / "0001"
    mdir.mkdir(parents=True)
    seed = {"seed": 1, "attempt": 0, "epochs": 1, "train_loss": 1.0, "reference_loss": 1.0,
            "ok": True, "seconds": 0.1}
    (mdir / "refit.json").write_text(json.dumps(
        {"trial": 1, "status": "ok", "epochs": 1, "seeds": [seed], "reason": None}))
    np.save(mdir / "test.npy", np.zeros((32, 1), np.float32))
    return mdir / "refit.json", "seed_0.keras missing"


UNSAFE: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "truncated oof": _truncate_oof, "deleted test.npy": _delete_test,
    "bad trial.json": _bad_trial_json, "record number": _wrong_number,
    "wrong-shape oof": _wrong_shape_oof, "outputs differ": _other_outputs,
    "NaN row": _nan_row, "score not the mean": _score_not_mean, "fold missing": _missing_fold,
    "run.json key": _run_json_key, "fold ids": _bad_fold_ids, "y_train": _short_y_train,
    "ensemble member": _ensemble_member, "test folds without test.npy": _test_fold_only_copy,
    "orphan files": _orphan_files, "refit seed missing": _refit_without_seed,
}


@pytest.mark.parametrize("corrupt", UNSAFE.values(), ids=UNSAFE.keys())
def test_unsafe_corruption_is_reported_and_left(
        run: Path, corrupt: Callable[[Path], tuple[Path, str]]) -> None:
    path, what = corrupt(run)
    before = _snapshot(run)
    report = check_run(_store(run))
    assert not report.clean
    hits = [f for f in report.problems if f.path == path and what in f.what]
    assert hits, _problems(report)
    assert path.is_absolute()
    assert not report.repairs, report.repairs
    assert _snapshot(run) == before  # never deleted, never rewritten
    assert not check_run(_store(run)).clean


def test_problem_exits_1_naming_the_file(run: Path, run_cli) -> None:
    path, _ = _truncate_oof(run)
    res = run_cli("check", run)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"problem: {path}" in res.stdout and "problem(s) left" in res.stdout


# -- safe corruptions: repaired, then clean ------------------------------------------------
def _temp_oof(run: Path) -> list[Path]:
    path = run / "trials" / "0000" / ".oof.npy.abc123"
    path.write_bytes(b"half a write")
    return [_age(path)]


def _temp_root_and_model(run: Path) -> list[Path]:
    kept, _ = _kept(run)
    root_tmp = run / ".run.json.k2j4h5l6"
    root_tmp.write_text("{")
    model_tmp = run / "trials" / f"{kept:04d}" / ".fold_0.x8d_3kqz.keras"
    model_tmp.write_bytes(b"zip")
    pre_tmp = run / "trials" / f"{kept:04d}" / ".fold_1.pre.q1w2e3r4.joblib"
    pre_tmp.write_bytes(b"pickle")
    return [_age(root_tmp), _age(model_tmp), _age(pre_tmp)]


def _empty_trial_dir(run: Path) -> list[Path]:
    path = run / "trials" / "0099"
    path.mkdir()
    return [_age(path)]


def _stray_model(run: Path) -> list[Path]:
    kept, dropped = _kept(run)
    src, dst = run / "trials" / f"{kept:04d}", run / "trials" / f"{dropped:04d}"
    shutil.copy(src / "fold_0.keras", dst / "fold_0.keras")
    shutil.copy(src / "fold_0.pre.joblib", dst / "fold_0.pre.joblib")
    extra = src / "fold_7.keras"  # not a fold of this run: no record claims it
    shutil.copy(src / "fold_0.keras", extra)
    return [dst / "fold_0.keras", dst / "fold_0.pre.joblib", extra]


def _test_fold_of_ended(run: Path) -> list[Path]:
    tdir = run / "trials" / "0001"
    paths = [tdir / "test_fold_0.npy", tdir / "test_fold_1.npy"]
    for p in paths:
        shutil.copy(tdir / "test.npy", p)
    return paths


SAFE: dict[str, Callable[[Path], list[Path]]] = {
    "temp oof": _temp_oof, "temp files": _temp_root_and_model,
    "empty trial dir": _empty_trial_dir, "stray fold model": _stray_model,
    "test_fold of an ended trial": _test_fold_of_ended,
}


@pytest.mark.parametrize("corrupt", SAFE.values(), ids=SAFE.keys())
def test_safe_corruption_is_repaired(run: Path, corrupt: Callable[[Path], list[Path]]) -> None:
    paths = corrupt(run)
    report = check_run(_store(run))
    assert not report.problems, _problems(report)
    assert {r.path for r in report.repairs} == set(paths)
    assert all(r.done for r in report.repairs) and report.clean
    assert not any(p.exists() for p in paths)
    again = check_run(_store(run))
    assert again.clean and not again.repairs and not again.problems


def test_missing_model_file_sets_models_kept_false(run: Path, run_cli) -> None:
    kept, _ = _kept(run)
    tdir = run / "trials" / f"{kept:04d}"
    rec_path = tdir / "trial.json"
    before = json.loads(rec_path.read_text())
    (tdir / "fold_1.keras").unlink()
    res = run_cli("check", run)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"set models_kept false {rec_path}" in res.stdout
    after = json.loads(rec_path.read_text())
    assert after.pop("models_kept") is False and before.pop("models_kept") is True
    assert after == before  # nothing else in the record changed
    assert not list(tdir.glob("fold_*"))  # the remaining fold files are claimed by no record
    for name in ("trial.json", "oof.npy", "test.npy"):
        assert (tdir / name).is_file()
    assert check_run(_store(run)).clean


def test_fresh_files_are_left_to_a_live_writer(run: Path) -> None:
    tmp = run / "trials" / "0000" / ".oof.npy.abc123"
    tmp.write_bytes(b"being written")
    empty = run / "trials" / "0005"
    empty.mkdir()
    report = check_run(_store(run))
    assert not report.repairs and not report.problems
    assert {f.path for f in report.notes} >= {tmp, empty}
    assert tmp.exists() and empty.is_dir()


def test_running_trial_is_not_an_error_and_not_repaired(run: Path) -> None:
    (run / "ensemble.json").unlink()  # its members must be complete trials
    kept, _ = _kept(run)
    tdir = run / "trials" / f"{kept:04d}"
    data = json.loads((tdir / "trial.json").read_text())
    data["status"], data["folds"], data["score"] = "running", data["folds"][:1], None
    (tdir / "trial.json").write_text(json.dumps(data))
    tmp = tdir / ".oof.npy.zz9xy8"
    tmp.write_bytes(b"")
    _age(tmp)  # fold_1.keras stays too: a live trial writes a fold's model before its record
    shutil.copy(tdir / "test.npy", tdir / "test_fold_0.npy")
    before = _snapshot(run)
    report = check_run(_store(run))
    assert report.clean and not report.repairs, (_problems(report), report.repairs)
    note = next(f.what for f in report.notes if f.path == tdir)
    assert "running (1 of 2 folds recorded)" in note and "left alone" in note
    assert "interrupted" in note
    assert _snapshot(run) == before
    store = _store(run)
    if hasattr(store, "lock_trial"):  # trial locks: a held lock reads as live
        lock = store.lock_trial(kept)
        assert lock is not None
        try:
            note = next(f.what for f in check_run(store).notes if f.path == tdir)
            assert "live" in note and "interrupted" not in note
        finally:
            lock.release()


def test_dry_run_changes_nothing(run: Path, run_cli) -> None:
    planted = [*_temp_oof(run), *_empty_trial_dir(run), *_stray_model(run),
               *_test_fold_of_ended(run)]
    kept, _ = _kept(run)
    (run / "trials" / f"{kept:04d}" / "fold_1.pre.joblib").unlink()  # models_kept → false
    before = _snapshot(run)
    res = run_cli("check", run, "--dry-run")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "would repair" in res.stdout and "dry run: nothing changed" in res.stdout
    assert "repaired:" not in res.stdout
    assert _snapshot(run) == before
    report = check_run(_store(run), repair=False)
    assert not report.clean and not report.problems
    assert set(planted) <= {r.path for r in report.repairs}
    assert not any(r.done for r in report.repairs)
    assert _snapshot(run) == before
    res = run_cli("check", run)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "repaired:" in res.stdout and not any(p.exists() for p in planted)
    assert json.loads((run / "trials" / f"{kept:04d}" / "trial.json").read_text())[
        "models_kept"] is False
    res = run_cli("check", run)
    assert res.returncode == 0 and "repaired" not in res.stdout and "clean" in res.stdout


# -- .keras files load in safe mode --------------------------------------------------------
def _lambda_model_file(path: Path, marker: Path) -> None:
    """A .keras file whose Lambda layer touches ``marker`` whenever its code runs."""
    import keras

    touch = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Lambda(touch),
                              keras.layers.Dense(1)])
    model.save(path)
    marker.unlink(missing_ok=True)  # building the model ran it once, here


def test_lambda_member_is_refused_not_run(run: Path, tmp_path: Path) -> None:
    import keras

    from search import load_experiment

    marker = tmp_path / "code_ran"
    store = _store(run)
    x = np.zeros((4, 5), np.float32)
    assert load_experiment(run).ensemble(top=2).predict(x).shape == (4, 1)  # ours load safely
    top = store.ranked("minimize")[:2]
    assert all(t.models_kept for t in top)
    for t in top:
        _lambda_model_file(store.trial_dir(t.number) / "fold_0.keras", marker)
    # The file does carry code: Keras' unsafe loading runs it (the control for this test).
    keras.models.load_model(store.trial_dir(top[0].number) / "fold_0.keras",
                            safe_mode=False)
    assert marker.exists()
    marker.unlink()

    model = load_experiment(run).ensemble(top=2)
    with pytest.raises(StoreError, match="safe mode refuses it") as info:
        model.predict(x)
    assert "fold_0.keras" in str(info.value) and "Lambda" in str(info.value)
    assert not marker.exists()
    with pytest.raises(StoreError, match="safe mode"):  # a second try loads nothing either
        model.members[0].predict(x)
    assert not marker.exists()


def test_without_trial_locks_empty_dirs_wait_for_the_session(run: Path) -> None:
    """A store without ``trial_alive``: an empty trial directory may be a queued trial's
    while run.json's last invocation has not ended, so it is kept."""

    class NoLocks(RunStore):
        trial_alive = None  # type: ignore[assignment]

    path = run / "run.json"
    data = json.loads(path.read_text())
    data["invocations"][-1]["finished"] = None
    path.write_text(json.dumps(data))
    empty = _empty_trial_dir(run)[0]
    report = check_run(NoLocks(run))
    assert report.clean and not report.repairs and empty.is_dir()
    assert any(f.path == empty and "may be live" in f.what for f in report.notes)
