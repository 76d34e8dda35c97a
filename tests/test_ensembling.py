"""Retrain → ensemble → API on tiny generated runs, both member kinds (real Keras)."""

from __future__ import annotations

from pathlib import Path

import joblib
import keras
import numpy as np
import pytest

from search.ensembling import ensemble_run, retrain
from search.errors import EnsembleError, UsageError
from search.experiment import EnsembleModel, load_experiment
from search.members import read_refit
from search.runner import RunSettings, start_run
from search.store import RunStore

SPACES = Path(__file__).parent / "spaces"


@pytest.fixture(scope="module")
def reg_run(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    out = tmp_path_factory.mktemp("runs")
    return start_run(SPACES / "tiny_regression.py",
                     RunSettings(trials=4, seed=1, options={"sampler": "random"}, keep_models=4),
                     out=out, name="reg")


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    out = tmp_path_factory.mktemp("runs")
    return start_run(SPACES / "tiny_multiclass.py",
                     RunSettings(trials=3, seed=2, options={"sampler": "random"}, keep_models=3),
                     out=out, name="cls")


def _manual_prediction(model: EnsembleModel, x: np.ndarray) -> np.ndarray:
    """Weighted sum of the members' predictions, computed from the saved files by hand."""
    total = 0.0
    for member, w in zip(model.members, model.weights, strict=True):
        preds = []
        for mf, pf in zip(member.model_files, member.pre_files, strict=True):
            xx = joblib.load(pf).transform(x) if pf else x
            preds.append(keras.models.load_model(mf).predict(xx, verbose=0).reshape(len(x), -1))
        total = total + w * np.mean(preds, axis=0)
    return np.asarray(total)


def test_fold_member_ensemble_json(reg_run: RunStore) -> None:
    report = ensemble_run(reg_run.root, top=3, select="rank")  # rank: exactly the best 3
    entry = report["kinds"]["folds"]
    ranked = reg_run.ranked("minimize")[:3]
    assert [m["trial"] for m in entry["members"]] == [t.number for t in ranked]
    assert set(entry["methods"]) == {"nelder-mead", "greedy", "average", "best"}
    for method in entry["methods"].values():
        w = np.array(method["weights"])
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
        assert method["oof_score"] is not None and method["test_score"] is not None
    nm, avg = entry["methods"]["nelder-mead"], entry["methods"]["average"]
    assert nm["oof_score"] <= avg["oof_score"] + 1e-9  # fitted on OOF: never worse there
    best = entry["methods"]["best"]["weights"]
    assert best[0] == 1.0  # best single = the best trial by CV (OOF MAE = CV mean here)
    for m in entry["members"]:
        assert m["cv_score"] == pytest.approx(reg_run.read_trial(m["trial"]).score)
        assert m["fold_test_score"] is not None and m["refit_test_score"] is None
        assert set(m["leave_one_out"]) == {"oof_score_without", "gain"}
    assert report["objective"] == "mae" and (reg_run.root / "ensemble.json").is_file()


def test_api_predict_equals_weighted_members_and_round_trip(reg_run: RunStore,
                                                            tmp_path: Path) -> None:
    exp = load_experiment(reg_run.root)
    model = exp.ensemble(top=3)
    assert 2 <= len(model.members) <= 3 and model.weights.sum() == pytest.approx(1.0)
    x_test = np.random.default_rng(0).normal(size=(10, 5)).astype("float32") * 10 + 3
    pred = model.predict(x_test)
    np.testing.assert_allclose(pred, _manual_prediction(model, x_test), rtol=1e-5, atol=1e-5)
    # Fold members reproduce the test predictions the trials stored during the search.
    y_test = reg_run.load_array("y_test.npy")
    stored = sum(w * reg_run.load_test(m.trial) for m, w in zip(model.members, model.weights,
                                                                strict=True))
    from search.space import load_space

    (_, _), (xt, yt) = load_space(SPACES / "tiny_regression.py").load_data()
    np.testing.assert_allclose(yt, y_test)
    np.testing.assert_allclose(model.predict(xt), stored, rtol=1e-4, atol=1e-4)

    saved = model.save(tmp_path / "final")
    back = EnsembleModel.load(saved)
    np.testing.assert_array_equal(back.predict(x_test), pred)
    for f in saved.rglob("*.keras"):
        keras.models.load_model(f)  # plain Keras loads every member file


def test_refit_members(reg_run: RunStore) -> None:
    results = retrain(reg_run.root, top=2, seeds=2)
    assert [r.status for r in results] == ["ok", "ok"]
    for r in results:
        record = reg_run.read_trial(r.trial)
        best_epochs = sorted(f.best_epoch for f in record.folds)
        assert r.epochs == max(1, round(float(np.median(best_epochs))))
        assert all(s.epochs == r.epochs for s in r.seeds)
        assert len([s for s in r.seeds if s.ok]) == 2
        assert len(list((reg_run.root / "members" / f"{r.trial:04d}").glob("seed_*.keras"))) == 2
    report = ensemble_run(reg_run.root, top=2, kinds=["refit"])
    entry = report["kinds"]["refit"]
    assert len(entry["members"]) == 2
    assert all(m["refit_test_score"] is not None for m in entry["members"])
    model = load_experiment(reg_run.root).ensemble(top=2, members="refit")
    assert [m.kind for m in model.members] == ["refit", "refit"]
    x = np.ones((4, 5), dtype="float32")
    np.testing.assert_allclose(model.predict(x), _manual_prediction(model, x), rtol=1e-5,
                               atol=1e-5)


def test_classification_ensemble(cls_run: RunStore) -> None:
    report = ensemble_run(cls_run.root, top=3)
    assert report["objective"] == "log_loss"
    entry = report["kinds"]["folds"]
    for method in entry["methods"].values():
        assert 0.0 <= method["oof_score"] <= 1.0
    # "best single" is the member with the best OOF accuracy (the run's metric), whatever
    # the log-loss objective of the weighted methods prefers.
    accuracies = [m["oof_score"] for m in entry["members"]]
    assert entry["methods"]["best"]["oof_score"] == pytest.approx(max(accuracies))
    pred = load_experiment(cls_run.root).ensemble(top=3).predict(
        np.zeros((5, 4), dtype="float32"))
    assert pred.shape == (5, 3) and np.allclose(pred.sum(axis=1), 1.0, atol=1e-4)


def test_classification_members_are_temperature_scaled_alike_everywhere(
        cls_run: RunStore, tmp_path: Path) -> None:
    """ensemble.json, the API and a saved-and-loaded ensemble apply the same temperatures:
    the API's predictions of the test rows score exactly the recorded test accuracy."""
    from ensembles.calibration import scale_probabilities
    from search.metrics import get_metric
    from search.space import load_space

    report = ensemble_run(cls_run.root, top=3)
    entry = report["kinds"]["folds"]
    temps = [m["temperature"] for m in entry["members"]]
    assert all(t > 0 for t in temps) and any(abs(t - 1.0) > 1e-3 for t in temps)
    model = load_experiment(cls_run.root).ensemble(top=3)
    assert model.temperatures == pytest.approx(temps)
    stored = sum(w * scale_probabilities(cls_run.load_test(m.trial), t)
                 for m, w, t in zip(model.members, model.weights, temps, strict=True))
    (_, _), (xt, yt) = load_space(SPACES / "tiny_multiclass.py").load_data()
    pred = model.predict(xt)
    np.testing.assert_allclose(pred, stored, rtol=1e-4, atol=1e-5)
    accuracy = get_metric("accuracy")(yt, pred, "multiclass")
    assert accuracy == pytest.approx(entry["methods"]["nelder-mead"]["test_score"])
    back = EnsembleModel.load(model.save(tmp_path / "saved"))
    assert back.temperatures == pytest.approx(temps)
    np.testing.assert_array_equal(back.predict(xt), pred)


def test_divergence_guard_retries_then_drops(tmp_path: Path) -> None:
    store = start_run(SPACES / "refit_diverges.py",
                      RunSettings(trials=2, options={"sampler": "random"}, keep_models=2),
                      out=tmp_path, name="div")
    results = retrain(store.root, top=2, seeds=1)
    for r in results:
        assert r.status == "dropped" and "diverged twice" in (r.reason or "")
        assert [s.attempt for s in r.seeds] == [0, 1] and not any(s.ok for s in r.seeds)
        assert all(s.train_loss > 2 * (s.reference_loss or 0) for s in r.seeds)
        assert not list((store.root / "members" / f"{r.trial:04d}").glob("seed_*"))
        assert read_refit(store, r.trial) == r
    report = ensemble_run(store.root, top=2, kinds=["folds", "refit"])
    assert report["kinds"]["folds"]["members"]  # fold members are unaffected
    notes = " ".join(report["kinds"]["refit"]["notes"])
    assert "dropped by the divergence guard" in notes
    with pytest.raises(EnsembleError, match="fewer than 2 refit members"):
        load_experiment(store.root).ensemble(top=2, members="refit")


def test_bad_requests(reg_run: RunStore, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--top must be at least 2"):
        ensemble_run(reg_run.root, top=1)
    with pytest.raises(UsageError, match="--method must be one of"):
        ensemble_run(reg_run.root, methods=["stacking"])
    few = start_run(SPACES / "tiny_regression.py",
                    RunSettings(trials=3, options={"sampler": "random"}, keep_models=1),
                    out=tmp_path, name="few")
    with pytest.raises(UsageError, match="fold models are kept only for the best"):
        load_experiment(few.root).ensemble(top=3)


def test_a_retrain_cut_short_leaves_the_previous_member_whole(reg_run: RunStore,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import search.members as members

    number = reg_run.ranked("minimize")[0].number
    first = retrain(reg_run.root, top=2, seeds=1)
    final = members.member_dir(reg_run, number)
    before = {p.name: p.read_bytes() for p in final.iterdir()}
    calls = {"n": 0}
    real_fit = members._fit_full

    def dies_on_the_second_seed(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as a Ctrl-C in the middle of a retrain
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(members, "_fit_full", dies_on_the_second_seed)
    with pytest.raises(KeyboardInterrupt):
        retrain(reg_run.root, top=2, seeds=2)
    # the member on disk is still the first retrain's: models, test.npy and refit.json agree
    assert {p.name: p.read_bytes() for p in final.iterdir()} == before
    assert read_refit(reg_run, number) is not None
    assert len(read_refit(reg_run, number).seeds) == len(first[0].seeds)  # type: ignore[union-attr]
    # killed between the two renames of the swap: the complete new member is taken
    staged = final.with_name(f".{final.name}.new")
    staged.mkdir(exist_ok=True)
    for name, data in before.items():
        (staged / name).write_bytes(data)
    import shutil

    shutil.rmtree(final)
    assert members.member_dir(reg_run, number).is_dir() and not staged.exists()
    assert read_refit(reg_run, number) is not None
