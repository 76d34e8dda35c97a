"""Failure and interruption drills: NaN, exceptions, out of memory, too many failures, a run
that achieves nothing, Ctrl-C and kill -9 of real processes, two sessions on one run.

The kill and interrupt drills are strict: a fold that was committed before the kill must be
there afterwards *unchanged* (not re-run), so a lost or re-run fold fails them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.errors import TrialFailed
from search.folds import make_folds
from search.hp import FixedHP
from search.space import load_space
from search.store import RunStore
from search.trial import Dataset, root_cause, run_trial

SPACES = Path(__file__).resolve().parent / "spaces"
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}


def _trial(mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SEARCH_EPOCH_LOG", str(tmp_path / "epochs.log"))
    space = load_space(SPACES / "drills.py")
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, space.task, 2, 0)
    return run_trial(space, FixedHP({"mode": mode, "units": 4}), data, fold_of=fold_of,
                     number=1, seed=0)


def test_nan_stops_the_fit_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TrialFailed, match="NaN/inf in epoch 1 of fold 0"):
        _trial("nan", tmp_path, monkeypatch)
    # 20 epochs were asked for; the fit stopped in the first (and no later fold ran)
    assert (tmp_path / "epochs.log").read_text().splitlines() == ["nan 0"]


def test_out_of_memory_retries_once_with_half_the_batch(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    result = _trial("oom_once", tmp_path, monkeypatch)
    assert result.record.status == "complete"
    assert [f.batch_size for f in result.record.folds] == [8, 8]
    with pytest.raises(TrialFailed) as info:
        _trial("oom_always", tmp_path, monkeypatch)
    reason = str(info.value)
    assert reason.startswith("out of memory (MemoryError)") and "half the batch" in reason


def test_a_tensorflow_error_names_its_root_cause(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TrialFailed) as info:
        _trial("graph", tmp_path, monkeypatch)
    reason = str(info.value)
    assert reason.startswith("InvalidArgumentError: Received a label value of"), reason
    assert "Graph execution error" not in reason


def test_root_cause_of_a_graph_error_and_of_plain_messages() -> None:
    text = ("Graph execution error:\n\nDetected at node loss/op defined at (most recent call "
            "last):\n  File \"/x/space.py\", line 5, in <module>\n\n  File \"/k.py\", line 9, "
            "in fit\n\nlogits and labels must have the same first dimension\n\t [[{{node "
            "loss/op}}]] [Op:__inference_step_52]")
    assert root_cause(text) == "logits and labels must have the same first dimension"
    assert root_cause("first line\nsecond") == "first line"


def _cli(*args: str | Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "search", *map(str, args)], cwd=ROOT,
                          env={**ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def test_max_failures_in_a_row_stop_the_run_with_exit_1(tmp_path: Path) -> None:
    res = _cli("run", SPACES / "fails_unless_default.py", "--trials", "10", "--max-failures",
               "3", "--sampler", "random", "--out", tmp_path, "--name", "f", "--top", "0")
    assert res.returncode == 1, res.stderr
    assert "3 trials failed in a row (--max-failures 3)" in res.stderr
    assert "broken unless lr=0.01" in res.stderr  # the most common reason, named
    trials = RunStore(tmp_path / "f").trials()
    assert [t.status for t in trials] == ["complete", "failed", "failed", "failed"]


def test_a_run_with_no_complete_trial_exits_1(tmp_path: Path) -> None:
    res = _cli("run", SPACES / "fails_unless_default.py", "--trials", "2", "--sampler",
               "random", "--out", tmp_path, "--name", "z", env={"SEARCH_FAIL_ALL": "1"})
    assert res.returncode == 1, res.stderr
    assert "no trial completed" in res.stderr
    assert "every fit fails in this drill" in res.stderr


def _start(tmp_path: Path, name: str, trials: int, *extra: str) -> subprocess.Popen[str]:
    proposer = list(extra) or ["--sampler", "random"]
    return subprocess.Popen(
        [sys.executable, "-m", "search", "run", str(SPACES / "slow.py"), "--trials",
         str(trials), "--out", str(tmp_path), "--name", name, "--top", "0", *proposer],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_folds(proc: subprocess.Popen[str], record: Path, folds: int) -> dict[str, Any]:
    """Wait until ``record`` lists ``folds`` folds (and no more); return it."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if record.is_file():
            try:
                data: dict[str, Any] = json.loads(record.read_text())
            except json.JSONDecodeError:
                data = {}
            if len(data.get("folds", [])) >= folds:
                assert len(data["folds"]) == folds and data["status"] == "running", data
                return data
        time.sleep(0.05)
    raise AssertionError(f"{record} never reached {folds} folds")


def _assert_continued(store: RunStore, number: int, before: dict[str, Any],
                      oof_before: np.ndarray) -> None:
    """Trial ``number`` completed in a later session, its committed folds untouched."""
    after = store.read_trial(number)
    assert after.status == "complete" and after.resumed == 1
    assert [f.fold for f in after.folds] == [0, 1]
    kept = before["folds"][0]
    assert after.folds[0].score == kept["score"] and after.folds[0].seconds == kept["seconds"]
    assert after.params == before["params"] or not before["params"]
    fold_of = store.load_array("folds.npy")
    oof = store.load_oof(number)
    np.testing.assert_array_equal(oof[fold_of == 0], oof_before[fold_of == 0])
    assert np.isfinite(oof).all()
    assert store.load_test(number).shape == (10, 1)
    assert not list(store.trial_dir(number).glob("test_fold_*.npy"))


