"""run.json is portable (absolute data location, the space's copy) and resume guards the
options that give a search its meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.errors import UsageError
from search.runner import RunSettings, resume_run, start_run

SPACE = Path(__file__).resolve().parent / "spaces" / "tiny_regression.py"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("runner")
    import os

    here = os.getcwd()
    os.chdir(base)
    try:
        settings = RunSettings(trials=2, folds=2, data_dir="data", keep_models=0,
                               options={"sampler": "random", "pruner": "median"})
        return start_run(SPACE, settings, out=base, name="r").root
    finally:
        os.chdir(here)


def test_run_json_is_portable(run_dir: Path) -> None:
    import json

    run = json.loads((run_dir / "run.json").read_text())
    assert run["settings"]["data_dir"] == str(run_dir.parent / "data")  # absolute
    assert run["settings"]["options"] == {"sampler": "random", "pruner": "median",
                                          "storage": None}
    assert (run_dir / "space.py").read_bytes() == SPACE.read_bytes()
    assert run["space"]["copy"] == "space.py"


def test_resume_refuses_a_different_sampler(run_dir: Path) -> None:
    with pytest.raises(UsageError, match="--sampler tpe differs from the run's random"):
        resume_run(run_dir, overrides={"trials": 3, "options": {"sampler": "tpe"}})


def test_resume_refuses_another_backends_option(run_dir: Path) -> None:
    with pytest.raises(UsageError, match="--scheduler is not an option of --backend optuna"):
        resume_run(run_dir, overrides={"trials": 3, "options": {"scheduler": "asha"}})


def test_resume_uses_the_runs_copy_of_the_space(run_dir: Path, tmp_path: Path) -> None:
    # The user's file may have moved or changed since: resume runs the run's own copy.
    store = resume_run(run_dir, overrides={"trials": 3, "jobs": 1})
    assert [t.number for t in store.trials()] == [0, 1, 2]


def test_legacy_settings_load() -> None:
    s = RunSettings.from_json({"trials": 5, "sampler": "grid", "pruner": "none",
                               "storage": None, "backend": "optuna", "jobs": 1})
    assert s.options == {"sampler": "grid", "pruner": "none", "storage": None}
