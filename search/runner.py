"""Start or resume a run: load the space, fix the folds, write run.json, hand over to a backend.

This is the library entry point behind ``python -m search run``; it prints nothing (progress
goes through :class:`~search.events.SearchEvents`).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from search.backends.base import Backend, TrialContext
from search.backends.optuna import JOURNAL, PRUNERS, SAMPLERS, OptunaBackend
from search.errors import StoreError, UsageError
from search.events import SearchEvents
from search.folds import make_folds
from search.space import Space, SpaceTrace, load_space, trace_space
from search.store import RunStore
from search.tf_setup import configure_threads
from search.trial import Dataset

__all__ = ["RunSettings", "open_run", "package_versions", "resume_run", "start_run", "work"]

#: Settings a resumed run must keep: changing them would break row-aligned OOF predictions
#: or the study's meaning.
FROZEN = ("folds", "seed", "sampler", "pruner", "storage", "backend")


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What a run was asked to do (stored in run.json under ``settings``)."""

    trials: int = 20
    folds: int | None = None  # None: the space's FOLDS
    seed: int = 0
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "none"
    storage: str | None = None
    keep_models: int = 5
    predict_test: bool = True
    data_dir: str | None = None
    backend: str = "optuna"
    threads: int = 0  # TensorFlow threads per process; 0: TensorFlow's default
    tensorboard: bool = False  # TensorBoard logs per trial and fold
    jobs: int = 1  # parallel trial processes on the run's storage

    def tf_threads(self) -> int:
        """Threads per process: as given, or the cores shared out when running in parallel."""
        if self.threads or self.jobs == 1:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.jobs)

    def validate(self) -> None:
        """Reject bad values with the flag's name and the fix."""
        if self.trials < 1:
            raise UsageError(f"--trials must be at least 1; got {self.trials}")
        if self.folds is not None and self.folds < 2:
            raise UsageError(f"--folds must be at least 2; got {self.folds}")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError(f"--timeout must be positive seconds; got {self.timeout}")
        if self.keep_models < 0:
            raise UsageError(f"--keep-models must be 0 or more; got {self.keep_models}")
        if self.sampler not in SAMPLERS:
            raise UsageError(
                f"--sampler must be one of {', '.join(SAMPLERS)}; got {self.sampler!r}")
        if self.pruner not in PRUNERS:
            raise UsageError(f"--pruner must be one of {', '.join(PRUNERS)}; got {self.pruner!r}")
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1; got {self.jobs}")
        if self.threads < 0:
            raise UsageError(f"--threads must be 0 or more; got {self.threads}")
        if self.backend != "optuna":
            raise UsageError(f"--backend {self.backend!r} is not available yet; use optuna")