def _killed_mid_trial(tmp_path: Path, name: str, trials: int, number: int, *extra: str
                      ) -> tuple[RunStore, dict[str, Any], np.ndarray]:
    """A run killed with SIGKILL once trial ``number`` committed its first fold: the store,
    that trial's record and OOF array as the kill left them."""
    proc = _start(tmp_path, name, trials, *extra)
    store = RunStore(tmp_path / name)
    before = _wait_for_folds(proc, store.trial_dir(number) / "trial.json", 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return store, before, store.load_oof(number)


def test_kill_9_mid_trial_continues_it_from_its_first_unfinished_fold(tmp_path: Path) -> None:
    store, before, oof_before = _killed_mid_trial(tmp_path, "k", 3, 1)
    assert store.read_trial(0).status == "complete"
    res = _cli("run", SPACES / "slow.py", "--resume", store.root, "--top", "0")
    assert res.returncode == 0, res.stderr
    assert "trial 1 was interrupted after 1 of 2 folds; continuing it from fold 1" in res.stderr
    assert [t.number for t in store.trials()] == [0, 1, 2]
    assert all(t.status == "complete" for t in store.trials())
    _assert_continued(store, 1, before, oof_before)


def test_ctrl_c_leaves_the_trial_to_the_next_session(tmp_path: Path) -> None:
    proc = _start(tmp_path, "c", 3)
    store = RunStore(tmp_path / "c")
    before = _wait_for_folds(proc, store.trial_dir(1) / "trial.json", 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    interrupted = store.read_trial(1)
    assert interrupted.status == "running" and len(interrupted.folds) == 1
    oof_before = store.load_oof(1)
    shown = _cli("show", store.root, env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "interrupted" in shown.stdout and "continues it from fold 1" in shown.stdout
    res = _cli("run", SPACES / "slow.py", "--resume", store.root, "--top", "0")
    assert res.returncode == 0, res.stderr
    assert len(store.trials()) == 3  # the interrupted trial did not count as one of 3
    _assert_continued(store, 1, before, oof_before)


def test_a_killed_default_point_is_continued_as_trial_0(tmp_path: Path) -> None:
    store, before, oof_before = _killed_mid_trial(tmp_path, "d", 2, 0)
    res = _cli("run", SPACES / "slow.py", "--resume", store.root, "--top", "0")
    assert res.returncode == 0, res.stderr
    assert store.read_trial(0).is_default
    _assert_continued(store, 0, before, oof_before)
    assert [t.number for t in store.trials()] == [0, 1]


def test_two_resume_sessions_on_one_run_share_it_exactly(tmp_path: Path) -> None:
    store, before, oof_before = _killed_mid_trial(tmp_path, "two", 3, 1)
    args = [sys.executable, "-m", "search", "run", str(SPACES / "slow.py"), "--resume",
            str(store.root), "--trials", "6", "--top", "0"]
    a, b = (subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2))
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    trials = store.trials()
    assert [t.number for t in trials] == [0, 1, 2, 3, 4, 5]  # no duplicate, none lost
    assert all(t.status == "complete" and len(t.folds) == 2 for t in trials)
    _assert_continued(store, 1, before, oof_before)  # continued once, by one session
    import optuna

    study = optuna.load_study(study_name="two", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(store.root / "optuna.journal"))))
    told = [t.user_attrs.get("store_number") for t in study.trials
            if not t.user_attrs.get("stale")]
    assert sorted(told) == [0, 1, 2, 3, 4, 5]  # each store trial once in the study


def test_a_trial_is_announced_with_its_parameters_before_it_trains(tmp_path: Path) -> None:
    """So a trial killed during its first fold is continued with its own parameters."""
    import optuna

    from search.backends.optuna import OptunaHP

    space = load_space(SPACES / "drills.py")
    data = Dataset.from_space(space, None)
    fold_of = make_folds(data.y_train, space.task, 2, 0)
    seen: list[dict[str, Any]] = []

    class Sink:
        def started(self, record: Any) -> None:
            seen.append(dict(record.params))

        def fold(self, result: Any) -> None:
            pass

        def finished(self, record: Any) -> None:
            pass

    study = optuna.create_study()
    study.enqueue_trial({"mode": "ok", "units": 6})
    hp = OptunaHP(study.ask())  # define-by-run: the values exist only once build asks
    run_trial(space, hp, data, fold_of=fold_of, number=1, seed=0, sink=Sink())
    assert seen == [{"mode": "ok", "units": 6}]


def test_kill_9_mid_trial_on_keras_tuner_continues_it(tmp_path: Path) -> None:
    """Keras Tuner's oracle still has the killed trial as ongoing: the driver continues the
    store trial first, and the oracle's re-run of it takes the stored result."""
    pytest.importorskip("keras_tuner", reason="pip install '.[keras-tuner]'")
    store, before, oof_before = _killed_mid_trial(tmp_path, "kt", 3, 1, "--backend",
                                                  "keras-tuner", "--algorithm", "random")
    res = _cli("run", SPACES / "slow.py", "--resume", store.root, "--top", "0")
    assert res.returncode == 0, res.stderr
    trials = store.trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.status == "complete" and t.backend == "keras-tuner" for t in trials)
    _assert_continued(store, 1, before, oof_before)
