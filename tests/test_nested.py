"""``evaluate``: nested cross-validation of the whole procedure, over real (tiny) searches.

What must hold: one entry per outer fold; the outer held-out rows are disjoint and cover the
space's training rows; no held-out row reaches its outer run's training data (checked on
the stored arrays, not on what the code says it did); the space's test split is never used;
scores are finite; an interrupted evaluation resumes without touching finished outer folds;
bad flags exit 2.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.checking import check_run
from search.errors import UsageError
from search.events import SearchEvents
from search.nested import EvaluateEvents, resume_evaluate, start_evaluate
from search.plan import RunPlan, SpaceSource, process_state
from search.rows import RowSubset, read_rows
from search.runner import RunSettings
from search.space import load_space
from search.store import FoldRecord, RunStore, TrialRecord
from search.trial import Dataset

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[1]
SPACES = Path(__file__).resolve().parent / "spaces"
REGRESSION = SPACES / "tiny_regression.py"
MULTICLASS = SPACES / "tiny_multiclass.py"


class _CutOff(SearchEvents):
    """Ctrl-C as a user would press it: after trial 1's first fold is stored."""

    def fold_finished(self, record: TrialRecord, fold: FoldRecord) -> None:
        if record.number == 1 and fold.fold == 0:
            raise KeyboardInterrupt


class _InterruptFold(EvaluateEvents):
    def __init__(self, fold: int) -> None:
        self.fold = fold

    def run_events(self, fold: int, run_dir: Path, resumed: bool) -> SearchEvents:
        return _CutOff() if fold == self.fold else SearchEvents()


