"""Nested cross-validation of the whole procedure: ``python -m search evaluate``.

A run's test score says how good *one* final ensemble is; a run's CV score flatters it,
because the same folds chose the parameters, the members and the weights. What a user
deciding whether to trust the procedure needs is what the procedure itself (search +
ensemble, exactly as ``python -m search run`` does it) is worth on rows it never saw, and how
much that varies. So: split the space's *training* rows into outer folds (StratifiedKFold
for classification, KFold for regression, :func:`search.folds.make_folds`); for each outer
fold, make a normal run directory whose training rows are the outer-train rows and whose
test rows are the outer-held-out rows (:mod:`search.rows`), search it with inner K-fold,
ensemble its top trials, and score the final ensemble, the best single trial, the equal
average and the default point on the held-out rows. The space's own test split is never
loaded into an outer run, so it stays untouched for the user.

Layout of an evaluate directory::

    <space>-evaluate-<date>/
      evaluate.json        the settings, one entry per finished outer fold (scores on the
                           held-out rows and the inner CV), the summary (mean ± std, spread,
                           optimism of the inner CV); rewritten after every outer fold
      outer_folds.npy      outer fold id (0..N-1) of every row of the space's training split
      space.py             a byte-identical copy of the space file (what --resume runs)
      outer_<i>/           outer fold i: a normal run directory (``show``, ``check``,
                           ``ensemble`` work on it), with rows_train.npy / rows_test.npy

Only a fully finished outer fold (searched, ensembled, scored) is entered in
evaluate.json, atomically, so a crash loses no finished outer fold; ``--resume`` keeps
those and continues an unfinished outer run with ``run --resume``'s machinery (its finished
trials and folds are kept too). This module prints nothing: progress goes through
:class:`EvaluateEvents`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from search.errors import RunNotFoundError, StoreError, UsageError
from search.events import EvaluateEvents
from search.folds import make_folds
from search.redact import redact_url
from search.rows import RowSubset, read_rows
from search.runner import RunSettings, refuse_change, resume_run, start_run
from search.store import RunStore, write_json

__all__ = ["CONTENDERS", "EVALUATE_JSON", "EvaluateEvents", "headline", "outer_split",
           "read_evaluation", "resume_evaluate", "start_evaluate", "summarize"]

EVALUATE_JSON = "evaluate.json"
OUTER_FOLDS = "outer_folds.npy"
SPACE_COPY = "space.py"

#: What is scored on each outer fold's held-out rows, and how a reader calls it.
CONTENDERS = {
    "final": "final ensemble (Nelder-Mead weights, fold members)",
    "single": "best single trial",
    "average": "equal average of the top trials",
    "default": "default point (trial 0)",
}
#: Settings that give the estimate its meaning: every outer fold must run the same
#: procedure, so they cannot change on --resume. Resources (threads, jobs, data location)
#: may.
FROZEN = ("trials", "folds", "seed", "backend", "keras_backend")
#: Resources a resumed evaluation may change (the outer runs' own resume allows them too).
RESOURCES = ("data_dir", "threads", "jobs")


def _evaluation_name(space_name: str, name: str | None) -> str:
    if name is None:
        return f"{space_name}-evaluate-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(f"--name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def _digest(y: np.ndarray) -> str:
    """Digest of the training targets: a resumed evaluation must see the same data."""
    return hashlib.sha256(np.ascontiguousarray(y).tobytes()
                          + str((y.dtype.str, y.shape)).encode()).hexdigest()


def outer_split(y: np.ndarray, task: str, outer: int, seed: int) -> np.ndarray:
    """Outer fold id of every training row (StratifiedKFold / KFold, shuffled by ``seed``).

    The same splitter as the inner folds, with messages that name ``--outer``.
    """
    if outer < 2:
        raise UsageError(f"--outer must be at least 2; got {outer}")
    if outer > len(y):
        raise UsageError(f"--outer {outer} is more than the {len(y)} training rows; use fewer")
    try:
        return make_folds(y, task, outer, seed)  # type: ignore[arg-type]
    except UsageError as exc:
        raise UsageError(f"--outer {outer}: {exc}".replace("use fewer --folds",
                                                              "use fewer --outer")) from exc


def _rows(outer_of: np.ndarray, fold: int) -> RowSubset:
    return RowSubset.checked(np.flatnonzero(outer_of != fold), np.flatnonzero(outer_of == fold),
                             len(outer_of))


def start_evaluate(
    space_path: str | Path,
    settings: RunSettings,
    *,
    outer: int = 5,
    top: int = 5,
    out: str | Path = "experiments",
    name: str | None = None,
    events: EvaluateEvents | None = None,
) -> Path:
    """Estimate the procedure's score by nested cross-validation; return the evaluate dir.

    Args:
        space_path: The space file.
        settings: The inner runs' settings (``trials``, ``folds``, ``seed``, backend, …):
            every outer fold runs with these, as ``python -m search run`` would.
        outer: Outer folds (at least 2).
        top: Trials each outer run ensembles (at least 2: the final ensemble is scored).

    Everything a user can get wrong (flags, the space, the data, too few rows for the outer
    or inner folds) is checked before the directory is made.
    """
    from search.space import check_default_point, declared_backend, load_space, trace_space
    from search.tf_setup import select_backend
    from search.trial import Dataset

    _check_top(top, settings.trials)
    settings = settings.validate()
    settings = replace(settings, keras_backend=select_backend(
        settings.keras_backend or declared_backend(space_path)))
    space = load_space(space_path)
    data_dir = str(Path(settings.data_dir).resolve()) if settings.data_dir else None
    k = settings.folds or space.folds
    settings = replace(settings, folds=k, data_dir=data_dir,
                       keep_models=max(settings.keep_models, top))
    data = Dataset.from_space(space, data_dir)
    check_default_point(space, trace_space(space), data.y_train, data.y_test,
                        x_train=data.x_train)
    y = data.y_train
    del data
    outer_of = outer_split(y, space.task, outer, settings.seed)
    for i in range(outer):  # the inner folds of every outer run must be possible up front
        try:
            make_folds(y[outer_of != i], space.task, k, settings.seed)
        except UsageError as exc:
            raise UsageError(f"outer fold {i} ({int(np.sum(outer_of != i))} training rows): "
                             f"{exc}") from exc
    root = Path(out) / _evaluation_name(space.name, name)
    if root.exists():
        raise UsageError(f"{root} already exists; choose another --name, or continue it with "
                         f"--resume {root}")
    root.mkdir(parents=True)
    shutil.copyfile(space.path, root / SPACE_COPY)
    RunStore(root).save_array(OUTER_FOLDS, outer_of)
    doc: dict[str, Any] = {
        "kind": "evaluate",
        "name": root.name,
        "created": time.time(),
        "space": {"path": str(space.path), "sha256": space.sha256, "name": space.name,
                  "copy": SPACE_COPY},
        "task": space.task,
        "metric": space.metric.name,
        "direction": space.direction,
        "outer": outer,
        "top": top,
        "outer_split": ("StratifiedKFold" if space.task != "regression" else "KFold")
        + f"(n_splits={outer}, shuffle=True, random_state={settings.seed}) over the space's "
        "training rows; its test split is not used",
        "n_rows": len(y),
        "y_sha256": _digest(y),
        "outer_folds": OUTER_FOLDS,
        "settings": settings.stored(),
        "invocations": [],
        "folds": [],
        "summary": summarize([], direction=space.direction, outer=outer),
    }
    write_json(root / EVALUATE_JSON, doc)
    try:
        return _evaluate(root, doc, space.path, settings, events or EvaluateEvents())
    except UsageError:
        # refused before the first outer run existed (e.g. the backend's own checks): leave
        # no half-made evaluate directory behind, as `run` leaves no run directory
        if not (root / "outer_0" / "run.json").exists():
            shutil.rmtree(root)
        raise


def _check_top(top: int, trials: int) -> None:
    if top < 2:
        raise UsageError(f"--top must be at least 2 (evaluate scores the final ensemble of the "
                         f"top trials); got {top}")
    if trials < 2:
        raise UsageError(f"--trials must be at least 2 (an ensemble needs 2 trials); got "
                         f"{trials}")


def read_evaluation(root: str | Path) -> dict[str, Any]:
    """evaluate.json of an evaluate directory (a UsageError naming the path if it is none)."""
    path = Path(root) / EVALUATE_JSON
    if not path.is_file():
        raise RunNotFoundError(f"{root} is not an evaluate directory (no {EVALUATE_JSON}); "
                               "start one with: python -m search evaluate SPACE --outer 5")
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path} is not valid JSON: {exc}") from exc
    return doc


def resume_evaluate(
    root: str | Path,
    *,
    space_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    events: EvaluateEvents | None = None,
) -> Path:
    """Continue an interrupted evaluation: finished outer folds are kept as they are, an
    unfinished outer run is continued with ``run --resume`` (its finished trials kept),
    outer folds not yet begun are started.

    Args:
        space_path: The space file; must be byte-identical to the evaluation's (default:
            its copy, ``space.py``).
        overrides: Flags given again: ``outer``, ``top``, ``trials``, ``folds``, ``seed``,
            ``backend``, ``keras_backend`` and backend ``options`` must equal the
            evaluation's; ``data_dir``, ``threads`` and ``jobs`` may change.
    """
    from search.space import load_space
    from search.tf_setup import select_backend
    from search.trial import Dataset

    root = Path(root)
    doc = read_evaluation(root)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    stored = RunSettings.from_json(doc["settings"])
    for key, value in given.items():
        if key in ("outer", "top"):
            current: Any = doc[key]
        elif key == "options":
            for opt, v in value.items():
                if v is not None:
                    refuse_change(opt, v, stored.options.get(opt), "evaluation")
            continue
        elif key in FROZEN:
            current = getattr(stored, key)
        elif key in RESOURCES:
            continue
        else:
            raise UsageError(f"--{key.replace('_', '-')} cannot be given with --resume")
        refuse_change(key, value, current, "evaluation")
    changes = {k: given[k] for k in RESOURCES if k in given}
    if "data_dir" in changes:
        changes["data_dir"] = str(Path(changes["data_dir"]).resolve())
    settings = replace(stored, **changes).validate()
    select_backend(settings.keras_backend)
    space = load_space(space_path or root / doc["space"].get("copy", SPACE_COPY))
    if space.sha256 != doc["space"]["sha256"]:
        raise UsageError(f"{space.path} has changed since {root.name} started (sha256 "
                         "differs); every outer fold must run one space: start a new "
                         "evaluation instead")
    y = Dataset.from_space(space, settings.data_dir).y_train
    if _digest(y) != doc["y_sha256"]:
        raise StoreError(f"the training data differs from the data {root.name} was started "
                         "with; check --data-dir")
    return _evaluate(root, doc, space.path, settings, events or EvaluateEvents())


def _evaluate(root: Path, doc: dict[str, Any], space_path: Path, settings: RunSettings,
              events: EvaluateEvents) -> Path:
    """Run every outer fold not yet finished; rewrite evaluate.json after each."""
    outer_of = RunStore(root).load_array(doc["outer_folds"])
    if len(outer_of) != doc["n_rows"]:
        raise StoreError(f"{root / doc['outer_folds']} has {len(outer_of)} fold ids for "
                         f"{doc['n_rows']} training rows")
    done = {int(e["fold"]): e for e in doc["folds"] if e.get("status") == "complete"}
    entry: dict[str, Any] = {"started": time.time(), "argv": [redact_url(a) for a in
                                                               sys.argv[1:]],
                             "finished": None}
    doc["invocations"].append(entry)
    write_json(root / EVALUATE_JSON, doc)
    events.evaluation_started(root=root, outer=int(doc["outer"]), done=len(done))
    try:
        for fold in range(int(doc["outer"])):
            if fold in done:
                continue
            result = _outer_fold(root, doc, fold, _rows(outer_of, fold), space_path,
                                 settings, events)
            done[fold] = result
            doc["folds"] = [done[i] for i in sorted(done)]
            doc["summary"] = summarize(doc["folds"], direction=doc["direction"],
                                       outer=int(doc["outer"]))
            write_json(root / EVALUATE_JSON, doc)  # the commit record of this outer fold
            events.fold_finished(result, doc["summary"])
        entry["outcome"] = "finished"
    except KeyboardInterrupt:
        entry["outcome"] = "interrupted"
        raise
    except Exception as exc:
        entry["outcome"] = f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        entry["finished"] = time.time()
        write_json(root / EVALUATE_JSON, doc)
    return root


def _outer_fold(root: Path, doc: dict[str, Any], fold: int, rows: RowSubset, space_path: Path,
                settings: RunSettings, events: EvaluateEvents) -> dict[str, Any]:
    """Search, ensemble and score one outer fold (starting or continuing its run)."""
    from search.ensembling import METHODS, ensemble_run

    run_dir = root / f"outer_{fold}"
    resumed = (run_dir / "run.json").is_file()
    if run_dir.exists() and not resumed:
        # made but cut off before run.json was written: nothing finished lives there
        shutil.rmtree(run_dir)
    search_events = events.run_events(fold, run_dir, resumed)
    try:
        if resumed:
            stored = read_rows(RunStore(run_dir))
            if stored is None or stored.key != rows.key:
                raise StoreError(f"{run_dir} was not made from outer fold {fold}'s rows of "
                                 f"{root / doc['outer_folds']}; move it away and --resume again")
            resume_run(run_dir, space_path=space_path, overrides={
                "data_dir": settings.data_dir, "threads": settings.threads,
                "jobs": settings.jobs}, events=search_events)
        else:
            start_run(space_path, settings, out=root, name=run_dir.name, events=search_events,
                      rows=rows)
    finally:
        events.run_ended(fold)
    store = RunStore(run_dir)
    notes: list[str] = []
    counts = Counter(t.status for t in store.trials())
    report: dict[str, Any] | None = None
    if counts.get("complete", 0) >= 2:
        report = ensemble_run(run_dir, top=int(doc["top"]), kinds=["folds"], methods=METHODS)
    else:
        notes.append(f"{counts.get('complete', 0)} completed trial(s): no ensemble")
    try:
        from reports.html import write_report

        write_report(run_dir)
    except Exception as exc:  # the fold's results are saved; a report bug must not lose them
        notes.append(f"report.html not written ({type(exc).__name__}: {exc}); retry with "
                     f"python -m search report {run_dir}")
    by_status = {str(status): n for status, n in counts.items()}
    return _fold_entry(fold, run_dir, rows, report, by_status, notes)


def _fold_entry(fold: int, run_dir: Path, rows: RowSubset, report: dict[str, Any] | None,
                counts: dict[str, int], notes: list[str]) -> dict[str, Any]:
    """One outer fold's scores on its held-out rows, beside the inner CV that chose them."""
    from reports import answer

    a = answer(run_dir)
    scores: dict[str, dict[str, Any]] = {}
    methods = (report or {}).get("kinds", {}).get("folds", {}).get("methods", {})
    for key, method in (("final", "nelder-mead"), ("average", "average")):
        m = methods.get(method)
        if m is not None:
            scores[key] = {"inner_cv": m.get("oof_score"), "outer": m.get("test_score"),
                           "trial": None}
    for key, kind in (("single", "single"), ("default", "default")):
        row = a.row(kind)
        if row is not None:
            scores[key] = {"inner_cv": row.cv, "outer": row.test, "trial": row.trial}
    return {"fold": fold, "status": "complete", "run": run_dir.name,
            "n_train": len(rows.train), "n_test": len(rows.test), "trials": counts,
            "scores": scores, "notes": notes, "finished": time.time()}


