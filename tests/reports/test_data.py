"""The reports' pure data functions, on synthetic stores (no Keras, no search)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from reports import answer, ensemble_section, leaderboard, summarize
from reports.importance import MIN_TRIALS, param_importance
from reports.leaderboard import first_line, search_options
from reports.series import history, learning_curves, parallel
from search.store import RunStore

MakeRun = Callable[..., Path]


def test_ranking_best_first_ties_share_rank_and_unfinished_last(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 1.0, 1.5, 1.0, None, None],
                   statuses=["complete", "complete", "complete", "complete", "failed", "pruned"],
                   errors={4: "ValueError: NaN loss\nTraceback (most recent call last):\n..."})
    rows = leaderboard(run, include_unfinished=True)
    assert [(r.rank, r.number) for r in rows] == [(1, 1), (1, 3), (3, 2), (4, 0),
                                                 (None, 4), (None, 5)]
    failed = rows[4]
    assert failed.status == "failed" and failed.reason == "ValueError: NaN loss"
    assert rows[5].status == "pruned" and rows[5].fold_scores  # partial folds kept
    assert rows[0].best_epochs == (3, 4) and rows[0].epochs_run == (4, 4)
    assert [r.number for r in leaderboard(run, top=2)] == [1, 3]


def test_ranking_follows_the_direction(make_run: MakeRun) -> None:
    run = make_run(scores=[0.8, 0.9, 0.7], direction="maximize")
    assert [r.number for r in leaderboard(run)] == [1, 0, 2]
    assert summarize(run).best.number == 1  # type: ignore[union-attr]


def test_summary_header_facts(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 1.0, None], statuses=["complete", "complete", "failed"],
                   reference={"test": 2.55, "cv": 2.38, "source": "the book"})
    s = summarize(run)
    assert s.counts == {"complete": 2, "failed": 1}
    assert s.space_sha256 == "ab" * 32 and s.backend == "optuna"
    assert s.options == {"sampler": "tpe", "pruner": "median"}  # None (storage) left out
    assert s.wall_seconds == pytest.approx(90.0) and s.sessions == 1
    assert s.reference == {"test": 2.55, "cv": 2.38, "source": "the book"}


def test_search_options_are_read_generically() -> None:
    settings = {"backend": "ray", "folds": 3, "algorithm": "tpe",
                "backend_options": {"scheduler": "asha", "address": None},
                "options": {"cpus_per_trial": 2}}
    assert search_options(settings) == {"algorithm": "tpe", "scheduler": "asha",
                                        "cpus_per_trial": 2}


def test_answer_puts_the_final_ensemble_beside_single_default_and_reference(
        make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 1.0, 1.5], reference={"test": 2.55, "cv": 2.38,
                                                      "source": "the book"})
    a = answer(run)
    kinds = [r.kind for r in a.rows]
    assert kinds == ["ensemble", "ensemble", "ensemble", "single", "default", "reference"]
    assert a.final is a.rows[0] and a.final.label.startswith("final ensemble: Nelder-Mead")
    assert (a.final.cv, a.final.test) == (0.5, 0.6)
    assert a.final.gap == pytest.approx(0.1)
    single, default = a.row("single"), a.row("default")
    assert single is not None and single.trial == 1 and single.cv == 1.0
    # the synthetic test predictions are off by the trial's score: test MAE == score
    assert single.test == pytest.approx(1.0, abs=1e-5)
    assert default is not None and default.trial == 0
    assert default.test == pytest.approx(2.0, abs=1e-5)
    ref = a.row("reference")
    assert ref is not None and (ref.cv, ref.test, ref.note) == (2.38, 2.55, "the book")
    headline = a.headline()
    assert "test mae 0.6" in headline and "best single 1 (better by 0.4)" in headline
    assert "reference 2.55 (better by 1.95)" in headline


def test_answer_with_refit_members_too(make_run: MakeRun) -> None:
    a = answer(make_run(scores=[2.0, 1.0, 1.5], ensemble=("folds", "refit")))
    labels = [r.label for r in a.rows if r.kind == "ensemble"]
    assert labels[0].startswith("final ensemble") and "fold members" in labels[0]
    assert any("refit members" in label for label in labels)
    section = ensemble_section(a and make_run(scores=[2.0, 1.0], ensemble=("folds", "refit")))
    assert section is not None and section.side_by_side
    assert [k.kind for k in section.kinds] == ["folds", "refit"]


def test_missing_ensemble_and_missing_reference(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 1.0], ensemble=None)  # an older run: no "reference" key
    a = answer(run)
    assert a.final is None and [r.kind for r in a.rows] == ["single", "default"]
    assert any("no ensemble yet" in n for n in a.notes)
    assert a.headline().startswith("no ensemble yet; best single trial 1")
    assert ensemble_section(run) is None
    assert answer(make_run(scores=[2.0, 1.0], ensemble=None, reference=None)).row(
        "reference") is None


def test_ensemble_section_rows(make_run: MakeRun) -> None:
    section = ensemble_section(make_run(scores=[2.0, 1.0, 1.5]))
    assert section is not None and not section.side_by_side
    (kind,) = section.kinds
    assert [m.trial for m in kind.members] == [1, 2, 0]
    assert [m.name for m in kind.methods] == ["nelder-mead", "greedy", "average", "best"]
    assert kind.methods[0].weights == (0.7, 0.3, 0.0)
    assert kind.members[0].loo_gain == pytest.approx(0.3)


def test_a_run_with_one_trial(make_run: MakeRun) -> None:
    run = make_run(scores=[1.7])
    rows = leaderboard(run, include_unfinished=True)
    assert [(r.rank, r.number, r.is_default) for r in rows] == [(1, 0, True)]
    a = answer(run)
    assert [r.kind for r in a.rows] == ["single", "default"]  # one trial: no ensemble
    trials = RunStore(run).trials()
    imp = param_importance(trials, [], "minimize")
    assert not imp.values and f"at least {MIN_TRIALS}" in imp.reason
    h = history(trials, "minimize")
    assert h.trials == (0,) and h.best_so_far == (1.7,)
    assert not parallel(rows, []).axes


def test_default_point_failed_is_said(make_run: MakeRun) -> None:
    run = make_run(scores=[None, 1.0, 1.2], statuses=["failed", "complete", "complete"],
                   errors={0: "boom"})
    a = answer(run)
    assert a.row("default") is None
    assert any("default point (trial 0) failed: boom" in n for n in a.notes)


def test_history_running_best_and_other_statuses(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 2.5, None, 1.0, 1.2],
                   statuses=["complete", "complete", "pruned", "complete", "complete"])
    h = history(RunStore(run).trials(), "minimize")
    assert h.trials == (0, 1, 3, 4)
    assert h.best_so_far == (2.0, 2.0, 1.0, 1.0)
    assert h.others == {"pruned": (2,)} and h.default == 0


def test_parallel_axes_skip_conditional_and_code_categories(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 1.0, 1.5, 1.2])
    rows = leaderboard(run)
    p = parallel(rows, RunStore(run).read_run()["params"])
    names = [a.name for a in p.axes]
    assert "units_1" in p.conditional and "units_1" not in names
    act = next(a for a in p.axes if a.name == "activation")
    assert act.labels == ("relu", "tanh") and set(act.values) == {0.0, 1.0}
    assert next(a for a in p.axes if a.name == "lr").log
    assert p.scores == tuple(r.score for r in rows)


def test_learning_curves_of_chosen_trials(make_run: MakeRun) -> None:
    trials = RunStore(make_run(scores=[2.0, 1.0, 1.5])).trials()
    curves = learning_curves(trials, [1, 2])
    assert [(c.trial, c.fold) for c in curves] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert set(curves[0].series) == {"loss", "val_loss"} and len(curves[0].series["loss"]) == 4


def test_param_importance_on_any_store(make_run: MakeRun) -> None:
    scores = [2.0, 1.0, 1.5, 1.2, 1.8, 0.9, 1.1, 1.6]
    run = make_run(scores=scores)
    store = RunStore(run)
    imp = param_importance(store.trials(), store.read_run()["params"], "minimize")
    assert imp.values and math.isclose(sum(imp.values.values()), 1.0, rel_tol=1e-6)
    assert "units_1" in imp.left_out  # conditional: absent from some trials
    assert list(imp.values.values()) == sorted(imp.values.values(), reverse=True)
    # A space the trace does not describe (another backend's store): ranges from the values.
    assert param_importance(store.trials(), [], "minimize").values


def test_first_line() -> None:
    assert first_line("\n  boom: bad\nmore") == "boom: bad"
    assert first_line(None) == ""
