"""Search efficiency at an equal epoch budget on real Boston (issue 8).

Four searches of ``spaces/boston_housing.py`` (4 folds, the book's split), 5 seeds each:

- Optuna TPE with median pruning after each fold (``--sampler tpe --pruner median``),
- Optuna random sampling without pruning (``--sampler random``),
- Keras Tuner's random oracle (``--backend keras-tuner --algorithm random``),
- Keras Tuner's Hyperband (``--algorithm hyperband --max-epochs 27 --factor 3``).

**The budget** is epochs trained summed over every fold of every trial (pruned trials count
what they trained). One Hyperband iteration with ``max_epochs=27, factor=3`` trains a fixed
375 epochs per fold (70 trials); with 4 folds and trial 0 (the book's model, 80 epochs, run by
every search) the budget of a seed is 4 × 375 + trial 0's epochs. The other searches run one
trial at a time (``resume`` to one more trial, in the same process) until they pass the
budget; a trial that crosses it does not count, so no search gets more than the budget.
Every configuration of a seed shares that seed's folds (the run seed) and trial 0.

Reported per search: best CV MAE within the budget (median and spread over seeds), the
configurations it evaluated, and the test MAE of the best-CV trial's fold models (never used
to choose). Two searches run at a time (2 cores), each with one TensorFlow thread: a
quality benchmark, wall times are only indicative.

Run: ``python benchmarks/run.py search_efficiency``.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np

from benchmarks._common import OUT, ROOT, data_dir, machine, write_section

NAME = "search_efficiency"
RUNS = OUT / "runs" / NAME
SEEDS = (0, 1, 2, 3, 4)
MAX_EPOCHS, FACTOR, FOLDS = 27, 3, 4
CONFIGS: dict[str, dict[str, Any]] = {
    "Optuna TPE + median pruning": {"key": "tpe-median", "backend": "optuna",
                                    "options": {"sampler": "tpe", "pruner": "median"}},
    "random, no pruning (Optuna)": {"key": "random", "backend": "optuna",
                                    "options": {"sampler": "random", "pruner": "none"}},
    "Keras Tuner random": {"key": "kt-random", "backend": "keras-tuner",
                           "options": {"algorithm": "random"}},
    "Keras Tuner Hyperband": {"key": "kt-hyperband", "backend": "keras-tuner",
                              "options": {"algorithm": "hyperband", "max_epochs": MAX_EPOCHS,
                                          "factor": FACTOR}},
}


def _epochs(trial: Any) -> int:
    return sum(f.epochs_run for f in trial.folds)


def _hyperband_epochs_per_fold() -> int:
    import keras_tuner as kt

    o = kt.oracles.HyperbandOracle(objective=kt.Objective("score", "min"),
                                   max_epochs=MAX_EPOCHS, factor=FACTOR)
    total = 0
    for b in range(o._get_num_brackets()):
        for r in range(o._get_num_rounds(b)):
            prev = o._get_epochs(b, r - 1) if r > 0 else 0
            total += o._get_size(b, r) * (o._get_epochs(b, r) - prev)
    return int(total)


def one(label: str, seed: int) -> dict[str, Any]:
    """One search to the budget; figures from its store."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from search.backends.keras_tuner import hyperband_trials
    from search.datasets import boston_housing
    from search.runner import RunSettings, resume_run, start_run

    cfg = CONFIGS[label]
    ddir = data_dir("boston_housing")
    name = f"{cfg['key']}-{seed}"
    root = RUNS / name
    if root.exists():
        shutil.rmtree(root)
    hyperband = cfg["options"].get("algorithm") == "hyperband"
    first = 1 + hyperband_trials(MAX_EPOCHS, FACTOR) if hyperband else 2
    settings = RunSettings(trials=first, folds=FOLDS, seed=seed, threads=1, keep_models=3,
                           data_dir=str(ddir), backend=cfg["backend"],
                           options=dict(cfg["options"]))
    t0 = time.perf_counter()
    store = start_run(ROOT / "spaces" / "boston_housing.py", settings, out=RUNS, name=name)
    budget = FOLDS * _hyperband_epochs_per_fold() + _epochs(store.read_trial(0))
    if not hyperband:
        while sum(_epochs(t) for t in store.trials()) < budget:
            resume_run(store.root, overrides={"trials": len(store.trials()) + 1})
    wall = time.perf_counter() - t0
    trials = store.trials()
    counted, used = [], 0
    for t in trials:
        used += _epochs(t)
        if used > budget:
            break
        counted.append(t)
    complete = [t for t in counted if t.status == "complete" and t.score is not None]
    best = min(complete, key=lambda t: (t.score, t.number))
    (_, _), (_, y_test) = boston_housing(data_dir=ddir)
    test = float(np.mean(np.abs(store.load_test(best.number).ravel() - y_test)))
    return {"label": label, "seed": seed, "budget_epochs": budget,
            "epochs_used": sum(_epochs(t) for t in counted), "trials_counted": len(counted),
            "complete": len(complete),
            "pruned": sum(t.status == "pruned" for t in counted),
            "failed": sum(t.status == "failed" for t in counted),
            "best_cv_mae": float(best.score), "best_trial": best.number,
            "best_is_default": best.is_default, "best_test_mae": test,
            "wall_seconds": wall, "run_dir": str(store.root)}