def package_versions() -> dict[str, str]:
    """Versions that decide whether a run can be reproduced."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("search-ensembles", "tensorflow-cpu", "tensorflow", "keras", "optuna", "numpy",
                 "scikit-learn", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _run_name(space: Space, name: str | None) -> str:
    if name is None:
        return f"{space.name}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(f"--name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def _backend(settings: RunSettings, study_name: str) -> Backend:
    return OptunaBackend(
        study_name=study_name, sampler=settings.sampler, pruner=settings.pruner,
        storage=settings.storage, jobs=settings.jobs,
    )


def _data_summary(data: Dataset) -> dict[str, Any]:
    def shape(a: Any) -> Any:
        return list(np.shape(a)) if not isinstance(a, (dict, list, tuple)) else "structured"

    return {"n_train": len(data.y_train), "n_test": len(data.y_test),
            "x_train_shape": shape(data.x_train), "y_train_shape": list(data.y_train.shape),
            "x_test_shape": shape(data.x_test)}


def start_run(
    space_path: str | Path,
    settings: RunSettings,
    *,
    out: str | Path = "experiments",
    name: str | None = None,
    events: SearchEvents | None = None,
) -> RunStore:
    """Create a new run directory and search until ``settings.trials`` trials finished.

    Trial 0 is the space's default point, so every leaderboard shows the book's baseline.
    """
    settings.validate()
    configure_threads(settings.tf_threads())
    events = events or SearchEvents()
    space = load_space(space_path)
    k = settings.folds or space.folds
    settings = replace(settings, folds=k)
    data = Dataset.from_space(space, settings.data_dir)
    trace = trace_space(space)
    if settings.sampler == "grid":  # fail before any directory is made
        from search.backends.optuna import make_sampler

        make_sampler("grid", seed=0, trace=trace)
    fold_of = make_folds(data.y_train, space.task, k, settings.seed)
    run_name = _run_name(space, name)
    store = RunStore(Path(out) / run_name)
    if store.root.exists():
        raise UsageError(
            f"{store.root} already exists; choose another --name, or continue it with "
            f"--resume {store.root}"
        )
    store.root.mkdir(parents=True)
    store.save_array("folds.npy", fold_of)
    store.save_array("y_train.npy", data.y_train)
    store.save_array("y_test.npy", data.y_test)
    run = {
        "name": run_name,
        "created": time.time(),
        "space": {"path": str(space.path), "sha256": space.sha256, "name": space.name,
                  "doc": space.doc},
        "task": space.task,
        "metric": space.metric.name,
        "reference": space.reference,
        "direction": space.direction,
        "settings": asdict(settings),
        "storage": settings.storage or f"journal:{JOURNAL}",
        "study_name": run_name,
        "data": _data_summary(data),
        "params": trace.to_json(),
        "default_params": trace.defaults,
        "default_fit": trace.fit,
        "versions": package_versions(),
        "invocations": [],
    }
    store.write_run(run)
    _optimize(store, run, settings, _context(space, trace, data, store, fold_of, settings,
                                             events))
    return store


def resume_run(
    run_dir: str | Path,
    *,
    space_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    events: SearchEvents | None = None,
) -> RunStore:
    """Continue a run until its (possibly raised) trial total; finished trials are not rerun.

    Args:
        run_dir: The run directory.
        space_path: The space file; must be byte-identical to the run's (its sha256).
            Defaults to the path recorded in run.json.
        overrides: Settings given again on the command line. ``trials``, ``timeout``,
            ``keep_models`` and ``data_dir`` may change; the ones in :data:`FROZEN` must
            equal the run's.
    """
    store = RunStore(run_dir).require()
    run = store.read_run()
    stored = RunSettings(**run["settings"])
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key in FROZEN:
        if key in overrides and overrides[key] != getattr(stored, key):
            raise UsageError(
                f"--{key.replace('_', '-')} {overrides[key]} differs from the run's "
                f"{getattr(stored, key)}; it cannot change on --resume (start a new run instead)"
            )
    settings = replace(stored, **overrides)
    settings.validate()
    configure_threads(settings.tf_threads())
    events = events or SearchEvents()
    space, data = open_run(store, space_path=space_path, data_dir=settings.data_dir)
    fold_of = store.load_array("folds.npy")
    trace = trace_space(space)
    run["settings"] = asdict(settings)
    _optimize(store, run, settings, _context(space, trace, data, store, fold_of, settings,
                                             events))
    return store


def open_run(store: RunStore, *, space_path: str | Path | None = None,
             data_dir: str | Path | None = None) -> tuple[Space, Dataset]:
    """The run's space (byte-identical to the one it started with) and its data.

    Later stages that train (resume, retrain) must see the very space and data the run's
    trials saw; anything else would make the stored OOF predictions meaningless.
    """
    run = store.read_run()
    space = load_space(space_path or run["space"]["path"])
    if space.sha256 != run["space"]["sha256"]:
        raise UsageError(
            f"{space.path} has changed since {store.root.name} started (sha256 differs); "
            "trials of one run must come from one space: start a new run instead"
        )
    data = Dataset.from_space(space, data_dir if data_dir is not None
                              else run["settings"].get("data_dir"))
    y_stored = store.load_array("y_train.npy")
    if y_stored.shape != data.y_train.shape or not np.array_equal(y_stored, data.y_train):
        raise StoreError(
            f"the training data differs from the data {store.root.name} was started with; "
            "check --data-dir"
        )
    return space, data


def work(run_dir: str | Path, index: int) -> None:
    """A worker process of a parallel run (``--jobs``): trials until the run's total.

    Reads everything from run.json (which the driver wrote first) and writes only trial
    records, never run.json.
    """
    store = RunStore(run_dir).require()
    run = store.read_run()
    settings = RunSettings(**run["settings"])
    configure_threads(settings.tf_threads())
    space, data = open_run(store)
    ctx = _context(space, trace_space(space), data, store, store.load_array("folds.npy"),
                   settings, SearchEvents())
    _backend(settings, run["study_name"]).optimize(
        ctx, n_trials=settings.trials, timeout=settings.timeout, worker=index)


def _context(space: Space, trace: SpaceTrace, data: Dataset, store: RunStore,
             fold_of: np.ndarray, settings: RunSettings, events: SearchEvents) -> TrialContext:
    return TrialContext(space=space, trace=trace, data=data, store=store, fold_of=fold_of,
                        seed=settings.seed, keep_models=settings.keep_models,
                        predict_test=settings.predict_test, tensorboard=settings.tensorboard,
                        events=events)


def _optimize(store: RunStore, run: dict[str, Any], settings: RunSettings,
              ctx: TrialContext) -> None:
    entry: dict[str, Any] = {"started": time.time(), "trials": settings.trials,
                             "argv": sys.argv[1:], "finished": None}
    run["invocations"].append(entry)
    store.write_run(run)
    try:
        _backend(settings, run["study_name"]).optimize(
            ctx, n_trials=settings.trials, timeout=settings.timeout
        )
        entry["outcome"] = "finished"
    except KeyboardInterrupt:
        entry["outcome"] = "interrupted"
        raise
    finally:
        entry["finished"] = time.time()
        store.write_run(run)
