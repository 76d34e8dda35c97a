"""Model quality (issue 12): what the searched spaces and their ensembles reach, per task.

Each task is searched by ``python -m search run`` in a subprocess (Optuna TPE, ``--threads
1``, one search seed per row), then its ``ensemble.json`` is read: best single trial, equal
average, greedy (Caruana) and Nelder-Mead over the top 5 trials' fold members (weights fitted
on out-of-fold predictions only), each with its OOF (CV) score, its test score and the
test − CV gap, beside the default point (trial 0, the book's model) and the task's anchors:

- **Boston** (real): the book's test MAE 2.55 and scikit-learn's
  ``GradientBoostingRegressor`` with defaults over a few seeds on the same split (its range).
- **MNIST dense** (real; full data, or ``--rows N`` for a labelled subset): the book's 97.8 %,
  keras' ``mnist_mlp`` example 98.40 %, the goal ≥ 98.6 %.
- **Fashion-MNIST dense** (real): against the default point only.
- **IMDB, Reuters** (**stand-ins**: Rotten Tomatoes snippets, Reuters R52): against the
  default point and a linear baseline, scikit-learn ``LogisticRegression`` on the same
  multi-hot features.

Test scores are read and reported, never used to choose anything. ``--points`` instead trains
a few fixed strong points of ``spaces/mnist_dense.py`` on MNIST's first 50,000 training rows
and scores them on the other 10,000 (a held-out part of the training split; the test score
is only reported): whether the space *contains* points reaching 98.6 %.

Usage::

    python benchmarks/run.py quality                                # every task, defaults
    python -m benchmarks.quality --tasks boston --trials 30         # one task, RESULTS section
    python -m benchmarks.quality --tasks mnist_dense --trials 8 --rows 12000 --no-write
    python -m benchmarks.quality --points                           # MNIST strong points
    python -m benchmarks.quality --tasks mnist_dense fashion_mnist_dense --trials 3 \
        --enqueue-points --threads 2          # full data: default point + the strong points
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import OUT, RESULTS, ROOT, data_dir, machine, write_section

NAME = "quality"
RUNS = OUT / "runs" / NAME
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
METHODS = ("best", "average", "greedy", "nelder-mead")


@dataclass(frozen=True)
class Task:
    """One row group of the table: a space file, its data and its anchors."""

    name: str
    space: str
    dataset: str
    label: str
    trials: int
    folds: int
    book: str = "–"
    baseline: str | None = None  # "gbr" or "logreg"
    subset_space: str | None = None  # used with --rows


TASKS: tuple[Task, ...] = (
    Task("boston", "spaces/boston_housing.py", "boston_housing", "Boston housing 404/102 (real)",
         30, 4, book="2.55 test MAE", baseline="gbr"),
    Task("mnist_dense", "spaces/mnist_dense.py", "mnist", "MNIST 60k/10k (real)", 12, 3,
         book="97.8 % (keras mnist_mlp 98.40 %; goal ≥ 98.6 %)",
         subset_space="benchmarks/spaces/mnist_dense_subset.py"),
    Task("fashion_mnist_dense", "benchmarks/spaces/fashion_mnist_dense.py", "fashion_mnist",
         "Fashion-MNIST 60k/10k (real)", 12, 3,
         subset_space="benchmarks/spaces/fashion_mnist_dense.py"),
    Task("imdb", "spaces/imdb.py", "imdb", "IMDB **stand-in**: Rotten Tomatoes snippets", 12, 3,
         book="88 % (on IMDB, not comparable)", baseline="logreg"),
    Task("reuters", "spaces/reuters.py", "reuters", "Reuters **stand-in**: R52 (52 topics)", 12,
         3, book="~80 % (46 topics, not comparable)", baseline="logreg"),
)
TASK_NAMES = [t.name for t in TASKS]

#: Strong points of spaces/mnist_dense.py for ``--points`` (chosen before looking at any
#: score: the usual recipe for a wide regularised MLP), trained on 50k rows, held out on 10k.
POINTS: dict[str, dict[str, Any]] = {
    "2x1024 adamw, dropout, smoothing, cosine, 30 epochs": {
        "layers": 2, "units_0": 1024, "units_1": 1024, "dropout": 0.3, "input_dropout": 0.2,
        "optimizer": "adamw", "adamw_learning_rate": 1e-3, "adamw_weight_decay": 0.004,
        "label_smoothing": 0.1, "lr_schedule": "cosine", "epochs": 30, "batch_size": 128,
    },
    "3x1024 batchnorm adam, dropout, cosine, 30 epochs": {
        "layers": 3, "units_0": 1024, "units_1": 1024, "units_2": 1024, "dropout": 0.3,
        "input_dropout": 0.1, "batchnorm": True, "optimizer": "adam",
        "adam_learning_rate": 1e-3, "label_smoothing": 0.1, "lr_schedule": "cosine",
        "epochs": 30, "batch_size": 128,
    },
}


def full_points() -> list[dict[str, Any]]:
    """:data:`POINTS` completed with the space's defaults (what ``--points`` trains, FixedHP).

    ``run --enqueue`` leaves parameters a point does not give to the backend, which samples
    them (Optuna's ``enqueue_trial``): a point meant as "these values, the rest at the
    defaults" must say so. Conditional parameters of branches not taken stay out.
    """
    from search.hp import FixedHP
    from search.space import load_space

    space = load_space(ROOT / "spaces" / "mnist_dense.py")
    out = []
    for params in POINTS.values():
        hp = FixedHP(params)
        space.build(hp)
        space.fit_settings(hp)
        out.append(dict(hp.values))
    return out


def _run_search(task: Task, *, trials: int, folds: int, seed: int, rows: int | None,
                ddir: Path, repeats: int = 1, enqueue: bool = False,
                threads: int = 1) -> dict[str, Any]:
    """``python -m search run`` in a subprocess; the run's figures from its files.

    ``enqueue``: the search tries :data:`POINTS` first (``run --enqueue``), after trial 0.
    """
    space = task.subset_space if rows and task.subset_space else task.space
    name = (f"{task.name}-{trials}x{folds}-s{seed}" + (f"-rows{rows}" if rows else "")
            + (f"-r{repeats}" if repeats > 1 else "") + ("-points" if enqueue else ""))
    run_dir = RUNS / name
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    RUNS.mkdir(parents=True, exist_ok=True)
    points = RUNS / "mnist_points.json"
    if enqueue:
        points.write_text(json.dumps(full_points(), indent=1))
    cmd = [sys.executable, "-m", "search", "run", space, "--trials", str(trials),
           "--folds", str(folds), "--seed", str(seed), "--threads", str(threads),
           "--data-dir", str(ddir), "--out", str(RUNS), "--name", name, "--top", "5",
           "--max-failures", "0", *(["--repeats", str(repeats)] if repeats > 1 else []),
           *(["--enqueue", str(points)] if enqueue else [])]
    env = {**ENV, "SEARCH_BENCH_ROWS": str(rows or 0)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not (run_dir / "ensemble.json").is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-4:]
        return {"seed": seed, "error": " | ".join(tail) or f"exit {proc.returncode}",
                "wall_seconds": wall, "command": " ".join(cmd[1:])}
    shown = " ".join(cmd[1:]).replace(f"{ROOT}/", "")
    return {"seed": seed, "wall_seconds": wall, "run_dir": str(run_dir), "rows": rows,
            "repeats": repeats, "enqueued": len(POINTS) if enqueue else 0,
            "space": space, "command": f"python {shown}", **_read_run(run_dir)}


def _read_run(run_dir: Path) -> dict[str, Any]:
    """Trial counts, the default point's scores and each ensemble method's, from the files."""
    from search.metrics import get_metric

    run = json.loads((run_dir / "run.json").read_text())
    ens = json.loads((run_dir / "ensemble.json").read_text())
    metric = get_metric(run["metric"])
    y_test = np.load(run_dir / "y_test.npy")
    records = [json.loads(p.read_text()) for p in sorted(run_dir.glob("trials/*/trial.json"))]
    status = [r["status"] for r in records]
    default = next(r for r in records if r.get("is_default"))
    default_dir = run_dir / "trials" / f"{default['number']:04d}"
    default_test = None
    if (default_dir / "test.npy").is_file():
        default_test = float(metric(y_test, np.load(default_dir / "test.npy"), run["task"]))
    kinds = {}
    for kind, body in ens["kinds"].items():
        kinds[kind] = {
            "methods": {m: {"cv": v["oof_score"], "test": v["test_score"],
                            "weights": v["weights"]}
                        for m, v in body["methods"].items()},
            "members": [{"trial": m["trial"], "cv": m["cv_score"], "params": m["params"]}
                        for m in body["members"]],
        }
    return {
        "metric": run["metric"], "direction": run["direction"], "trials": len(records),
        "complete": status.count("complete"), "failed": status.count("failed"),
        "pruned": status.count("pruned"),
        "default": {"cv": default.get("score"), "test": default_test},
        "kinds": kinds,
    }


def gradient_boosting(ddir: Path, seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> list[float]:
    """Test MAE of scikit-learn's GradientBoostingRegressor (defaults) per seed."""
    from sklearn.ensemble import GradientBoostingRegressor

    from search.datasets import boston_housing

    (x, y), (xt, yt) = boston_housing(data_dir=ddir)
    return [float(np.mean(np.abs(GradientBoostingRegressor(random_state=s).fit(x, y)
                                 .predict(xt) - yt))) for s in seeds]


def logistic_regression(task: Task, ddir: Path) -> float:
    """Test accuracy of LogisticRegression on the space's own multi-hot features."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from search.space import load_space

    space = load_space(ROOT / task.space)
    (x, y), (xt, yt) = space.load_data(ddir)
    model = LogisticRegression(max_iter=2000).fit(sparse.csr_matrix(x), np.ravel(y))
    return float(np.mean(model.predict(sparse.csr_matrix(xt)) == np.ravel(yt)))


def strong_points(ddir: Path, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Train ``POINTS`` on MNIST rows 0-50k, score on rows 50k-60k (held out) and on test."""
    os.environ.setdefault("KERAS_BACKEND", "jax")  # as the runs (unless Keras is imported)
    from search.tf_setup import configure_threads

    configure_threads(1)
    import keras

    from search.hp import FixedHP
    from search.space import load_space

    space = load_space(ROOT / "spaces" / "mnist_dense.py")
    (x, y), (xt, yt) = space.load_data(ddir)
    out = []
    for label, params in POINTS.items():
        if names and label not in names:
            continue
        keras.utils.set_random_seed(0)
        hp = FixedHP(params)
        model = space.build(hp)
        settings = space.fit_settings(hp)
        settings.pop("early_stopping", None)
        t0 = time.perf_counter()
        history = model.fit(x[:50_000], y[:50_000], validation_data=(x[50_000:], y[50_000:]),
                            verbose=0, **settings).history
        seconds = time.perf_counter() - t0
        held_out = float(np.mean(model.predict(x[50_000:], verbose=0).argmax(1) == y[50_000:]))
        test = float(np.mean(model.predict(xt, verbose=0).argmax(1) == yt))
        out.append({"point": label, "params": params, "held_out_accuracy": held_out,
                    "best_epoch_held_out": float(max(history["val_accuracy"])),
                    "test_accuracy": test, "fit_seconds": seconds,
                    "model_params": int(model.count_params())})
        print(json.dumps(out[-1]), flush=True)
    return out


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.2f} %" if metric == "accuracy" else f"{value:.3f}"


