"""Member selection and cross-fitted weights on a store written from numpy arrays (no Keras:
the selection reads only records, OOF predictions, fold ids and which fold models exist)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from search.ensembling import ensemble_run, fold_groups, select_trials
from search.errors import UsageError
from search.store import RunStore, TrialRecord

N_ROWS = 200


def write_store(root: Path, *, kept: set[int]) -> RunStore:
    """Five regression trials: 0 is best; 1 and 2 are near-copies of 0 (ranked 2nd, 3rd);
    3 and 4 are worse alone but err independently of 0, so averaging with them helps."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=N_ROWS)
    e0 = 0.5 * rng.normal(size=N_ROWS)
    oofs = [y + e0, y + 1.02 * e0 + 0.01 * rng.normal(size=N_ROWS), y + 1.05 * e0,
            y + 0.6 * rng.normal(size=N_ROWS), y + 0.8 * rng.normal(size=N_ROWS)]
    store = RunStore(root)
    root.mkdir(parents=True)
    store.write_run({"name": root.name, "task": "regression", "metric": "mse",
                     "direction": "minimize", "settings": {"seed": 0}})
    store.save_array("y_train.npy", y.astype("float32"))
    store.save_array("folds.npy", (np.arange(N_ROWS) % 2).astype("int16"))
    for number, oof in enumerate(oofs):
        score = float(np.mean((oof - y) ** 2))
        store.trial_dir(number).mkdir(parents=True, exist_ok=True)
        store.write_trial(TrialRecord(number=number, status="complete", params={},
                                      score=score, n_folds=2, models_kept=number in kept))
        store.save_oof(number, oof.astype("float32")[:, None])
        for fold in range(2) if number in kept else ():
            (store.trial_dir(number) / f"fold_{fold}.keras").write_bytes(b"")  # presence only
    return store


def test_rank_takes_the_best_by_cv_and_greedy_skips_the_near_copies(tmp_path: Path) -> None:
    store = write_store(tmp_path / "run", kept={0, 1, 2, 3, 4})

    rank = select_trials(store, top=3, select="rank")
    greedy = select_trials(store, top=3)

    assert [r.number for r in rank.records] == [0, 1, 2]
    order = [r.number for r in greedy.records]
    assert greedy.method == "greedy" and order[:2] == [0, 3] and not {1, 2} & set(order)
    assert greedy.pool == [0, 1, 2, 3, 4] and len(order) <= 3
    assert greedy.loss_curve[0] == pytest.approx(store.read_trial(0).score, rel=1e-5)
    assert min(greedy.loss_curve) < 0.8 * greedy.loss_curve[0]


def test_fold_members_come_only_from_trials_whose_models_were_kept(tmp_path: Path) -> None:
    store = write_store(tmp_path / "run", kept={0, 1, 2, 4})

    folds = select_trials(store, top=3, kind="folds")
    refit = select_trials(store, top=3, kind="refit")
    small_pool = select_trials(store, top=2, kind="refit", pool=2)

    assert folds.pool == [0, 1, 2, 4] and [r.number for r in folds.records][:2] == [0, 4]
    assert [r.number for r in refit.records][:2] == [0, 3]  # refits need no fold models
    assert small_pool.pool == [0, 1]  # the pool is never smaller than --top


def test_too_few_kept_models_fall_back_to_rank_and_say_so(tmp_path: Path) -> None:
    store = write_store(tmp_path / "run", kept={0})

    selection = select_trials(store, top=3)

    assert selection.method == "rank" and [r.number for r in selection.records] == [0, 1, 2]
    assert "too few to select from" in selection.notes[0]
    with pytest.raises(UsageError, match="--select must be one of"):
        select_trials(store, top=3, select="random")


def test_ensemble_json_records_selection_and_shrinkage(tmp_path: Path) -> None:
    store = write_store(tmp_path / "run", kept={0, 1, 2, 3, 4})

    report = ensemble_run(store.root, top=3)

    on_disk = json.loads((store.root / "ensemble.json").read_text())
    assert on_disk["select"] == "greedy" and on_disk["pool"] == 20
    entry = on_disk["kinds"]["folds"]
    selection = entry["selection"]
    assert selection["method"] == "greedy" and selection["pool_size"] == 5
    assert [m["trial"] for m in entry["members"]] == selection["order"]
    for name in ("nelder-mead", "greedy"):
        method = entry["methods"][name]
        assert method["shrinkage"] in {0.0, 0.25, 0.5, 0.75, 1.0}
        assert set(method["cv_losses"]) == {"0", "0.25", "0.5", "0.75", "1"}
        assert method["cv_loss"] == pytest.approx(min(method["cv_losses"].values()))
        assert method["cv_loss_equal"] == pytest.approx(method["cv_losses"]["1"])
        s, n = method["shrinkage"], len(entry["members"])
        np.testing.assert_allclose(method["weights"], (1 - s) * np.array(
            method["unshrunk_weights"]) + s / n)
    assert entry["methods"]["average"]["shrinkage"] is None  # nothing learned, nothing shrunk
    assert report == on_disk

    again = ensemble_run(store.root, top=3, select="rank")["kinds"]["folds"]
    assert again["selection"]["method"] == "rank"
    assert [m["trial"] for m in again["members"]] == [0, 1, 2]


def test_fold_groups_read_the_first_repeat_of_a_repeated_k_fold(tmp_path: Path) -> None:
    store = write_store(tmp_path / "run", kept={0, 1})
    assert fold_groups(store).tolist() == (np.arange(N_ROWS) % 2).tolist()
    repeats = np.stack([np.arange(N_ROWS) % 2, (np.arange(N_ROWS) // 2) % 2]).astype("int16")
    store.save_array("folds.npy", repeats)

    np.testing.assert_array_equal(fold_groups(store), repeats[0])
    ensemble_run(store.root, top=2, methods=["nelder-mead"])  # cross-fits on repeat 0