def _stats(values: list[float | None]) -> dict[str, Any]:
    """Mean, sample std (ddof=1: the outer folds are a sample of the splits one could
    draw), min and max over the finite values; None where there are too few."""
    got = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    return {"per_fold": values, "n": len(got),
            "mean": float(got.mean()) if len(got) else None,
            "std": float(got.std(ddof=1)) if len(got) >= 2 else None,
            "min": float(got.min()) if len(got) else None,
            "max": float(got.max()) if len(got) else None}


def summarize(folds: list[dict[str, Any]], *, direction: str, outer: int) -> dict[str, Any]:
    """The estimate over the finished outer folds: per contender its outer scores (per fold,
    mean ± std, min–max), and the final ensemble's inner CV against its outer score.

    ``optimism`` is signed so that positive means the inner CV flattered the final ensemble
    (outer − inner for a metric to minimise, inner − outer for one to maximise).
    """
    folds = sorted(folds, key=lambda e: e["fold"])

    def get(e: dict[str, Any], key: str, what: str) -> float | None:
        value = e["scores"].get(key, {}).get(what)
        return None if value is None else float(value)

    contenders = {}
    for key, label in CONTENDERS.items():
        contenders[key] = {"label": label, **_stats([get(e, key, "outer") for e in folds])}
    inner = [get(e, "final", "inner_cv") for e in folds]
    outer_final = [get(e, "final", "outer") for e in folds]
    sign = 1.0 if direction == "minimize" else -1.0
    optimism = [None if i is None or o is None else sign * (o - i)
                for i, o in zip(inner, outer_final, strict=True)]
    return {"folds_done": [e["fold"] for e in folds], "complete": len(folds) == outer,
            "std": "sample standard deviation over the outer folds (ddof=1)",
            "contenders": contenders,
            "final_inner_cv": _stats(inner),
            "optimism": {**_stats(optimism),
                         "meaning": "positive: the inner CV score of the final ensemble was "
                                    "better than its score on the held-out rows"}}


def headline(doc: dict[str, Any]) -> str:
    """The answer first: the procedure's estimated metric, mean ± std over N outer folds."""
    final = doc["summary"]["contenders"]["final"]
    metric, n = doc["metric"], final["n"]
    if not n:
        return f"no outer fold finished yet (of {doc['outer']})"
    std = "" if final["std"] is None else f" ± {final['std']:.4g}"
    partial = "" if doc["summary"]["complete"] else f" (of {doc['outer']}: unfinished)"
    return (f"the procedure's estimated {metric}: {final['mean']:.4g}{std} over {n} outer "
            f"folds{partial}")