def _gap(cv: float | None, test: float | None, metric: str) -> str:
    if cv is None or test is None:
        return "–"
    return f"{100 * (test - cv):+.2f} pt" if metric == "accuracy" else f"{test - cv:+.3f}"


def _rows(task: Task, result: dict[str, Any], anchor: str) -> list[str]:
    if "error" in result:
        return [f"| {task.label} | seed {result['seed']} | failed: {result['error']} "
                "| | | | | | |"]
    metric = result["metric"]
    body = result["kinds"]["folds"]["methods"]
    cells = [f"{_fmt(body[m]['cv'], metric)} / **{_fmt(body[m]['test'], metric)}**"
             for m in METHODS]
    nm = body["nelder-mead"]
    d = result["default"]
    rows_note = f", first {result['rows']:,} rows" if result.get("rows") else ""
    reps = result.get("repeats", 1)
    reps_note = f" × {reps} repeats" if reps > 1 else ""
    if result.get("enqueued"):
        reps_note += f" (trials 1–{result['enqueued']}: the enqueued strong points)"
    return [
        f"| {task.label}{rows_note} | {result['trials']} × {result.get('folds', task.folds)}"
        f"{reps_note}, "
        f"seed {result['seed']} ({result['failed']} failed) | "
        f"{_fmt(d['cv'], metric)} / {_fmt(d['test'], metric)} | {' | '.join(cells)} | "
        f"{_gap(nm['cv'], nm['test'], metric)} | {anchor} | {result['wall_seconds'] / 60:.1f} min |"
    ]