HEADER = ("| search | best CV MAE, median | spread (min–max) | test MAE of that trial, median "
          "(range) | configurations evaluated, median (range) | pruned / failed (all seeds) | "
          "best = trial 0 | wall s, median |\n|---|---:|---:|---:|---:|---:|---:|---:|")


def main() -> str:
    data_dir("boston_housing")
    RUNS.mkdir(parents=True, exist_ok=True)
    jobs = [(label, seed) for seed in SEEDS for label in CONFIGS]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(one, *zip(*jobs, strict=True)))
    total = time.perf_counter() - t0
    rows = []
    for label in CONFIGS:
        rs = [r for r in results if r["label"] == label]
        cv = np.array([r["best_cv_mae"] for r in rs])
        te = np.array([r["best_test_mae"] for r in rs])
        n = np.array([r["trials_counted"] for r in rs])
        rows.append(
            f"| {label} | **{np.median(cv):.3f}** | {cv.min():.3f}–{cv.max():.3f} | "
            f"{np.median(te):.3f} ({te.min():.2f}–{te.max():.2f}) | {int(np.median(n))} "
            f"({n.min()}–{n.max()}) | {sum(r['pruned'] for r in rs)} / "
            f"{sum(r['failed'] for r in rs)} | "
            f"{sum(r['best_is_default'] for r in rs)}/{len(rs)} | "
            f"{np.median([r['wall_seconds'] for r in rs]):.0f} |")
    budgets = sorted({r["budget_epochs"] for r in results})
    per_seed = "\n".join(
        f"| {r['label']} | {r['seed']} | {r['best_cv_mae']:.3f} | {r['best_test_mae']:.3f} | "
        f"{r['trials_counted']} | {r['epochs_used']} / {r['budget_epochs']} |"
        for r in sorted(results, key=lambda r: (r["label"], r["seed"])))
    md = f"""## Search efficiency at an equal epoch budget (real Boston) — issue 8

Command: `python benchmarks/run.py search_efficiency` · {machine()} · {len(SEEDS)} seeds ×
{len(CONFIGS)} searches of `spaces/boston_housing.py` ({FOLDS} folds, the book's 404/102
split), two searches at a time with one TensorFlow thread each; total {total / 60:.1f} min.
**Budget per seed**: {FOLDS} × {_hyperband_epochs_per_fold()} epochs (one Keras Tuner
Hyperband iteration, `max_epochs={MAX_EPOCHS}`, `factor={FACTOR}`, per fold) + trial 0's
epochs = {", ".join(map(str, budgets))} epoch-folds. Trial 0 (the book's model) is in every
search. A search's trials count in order until the budget; the one crossing it does not.
Best CV MAE: lower is better (the book's 4-fold figure is 2.38). Test MAE of the best-CV
trial's fold models is shown, never used to choose.

{HEADER}
{chr(10).join(rows)}

Per seed:

| search | seed | best CV MAE | test MAE | configurations | epoch-folds used / budget |
|---|---:|---:|---:|---:|---:|
{per_seed}
"""
    write_section(NAME, md, {"results": results, "budgets": budgets, "machine": machine(),
                             "total_seconds": total})
    return md
