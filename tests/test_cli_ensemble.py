"""`run --top/--members`, `retrain` and `ensemble` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from search.experiment import EnsembleModel
from search.store import RunStore

pytestmark = pytest.mark.timeout(600)


def test_run_retrain_ensemble_save(tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    space = spaces_dir / "tiny_regression.py"
    res = run_cli("run", space, "--trials", "3", "--out", tmp_path, "--name", "e",
                  "--sampler", "random", "--top", "3", "--members", "both", "--seeds", "1",
                  "--select", "rank")  # rank: exactly 3 members, so 3 refits
    assert res.returncode == 0, res.stderr
    assert "ensembles of folds members" in res.stdout
    assert "ensembles of refit members" in res.stdout
    run = tmp_path / "e"
    report = json.loads((run / "ensemble.json").read_text())
    assert set(report["kinds"]) == {"folds", "refit"} and report["top"] == 3
    assert len(list((run / "members").glob("*/seed_0.keras"))) == 3

    res = run_cli("retrain", run, "--top", "2", "--seeds", "2")
    assert res.returncode == 0, res.stderr
    assert "refit trial" in res.stderr
    for record in RunStore(run).ranked("minimize")[:2]:
        refit = json.loads((run / "members" / record.id / "refit.json").read_text())
        assert len([s for s in refit["seeds"] if s["ok"]]) == 2

    res = run_cli("ensemble", run, "--top", "3", "--method", "greedy", "--method", "average",
                  "--save", tmp_path / "final", "--select", "rank")
    assert res.returncode == 0, res.stderr
    methods = json.loads((run / "ensemble.json").read_text())["kinds"]["folds"]["methods"]
    assert set(methods) == {"greedy", "average"}
    model = EnsembleModel.load(tmp_path / "final")
    assert model.method == "greedy" and len(model.members) == 3
    assert model.predict(np.zeros((2, 5), dtype="float32")).shape == (2, 1)

    bad = run_cli("ensemble", run, "--top", "1")
    assert bad.returncode == 2 and "--top must be at least 2" in bad.stderr


def test_run_selects_members_greedily_and_records_shrinkage(tmp_path: Path, run_cli,
                                                           spaces_dir: Path) -> None:
    res = run_cli("run", spaces_dir / "tiny_regression.py", "--trials", "4", "--out", tmp_path,
                  "--name", "g", "--sampler", "random", "--top", "3", "--members", "both",
                  "--seeds", "1")
    assert res.returncode == 0, res.stderr
    run = tmp_path / "g"
    # fold models of the whole greedy pool are kept, so any candidate can be a fold member
    assert json.loads((run / "run.json").read_text())["settings"]["keep_models"] == 20
    report = json.loads((run / "ensemble.json").read_text())
    assert report["select"] == "greedy" and report["pool"] == 20 and report["top"] == 3
    for kind in ("folds", "refit"):
        entry = report["kinds"][kind]
        selection = entry["selection"]
        assert selection["method"] == "greedy" and selection["pool_size"] == 4
        assert 2 <= len(selection["order"]) <= 3
        assert [m["trial"] for m in entry["members"]] == selection["order"]
        nelder_mead = entry["methods"]["nelder-mead"]
        assert nelder_mead["shrinkage"] in {0.0, 0.25, 0.5, 0.75, 1.0}
        assert nelder_mead["cv_loss"] <= nelder_mead["cv_loss_equal"] + 1e-9
    # retrain refit exactly the trials the refit ensemble selected
    refits = {int(d.name) for d in (run / "members").iterdir() if (d / "refit.json").is_file()}
    assert refits == set(report["kinds"]["refit"]["selection"]["order"])
    assert "greedy selection from the best 4 trials" in res.stdout and "shrinkage" in res.stdout