def _markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    header = ("| task (data) | trials × folds, seed | default point CV / test | best single "
              "CV / test | equal average | greedy | Nelder-Mead | NM test − CV | anchors (test) "
              "| wall |\n|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
    lines = []
    notes = []
    for task in TASKS:
        if task.name not in results:
            continue
        entry = results[task.name]
        anchor = task.book
        if "gbr" in entry:
            gbr = entry["gbr"]
            anchor = (f"book {task.book}; GradientBoostingRegressor {min(gbr):.2f}–"
                      f"{max(gbr):.2f} ({len(gbr)} seeds)")
        if "logreg" in entry:
            anchor = f"{task.book}; LogisticRegression {100 * entry['logreg']:.2f} %"
        for run in entry["runs"]:
            lines += _rows(task, run, anchor)
            if "error" not in run:
                best = run["kinds"]["folds"]["members"][0]
                notes.append(f"- `{task.name}` seed {run['seed']}: best trial "
                             f"{best['trial']}, `{best['params']}`. Command: "
                             f"`{run['command']}`.")
    points = results.get("points")
    point_lines = ""
    if points:
        rows = "\n".join(
            f"| {p['point']} | {p['model_params']:,} | **{100 * p['held_out_accuracy']:.2f} %** "
            f"| {100 * p['test_accuracy']:.2f} % | {p['fit_seconds'] / 60:.1f} min |"
            for p in points)
        point_lines = f"""
**Strong points of `spaces/mnist_dense.py`** (`python -m benchmarks.quality --points`): trained
on MNIST's first 50,000 training rows, scored on the other 10,000 (held out from the training
split, final epoch's weights); the test score is only reported. Goal ≥ 98.6 %.

| point | parameters | held-out accuracy | test accuracy | fit |
|---|---:|---:|---:|---:|
{rows}
"""
    return f"""## Model quality: searched spaces and their ensembles against anchors — issue 12

Command: `python benchmarks/run.py {NAME}` (or `python -m benchmarks.quality --tasks
{' '.join(args.tasks)} --trials N`) · {machine()} · Optuna TPE, JAX backend (each row's
command is listed below the table).
Each cell: CV (OOF score of the training split) / **test**. Ensembles combine the top 5
trials' fold members, weights fitted on out-of-fold predictions; test scores are computed
afterwards and choose nothing. Boston scores are MAE in $1000s (lower is better), the others
accuracy.

{header}
{chr(10).join(lines)}
{point_lines}
{chr(10).join(notes)}
"""


def main(tasks: list[str] | None = None, *, trials: int | None = None,
         folds: int | None = None, seeds: tuple[int, ...] = (0,), rows: int | None = None,
         points: bool = False, write: bool = True, repeats: int = 1, enqueue: bool = False,
         threads: int = 1, reread: bool = False) -> str:
    """Run the tasks' searches (and optionally the MNIST points); write the section.

    ``reread``: run nothing; re-ensemble the tasks' stored runs with the current code
    (``python -m search ensemble``) and read their figures again.
    """
    chosen = [t for t in TASKS if (tasks is None or t.name in tasks) and not reread]
    results: dict[str, Any] = {}
    previous = RESULTS / f"{NAME}.json"
    if write and previous.is_file():  # keep other tasks' figures when re-running a few
        results = json.loads(previous.read_text()).get("results", {})
    for task in chosen:
        ddir = data_dir(task.dataset)
        runs = []
        for seed in seeds:
            run = _run_search(task, trials=trials or task.trials, folds=folds or task.folds,
                              seed=seed, rows=rows, ddir=ddir, repeats=repeats,
                              enqueue=enqueue, threads=threads)
            run["folds"] = folds or task.folds
            runs.append(run)
        # runs of another kind (--repeats, --rows, --enqueue-points) stay beside these
        kind = (repeats, rows or None, bool(enqueue))
        kept = [r for r in results.get(task.name, {}).get("runs", [])
                if "error" not in r and kind
                != (r.get("repeats", 1), r.get("rows") or None, bool(r.get("enqueued")))]
        entry: dict[str, Any] = {"runs": kept + runs}
        if task.baseline == "gbr":
            entry["gbr"] = gradient_boosting(ddir)
        elif task.baseline == "logreg":
            entry["logreg"] = logistic_regression(task, ddir)
        results[task.name] = entry
    if points:
        results["points"] = strong_points(data_dir("mnist"))
    if reread:
        _reread(results, [t.name for t in TASKS if tasks is None or t.name in tasks])
    args = argparse.Namespace(tasks=[t.name for t in TASKS if t.name in results])
    md = _markdown(results, args)
    if write:
        write_section(NAME, md, {"machine": machine(), "results": results})
    return md


def _reread(results: dict[str, Any], names: list[str]) -> None:
    """Re-ensemble the stored runs of ``names`` with the current code; read them again
    (failed runs' rows are dropped)."""
    for name in names:
        if name not in results:
            continue
        results[name]["runs"] = [r for r in results[name]["runs"] if "error" not in r]
        for i, run in enumerate(results[name]["runs"]):
            run_dir = run.get("run_dir")
            if not run_dir or not (Path(run_dir) / "ensemble.json").is_file():
                continue
            subprocess.run([sys.executable, "-m", "search", "ensemble", run_dir, "--top", "5"],
                           cwd=ROOT, env=ENV, check=True, capture_output=True, text=True)
            results[name]["runs"][i] = {**run, **_read_run(Path(run_dir))}


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=TASK_NAMES, default=None,
                        help="tasks to search (default all)")
    parser.add_argument("--trials", type=int, help="trials per search (default per task)")
    parser.add_argument("--folds", type=int, help="folds per trial (default per task)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="search seeds, one run each (default 0)")
    parser.add_argument("--rows", type=int, help="MNIST/Fashion-MNIST: first N training rows")
    parser.add_argument("--points", action="store_true",
                        help="train the MNIST strong points (alone unless --tasks is given)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="repeated K-fold (run --repeats R); its rows stand beside "
                        "the task's other runs")
    parser.add_argument("--enqueue-points", action="store_true",
                        help="the searches try the MNIST strong points first (run --enqueue)")
    parser.add_argument("--threads", type=int, default=1,
                        help="run --threads (default 1)")
    parser.add_argument("--reread", action="store_true",
                        help="run nothing: re-ensemble the stored runs of --tasks (default "
                        "all) with the current code and rewrite the section")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    tasks = [] if args.points and not args.tasks else args.tasks
    print(main(tasks, trials=args.trials, folds=args.folds, seeds=tuple(args.seeds),
               rows=args.rows, points=args.points, write=not args.no_write,
               repeats=args.repeats, enqueue=args.enqueue_points, threads=args.threads,
               reread=args.reread))


if __name__ == "__main__":
    _cli()