def _trial_files(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): p.read_text()
            for p in sorted((run / "trials").glob("*/trial.json"))}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A regression evaluation (3 outer folds) cut off inside outer fold 2's search, then
    resumed; what it looked like at the cut is kept for comparison."""
    out = tmp_path_factory.mktemp("nested")
    settings = RunSettings(trials=2, folds=2, seed=3, threads=1)
    with pytest.raises(KeyboardInterrupt):
        start_evaluate(REGRESSION, settings, outer=3, top=2, out=out, name="reg",
                       events=_InterruptFold(2))
    root = out / "reg"
    at_cut = {
        "doc": json.loads((root / "evaluate.json").read_text()),
        "trials": {i: _trial_files(root / f"outer_{i}") for i in range(3)},
        "ensembles": {i: (root / f"outer_{i}" / "ensemble.json").read_text() for i in (0, 1)},
    }
    resume_evaluate(root, overrides={"trials": 2, "outer": 3, "threads": 1})
    return {"root": root, "at_cut": at_cut,
            "doc": json.loads((root / "evaluate.json").read_text())}


def test_an_interrupted_evaluation_keeps_its_finished_outer_folds(
        interrupted: dict[str, Any]) -> None:
    root, cut, doc = interrupted["root"], interrupted["at_cut"], interrupted["doc"]
    assert [e["fold"] for e in cut["doc"]["folds"]] == [0, 1]  # fold 2 was not committed
    assert cut["doc"]["invocations"][-1]["outcome"] == "interrupted"
    # after --resume: the finished outer folds' entries, trials and ensembles are untouched
    assert doc["folds"][:2] == cut["doc"]["folds"]
    for i in (0, 1):
        assert _trial_files(root / f"outer_{i}") == cut["trials"][i]
        assert (root / f"outer_{i}" / "ensemble.json").read_text() == cut["ensembles"][i]
    # the cut outer run was continued by run --resume: trial 0 kept as it was, trial 1
    # continued from its stored fold 0 (same fold record), nothing run twice
    store = RunStore(root / "outer_2")
    trials = store.trials()
    assert [t.number for t in trials] == [0, 1] and all(t.status == "complete" for t in trials)
    before = {k: json.loads(v) for k, v in cut["trials"][2].items()}
    assert json.loads((root / "outer_2/trials/0000/trial.json").read_text()) == \
        before["trials/0000/trial.json"]
    cut_fold0 = before["trials/0001/trial.json"]["folds"][0]
    assert json.loads((root / "outer_2/trials/0001/trial.json").read_text())["folds"][0] == \
        cut_fold0
    assert [i["outcome"] for i in doc["invocations"]] == ["interrupted", "finished"]


def test_outer_folds_partition_the_training_rows_without_leaks(
        interrupted: dict[str, Any]) -> None:
    root, doc = interrupted["root"], interrupted["doc"]
    space = load_space(REGRESSION)
    full = Dataset.from_space(space, None)
    n = len(full.y_train)
    assert doc["n_rows"] == n and doc["outer"] == 3
    assert [e["fold"] for e in doc["folds"]] == [0, 1, 2]
    outer_of = np.load(root / "outer_folds.npy")
    held_out = []
    for e in doc["folds"]:
        run = root / e["run"]
        store = RunStore(run)
        rows = read_rows(store)
        assert rows is not None and rows.n_source == n
        assert np.array_equal(rows.test, np.flatnonzero(outer_of == e["fold"]))
        assert len(np.intersect1d(rows.train, rows.test)) == 0
        assert np.array_equal(np.sort(np.concatenate([rows.train, rows.test])), np.arange(n))
        # what the run actually stored and trained on are those rows of the training split,
        # and its "test" rows are the held-out rows, never the space's own test split
        assert np.array_equal(store.load_array("y_train.npy"), full.y_train[rows.train])
        assert np.array_equal(store.load_array("y_test.npy"), full.y_train[rows.test])
        assert store.read_run()["data"]["n_train"] == len(rows.train) == e["n_train"]
        for t in store.trials():
            assert store.load_oof(t.number).shape[0] == len(rows.train)
            assert store.load_test(t.number).shape[0] == len(rows.test) == e["n_test"]
        assert (run / "report.html").is_file()
        assert check_run(store, repair=False).clean
        held_out.append(rows.test)
    every = np.concatenate(held_out)
    assert len(every) == n and np.array_equal(np.sort(every), np.arange(n))  # disjoint, cover


def test_scores_are_finite_and_the_summary_adds_up(interrupted: dict[str, Any]) -> None:
    doc = interrupted["doc"]
    summary = doc["summary"]
    assert summary["complete"] and summary["folds_done"] == [0, 1, 2]
    for key in ("final", "single", "average", "default"):
        outer = [e["scores"][key]["outer"] for e in doc["folds"]]
        inner = [e["scores"][key]["inner_cv"] for e in doc["folds"]]
        assert np.isfinite(outer).all() and np.isfinite(inner).all(), key
        stats = summary["contenders"][key]
        assert stats["per_fold"] == outer and stats["n"] == 3
        assert stats["mean"] == pytest.approx(np.mean(outer))
        assert stats["std"] == pytest.approx(np.std(outer, ddof=1))
        assert stats["min"] == min(outer) and stats["max"] == max(outer)
    assert [e["scores"]["default"]["trial"] for e in doc["folds"]] == [0, 0, 0]
    # mae is minimised: optimism = outer − inner CV of the final ensemble
    optimism = [e["scores"]["final"]["outer"] - e["scores"]["final"]["inner_cv"]
                for e in doc["folds"]]
    assert summary["optimism"]["per_fold"] == pytest.approx(optimism)


def test_resume_refuses_to_change_the_procedure(interrupted: dict[str, Any]) -> None:
    root = interrupted["root"]
    with pytest.raises(UsageError, match="--trials 5 differs from the evaluation's 2"):
        resume_evaluate(root, overrides={"trials": 5})
    with pytest.raises(UsageError, match="--outer 4 differs from the evaluation's 3"):
        resume_evaluate(root, overrides={"outer": 4})
    with pytest.raises(UsageError, match="--sampler random differs"):
        resume_evaluate(root, overrides={"options": {"sampler": "random"}})


def test_a_row_subset_travels_in_the_plan_to_a_fresh_process(tmp_path: Path) -> None:
    """--jobs children and Ray workers load the data themselves: the rows go in the plan."""
    space = load_space(REGRESSION)
    rows = RowSubset.checked(np.arange(10, 40), np.arange(0, 10), 64)
    fold_of = np.arange(30, dtype=np.int16) % 2
    plan = RunPlan(space=SpaceSource.from_path(REGRESSION), fold_of=fold_of, seed=0,
                   save_models=False, rows=rows)
    _, data = process_state(plan)  # this process's cache keeps subsets apart
    full = Dataset.from_space(space, None)
    assert np.array_equal(data.y_train, full.y_train[10:40])
    assert np.array_equal(data.y_test, full.y_train[:10])
    child = ("import pickle, sys\nfrom search.plan import execute, TrialSpec\n"
             "plan = pickle.loads(sys.stdin.buffer.read())\n"
             "r = execute(plan, TrialSpec(number=0, params={'epochs': 1}))\n"
             "sys.stdout.buffer.write(pickle.dumps((r.oof.shape, r.test_pred.shape)))\n")
    res = subprocess.run([sys.executable, "-c", child], input=pickle.dumps(plan),
                         capture_output=True, timeout=300, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
                              "SEARCH_SPACE_CACHE": str(tmp_path / "cache"),
                              "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert pickle.loads(res.stdout) == ((30, 1), (10, 1))


def test_row_subsets_must_not_overlap() -> None:
    with pytest.raises(UsageError, match="both train and test rows"):
        RowSubset.checked([0, 1, 2], [2, 3], 5)
    with pytest.raises(UsageError, match=r"must lie in 0\.\.4"):
        RowSubset.checked([0, 1], [5], 5)


def test_classification_evaluate_cli_stratified_and_resumed(tmp_path: Path, run_cli) -> None:
    res = run_cli("evaluate", MULTICLASS, "--outer", "2", "--trials", "2", "--top", "2",
                  "--threads", "1", "--seed", "1", "--out", tmp_path, "--name", "cls")
    assert res.returncode == 0, res.stderr[-3000:]
    root = tmp_path / "cls"
    doc = json.loads((root / "evaluate.json").read_text())
    mean, std = (doc["summary"]["contenders"]["final"][k] for k in ("mean", "std"))
    # the answer first, in the metric's units
    assert f"the procedure's estimated accuracy: {mean:.4g} ± {std:.4g} over 2 outer folds" \
        in res.stdout
    assert "optimism of the inner CV" in res.stdout and str(root / "evaluate.json") in res.stdout
    assert [e["fold"] for e in doc["folds"]] == [0, 1]
    y = Dataset.from_space(load_space(MULTICLASS), None).y_train
    for e in doc["folds"]:
        rows = read_rows(RunStore(root / e["run"]))
        assert rows is not None
        # StratifiedKFold: each held-out half keeps the 3 balanced classes (10 rows each)
        assert np.bincount(y[rows.test]).tolist() == [10, 10, 10]
        for key in ("final", "single", "average", "default"):
            assert 0.0 <= e["scores"][key]["outer"] <= 1.0
    shown = run_cli("show", root / "outer_1")
    assert shown.returncode == 0 and "an outer fold of `evaluate`" in shown.stdout

    # a crash after outer fold 1's run ended but before its entry was committed: --resume
    # keeps fold 0 as it is, reruns no trial of fold 1 and scores it again the same way
    trials_1 = _trial_files(root / "outer_1")
    lost = doc["folds"].pop()
    (root / "evaluate.json").write_text(json.dumps(doc))
    res = run_cli("evaluate", "--resume", root, "--threads", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming: 1 of 2 outer folds finished earlier" in res.stderr
    again = json.loads((root / "evaluate.json").read_text())
    assert again["folds"][0] == doc["folds"][0]
    assert _trial_files(root / "outer_1") == trials_1
    assert again["folds"][1]["scores"] == lost["scores"]


@pytest.mark.parametrize(("args", "message"), [
    (["evaluate", "--outer", "1", str(REGRESSION)], "--outer must be at least 2; got 1"),
    (["evaluate", "--top", "1", str(REGRESSION)], "--top must be at least 2"),
    (["evaluate", "--trials", "1", str(REGRESSION)], "--trials must be at least 2"),
    (["evaluate"], "give SPACE"),
    (["evaluate", "--outer", "65", "--trials", "2", str(REGRESSION)],
     "--outer 65 is more than the 64 training rows"),
    (["evaluate", "--folds", "60", "--trials", "2", str(REGRESSION)],
     "--folds 60 is more than the 51 training rows"),
    (["evaluate", "--sampler", "grid", "--outer", "2", "--trials", "2", str(REGRESSION)],
     "--sampler grid needs every parameter discrete"),
    (["evaluate", "--resume", "no/such/dir"], "is not an evaluate directory"),
    (["evaluate", "--resume", "no/such/dir", "--name", "x"], "--name cannot be combined"),
    (["evaluate", "missing_space.py"], "missing_space.py"),
])
def test_bad_flags_exit_2(args: list[str], message: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from search.cli import main

    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path)] if "--resume" not in args else args)
    assert exc.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not any(tmp_path.iterdir())  # nothing made
