"""Keras Tuner backend beyond the contract suite: Bayesian + resume + later stages from the
CLI, Hyperband's epoch budget and warm starts, retries and consecutive failures, and the
messages a user gets for a missing install or flags that do not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.errors import SearchError
from search.runner import RunSettings, start_run
from search.store import RunStore

pytest.importorskip("keras_tuner", reason="pip install '.[keras-tuner]'")
pytestmark = pytest.mark.timeout(900)

SPACES = Path(__file__).resolve().parents[1] / "spaces"


def _settings(trials: int, **options: object) -> RunSettings:
    return RunSettings(trials=trials, folds=2, seed=1, keep_models=10, backend="keras-tuner",
                       options=dict(options))


def test_bayesian_run_resume_retrain_ensemble_report(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "keras-tuner",
                  "--algorithm", "bayesian", "--trials", "4", "--out", tmp_path, "--name", "kt",
                  "--top", "3", "--members", "both", "--seeds", "1", timeout=600)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "kt"
    store = RunStore(run)
    assert [t.number for t in store.trials()] == [0, 1, 2, 3]
    numbers = json.loads((run / "keras_tuner" / "store_numbers.json").read_text())
    assert sorted(numbers.values()) == [0, 1, 2, 3]  # trial 0 told to the oracle too
    oracle_trials = sorted(p.name for p in (run / "keras_tuner").glob("trial_*"))
    assert len(oracle_trials) == 4
    for t in store.trials()[1:]:
        assert t.backend == "keras-tuner" and numbers[t.backend_id] == t.number
    zero_id = next(k for k, v in numbers.items() if v == 0)
    zero = json.loads((run / "keras_tuner" / f"trial_{zero_id}" / "trial.json").read_text())
    assert zero["status"] == "COMPLETED"
    assert zero["score"] == pytest.approx(store.read_trial(0).score)
    # later stages ran unchanged on a Keras Tuner run
    ens = json.loads((run / "ensemble.json").read_text())
    assert set(ens["kinds"]) == {"folds", "refit"}
    assert (run / "report.html").is_file()

    before = {t.number: t.started for t in store.trials()}
    res = run_cli("run", SPACES / "tiny_regression.py", "--trials", "6", "--resume", run,
                  "--top", "0", timeout=600)
    assert res.returncode == 0, res.stderr
    after = store.trials()
    assert [t.number for t in after] == list(range(6))
    assert {t.number: t.started for t in after if t.number < 4} == before  # not re-run
    assert len(list((run / "keras_tuner").glob("trial_*"))) == 6
    assert store.read_run()["settings"]["options"]["algorithm"] == "bayesian"


def test_hyperband_budget_replaces_the_spaces_epochs_and_warm_starts(tmp_path: Path) -> None:
    from search.backends.keras_tuner import hyperband_trials

    total = 1 + hyperband_trials(3, 3)
    store = start_run(SPACES / "tiny_regression.py",
                      RunSettings(trials=total, folds=2, seed=1, keep_models=1,
                                  backend="keras-tuner",
                                  options={"algorithm": "hyperband", "max_epochs": 3}),
                      out=tmp_path, name="hb")
    trials = store.trials()
    assert len(trials) == total and all(t.status == "complete" for t in trials)
    promoted = 0
    for t in trials[1:]:
        epochs, initial = t.params["tuner/epochs"], t.params["tuner/initial_epoch"]
        assert epochs in (1, 3)
        ran = [f.epochs_run for f in t.folds]
        if initial:
            # a promoted trial starts from its parent's fold models: it trains the rest only
            assert ran == [epochs - initial] * 2, (t.number, t.params)
            assert all(initial < f.best_epoch <= epochs for f in t.folds)  # counted from 0
            promoted += 1
        else:
            assert ran == [epochs] * 2, (t.number, t.params)
    assert promoted >= 1
    # trial 0 trains the space's own epochs (the default point is not Hyperband's)
    assert [f.epochs_run for f in trials[0].folds] == [2, 2]
    # models pinned for promotion are released at the end: retention keeps the best one
    assert sum(bool(store.model_paths(t.number)) for t in trials) == 1


def test_a_flaky_trial_is_retried_under_its_store_number(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_FLAKY_MARKER", str(tmp_path / "flaky.marker"))
    store = start_run(SPACES / "fails_once.py", _settings(3, max_retries_per_trial=1),
                      out=tmp_path, name="retry", enqueue=[{"units": 6}])
    assert [(t.number, t.status) for t in store.trials()] == [
        (0, "complete"), (1, "complete"), (2, "complete")]
    assert store.read_trial(1).params["units"] == 6
    oracle = json.loads((store.root / "keras_tuner" / "oracle.json").read_text())
    numbers = json.loads((store.root / "keras_tuner" / "store_numbers.json").read_text())
    kt_id = next(k for k, v in numbers.items() if v == 1)
    assert oracle["run_times"][kt_id] == 2  # Keras Tuner ran it twice


def test_without_retries_the_flaky_trial_fails_and_the_search_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SEARCH_FLAKY_MARKER", str(tmp_path / "flaky.marker"))
    store = start_run(SPACES / "fails_once.py", _settings(3), out=tmp_path, name="noretry",
                      enqueue=[{"units": 6}])
    statuses = [(t.number, t.status) for t in store.trials()]
    assert statuses == [(0, "complete"), (1, "failed"), (2, "complete")]
    assert "flaky: the first units=6 build fails" in (store.read_trial(1).error or "")
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err  # Keras Tuner's DEBUG printing is off


def test_consecutive_failures_stop_the_search(tmp_path: Path) -> None:
    boom = {"boom": True, "bad": False}
    with pytest.raises(SearchError, match=r"2 failed trials in a row .*boom: this space is"):
        start_run(SPACES / "contract.py", _settings(6, max_consecutive_failed_trials=2),
                  out=tmp_path, name="stop", enqueue=[boom, boom, boom])
    store = RunStore(tmp_path / "stop")
    assert [(t.number, t.status) for t in store.trials()] == [
        (0, "complete"), (1, "failed"), (2, "failed")]


@pytest.mark.parametrize(("args", "expected"), [
    (["--max-epochs", "9"], "--max-epochs is Hyperband's: add --algorithm hyperband"),
    (["--jobs", "2"], "--backend keras-tuner runs one trial at a time"),
    (["--algorithm", "tpe"], "--algorithm must be one of random, bayesian, hyperband"),
    (["--pruner", "hyperband"], "--pruner must be one of none, median"),
])
def test_flag_mistakes_exit_2(tmp_path: Path, run_cli, args: list[str], expected: str) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "keras-tuner", *args,
                  "--out", tmp_path)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr.replace("\n", " ")
    assert not any(tmp_path.iterdir())


def test_missing_keras_tuner_names_the_install(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    # Keras Tuner is hidden from the subprocess (a meta-path finder in sitecustomize), as
    # on an install without the extra.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'keras_tuner':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, _Hide())\n")
    res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "keras-tuner", "--out",
                  tmp_path / "runs", env={"PYTHONPATH": f"{hide}:{SPACES.parents[1]}"})
    assert res.returncode == 2, res.stderr
    assert 'pip install "search-ensembles[keras-tuner]"' in res.stderr
    assert not (tmp_path / "runs").exists()


def test_hyperband_without_trials_runs_one_iteration(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    from search.backends.keras_tuner import hyperband_trials

    res = run_cli("run", SPACES / "tiny_regression.py", "--backend", "keras-tuner",
                  "--algorithm", "hyperband", "--out", tmp_path, "--name", "hb", "--top", "0",
                  timeout=600)
    assert res.returncode == 0, res.stderr
    run = RunStore(tmp_path / "hb").read_run()
    # --max-epochs defaults to the space's default epochs (2), recorded with the run
    assert run["settings"]["options"]["max_epochs"] == 2
    assert run["settings"]["trials"] == 1 + hyperband_trials(2, 3)
    assert len(RunStore(tmp_path / "hb").trials()) == run["settings"]["trials"]
