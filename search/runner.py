"""Start or resume a run: load the space, fix the folds, write run.json, hand over to a backend.

This is the library entry point behind ``python -m search run``; it prints nothing (progress
goes through :class:`~search.events.SearchEvents`).
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import os
import platform
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from search.backends import Backend, Driver, backend_class
from search.backends.optuna import JOURNAL
from search.errors import RunFailed, StoreError, UsageError
from search.events import SearchEvents
from search.folds import make_folds
from search.plan import RunPlan, SpaceSource
from search.redact import redact_url
from search.rows import RowSubset, read_rows
from search.space import (
    Space,
    SpaceTrace,
    check_default_point,
    check_points,
    declared_backend,
    load_space,
    trace_space,
)
from search.store import RunStore
from search.tf_setup import configure_gpu_memory, configure_threads, select_backend
from search.trial import Dataset
from search.writer import StoreWriter

__all__ = ["RunSettings", "open_run", "package_versions", "resume_run", "start_run", "work"]

#: Settings a resumed run must keep: changing them would break row-aligned OOF predictions
#: or the study's meaning (each backend marks which of its options are frozen too).
FROZEN = ("folds", "seed", "backend", "repeats", "seeds")
#: Where a storage URL's password comes from when run.json (which never holds it) is read.
STORAGE_ENV = "SEARCH_STORAGE"
#: The copy of the space file inside the run directory.
SPACE_COPY = "space.py"


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What a run was asked to do (stored in run.json under ``settings``).

    ``options`` are the backend's own (``--sampler``/``--pruner``/``--storage`` for Optuna,
    ``--algorithm``/``--scheduler``/``--address``/… for Ray); each backend declares them.
    """

    trials: int = 20
    folds: int | None = None  # None: the space's FOLDS
    repeats: int = 1  # repeated K-fold: K-fold splits, each row's OOF the mean over them
    seeds: int = 1  # seed bagging: models per fold, their predictions averaged
    seed: int = 0
    timeout: float | None = None
    keep_models: int = 5
    predict_test: bool = True
    data_dir: str | None = None
    backend: str = "optuna"
    options: dict[str, Any] = field(default_factory=dict)
    threads: int = 0  # TensorFlow threads per process; 0: TensorFlow's default
    tensorboard: bool = False  # TensorBoard logs per trial and fold
    jobs: int = 1  # parallel trial processes (Ray: CPUs of the local runtime)
    max_failures: int = 10  # failed trials in a row that stop the run (0: never)
    keras_backend: str | None = None  # None: the space's KERAS_BACKEND, else Keras' default
    stack_folds: bool = True  # a trial's folds as one vectorised program where they can be

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSettings:
        """Settings from run.json; runs made before backend options keep loading."""
        data = dict(data)
        options = dict(data.pop("options", None) or {})
        for legacy in ("sampler", "pruner", "storage"):
            if legacy in data:
                value = data.pop(legacy)
                if value is not None or legacy == "storage":
                    options.setdefault(legacy, value)
        if "keras_backend" not in data:  # runs made before the choice trained on TensorFlow
            data["keras_backend"] = "tensorflow"
        if data.get("backend") == "ray" and "max_failures" in options:  # renamed option
            options.setdefault("worker_retries", options.pop("max_failures"))
        known = set(cls.__dataclass_fields__)
        return cls(options=options, **{k: v for k, v in data.items() if k in known})

    def tf_threads(self) -> int:
        """Threads per process: as given, or the cores shared out when running in parallel."""
        if self.threads or self.jobs == 1:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.jobs)

    def backend_class(self) -> type[Backend]:
        return backend_class(self.backend)

    def validate(self) -> RunSettings:
        """Reject bad values with the flag's name and the fix; return the settings with
        the backend's options completed by their defaults."""
        if self.trials < 1:
            raise UsageError(f"--trials must be at least 1; got {self.trials}")
        if self.folds is not None and self.folds < 2:
            raise UsageError(f"--folds must be at least 2; got {self.folds}")
        if self.repeats < 1:
            raise UsageError(f"--repeats must be at least 1; got {self.repeats}")
        if self.seeds < 1:
            raise UsageError(f"--seeds must be at least 1; got {self.seeds}")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError(f"--timeout must be positive seconds; got {self.timeout}")
        if self.keep_models < 0:
            raise UsageError(f"--keep-models must be 0 or more; got {self.keep_models}")
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1; got {self.jobs}")
        if self.threads < 0:
            raise UsageError(f"--threads must be 0 or more; got {self.threads}")
        if self.max_failures < 0:
            raise UsageError(f"--max-failures must be 0 (never stop) or more; got "
                             f"{self.max_failures}")
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise UsageError("--tensorboard needs the tensorboard package, which is not "
                             "installed: pip install tensorboard")
        options = self.backend_class().check_options(self.options)
        return replace(self, options=options)

    def stored(self) -> dict[str, Any]:
        """The settings as run.json keeps them: secrets (a storage URL's password) removed."""
        out = asdict(self)
        opts = self.backend_class().options
        out["options"] = {k: (redact_url(v) if isinstance(v, str) and k in opts
                              and not opts[k].secret_free else v)
                          for k, v in self.options.items()}
        return out


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
    cls = settings.backend_class()
    return cls(study_name=study_name, **settings.options)  # type: ignore[call-arg]


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
    enqueue: list[dict[str, Any]] | None = None,
    enqueue_source: str = "enqueued points",
    rows: RowSubset | None = None,
) -> RunStore:
    """Create a new run directory and search until ``settings.trials`` trials finished.

    ``enqueue``: parameter sets the backend tries first, after trial 0 (partial dicts: the
    backend proposes the rest; ``enqueue_source`` names them in errors, e.g. the file).
    ``rows``: use these rows of the space's training split as
    the run's training and test rows instead of the space's own split (an outer fold of
    ``evaluate``); stored with the run, so every later stage sees the same rows.

    Everything users get wrong is checked before the directory is made: flags, the space
    file, the data, the default point's build, the backend's own needs. Trial 0 is the
    space's default point, run here by the driver, so every leaderboard shows the book's
    baseline.
    """
    settings = settings.validate()
    settings = replace(settings, keras_backend=select_backend(
        settings.keras_backend or declared_backend(space_path)))
    # The driver's own threads: as given (trial 0 runs alone, before any child starts);
    # --jobs children get cores/jobs each through the plan.
    configure_threads(settings.threads)
    configure_gpu_memory()
    events = events or SearchEvents()
    space = load_space(space_path)
    k = settings.folds or space.folds
    data_dir = str(Path(settings.data_dir).resolve()) if settings.data_dir else None
    settings = replace(settings, folds=k, data_dir=data_dir)
    data = Dataset.from_space(space, settings.data_dir, rows=rows)
    trace = trace_space(space)
    check_default_point(space, trace, data.y_train, data.y_test, x_train=data.x_train)
    if enqueue:
        check_points(space, trace, enqueue, enqueue_source)
    run_name = _run_name(space, name)
    backend = _backend(settings, run_name)
    fold_of = make_folds(data.y_train, space.task, k, settings.seed, settings.repeats)
    store = RunStore(Path(out) / run_name)
    if store.root.exists():
        raise UsageError(
            f"{store.root} already exists; choose another --name, or continue it with "
            f"--resume {store.root}"
        )
    driver = _driver(space, trace, data, store, fold_of, settings, events, rows=rows)
    driver.queued = list(enqueue or [])
    backend.prepare(driver)  # e.g. a grid of continuous parameters: fail before any dir
    try:
        _create(store, space, settings, trace, data, fold_of, run_name, backend, driver,
                rows=rows)
    finally:
        backend.close()
    return store


def _create(store: RunStore, space: Space, settings: RunSettings, trace: SpaceTrace,
            data: Dataset, fold_of: np.ndarray, run_name: str, backend: Backend,
            driver: Driver, *, rows: RowSubset | None = None) -> None:
    """Write the new run's directory and search (after every check has passed)."""
    store.root.mkdir(parents=True)
    shutil.copyfile(space.path, store.root / SPACE_COPY)
    if rows is not None:
        rows.save(store)
    store.save_array("folds.npy", fold_of)
    store.save_array("y_train.npy", data.y_train)
    store.save_array("y_test.npy", data.y_test)
    run = {
        "name": run_name,
        "created": time.time(),
        "space": {"path": str(space.path), "sha256": space.sha256, "name": space.name,
                  "doc": space.doc, "copy": SPACE_COPY},
        "task": space.task,
        "metric": space.metric.name,
        "reference": space.reference,
        "direction": space.direction,
        "settings": settings.stored(),
        "storage": (redact_url(settings.options["storage"])
                    if settings.options.get("storage") else
                    f"journal:{JOURNAL}" if settings.backend == "optuna" else None),
        "study_name": run_name,
        "data": _data_summary(data),
        **({"rows": rows.to_json()} if rows is not None else {}),
        "params": trace.to_json(),
        "default_params": trace.defaults,
        "default_fit": trace.fit,
        "versions": package_versions(),
        "invocations": [],
    }
    store.write_run(run)
    _optimize(store, run, settings, backend, driver)


def _secret_options(stored: RunSettings, given: dict[str, Any]) -> dict[str, Any]:
    """Options whose stored value was redacted: take them from the command line or env."""
    cls = stored.backend_class()
    out: dict[str, Any] = {}
    for key, opt in cls.options.items():
        value = stored.options.get(key)
        if opt.secret_free or not isinstance(value, str) or "***" not in value:
            continue
        real = given.get(key) or os.environ.get(STORAGE_ENV)
        if not real:
            raise UsageError(
                f"this run's --{key.replace('_', '-')} {value} has a password, which is never "
                f"stored: give it again with --{key.replace('_', '-')} URL or the environment "
                f"variable {STORAGE_ENV}"
            )
        if redact_url(real) != value:
            raise UsageError(
                f"--{key.replace('_', '-')} {redact_url(real)} is not this run's {value}"
            )
        out[key] = real
    return out


def refuse_change(key: str, value: Any, current: Any, what: str = "run") -> None:
    """The one error for a setting given again on ``--resume`` with another value (runs
    and evaluations alike): a frozen setting changes what earlier trials mean."""
    if value != current:
        raise UsageError(f"--{key.replace('_', '-')} {value} differs from the {what}'s "
                         f"{current}; it cannot change on --resume (start a new {what} "
                         "instead)")


def _resume_settings(run: dict[str, Any], overrides: dict[str, Any]) -> RunSettings:
    stored = RunSettings.from_json(run["settings"])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    given_opts = {k: v for k, v in (overrides.pop("options", None) or {}).items()
                  if v is not None}
    for key in FROZEN:
        if key in overrides:
            refuse_change(key, overrides[key], getattr(stored, key))
    cls = stored.backend_class()
    secrets = _secret_options(stored, given_opts)
    for key, value in given_opts.items():
        opt = cls.options.get(key)
        current = stored.options.get(key)
        if opt is not None and not opt.secret_free and key in secrets:
            continue
        if opt is not None and opt.frozen:
            refuse_change(key, value, current)
    options = {**stored.options, **given_opts, **secrets}
    return replace(stored, **overrides, options=options)


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
            Defaults to the run's own copy (``space.py``).
        overrides: Settings given again on the command line (backend options under
            ``options``). ``trials``, ``timeout``, ``keep_models``, ``data_dir``, ``jobs``
            and the backend's non-frozen options may change; the others must equal the run's.
    """
    store = RunStore(run_dir).require()
    run = store.read_run()
    settings = _resume_settings(run, overrides or {})
    if settings.data_dir:
        settings = replace(settings, data_dir=str(Path(settings.data_dir).resolve()))
    settings = settings.validate()
    settings = replace(settings, keras_backend=select_backend(settings.keras_backend))
    configure_threads(settings.threads)
    configure_gpu_memory()
    events = events or SearchEvents()
    space, data = open_run(store, space_path=space_path, data_dir=settings.data_dir)
    fold_of = store.load_array("folds.npy")
    trace = trace_space(space)
    check_default_point(space, trace, data.y_train, data.y_test, x_train=data.x_train)
    run["settings"] = settings.stored()
    backend = _backend(settings, run["study_name"])
    driver = _driver(space, trace, data, store, fold_of, settings, events,
                     rows=read_rows(store, run))
    backend.prepare(driver)
    try:
        _optimize(store, run, settings, backend, driver)
    finally:
        backend.close()
    return store


def open_run(store: RunStore, *, space_path: str | Path | None = None,
             data_dir: str | Path | None = None) -> tuple[Space, Dataset]:
    """The run's space (byte-identical to the one it started with) and its data.

    Later stages that train (resume, retrain) must see the very space and data the run's
    trials saw; anything else would make the stored OOF predictions meaningless. Without
    ``space_path`` the run's own copy is used (runs made before the copy existed: the path
    recorded in run.json). A run over a subset of the training rows (``rows`` in run.json,
    see :mod:`search.rows`) gets that subset again.
    """
    run = store.read_run()
    copy = store.root / run["space"].get("copy", SPACE_COPY)
    default = copy if copy.is_file() else Path(run["space"]["path"])
    space = load_space(space_path or default)
    if space.sha256 != run["space"]["sha256"]:
        raise UsageError(
            f"{space.path} has changed since {store.root.name} started (sha256 differs); "
            "trials of one run must come from one space: start a new run instead"
        )
    stored_dir = run["settings"].get("data_dir")
    data = Dataset.from_space(space, data_dir if data_dir is not None else stored_dir,
                              rows=read_rows(store, run))
    y_stored = store.load_array("y_train.npy")
    if y_stored.shape != data.y_train.shape or not np.array_equal(y_stored, data.y_train):
        raise StoreError(
            f"the training data differs from the data {store.root.name} was started with; "
            "check --data-dir"
        )
    return space, data


def work(run_dir: str | Path, *, options: dict[str, Any] | None = None,
         events: SearchEvents | None = None) -> None:
    """``python -m search worker RUN``: join a run's search from another process or host.

    The worker reads run.json and the run's copy of the space from ``run_dir`` (on a shared
    filesystem for other hosts), proposes from the run's study (an RDB storage all hosts
    reach) and writes its own trials' files into the run directory; the driver keeps model
    retention. Only backends whose state is shared storage support this (Optuna); Ray
    workers join a Ray cluster instead.
    """
    store = RunStore(run_dir).require()
    run = store.read_run()
    settings = _resume_settings(run, {"options": options or {}}).validate()
    if settings.backend != "optuna":
        raise UsageError(f"`search worker` joins Optuna runs; {store.root.name} uses --backend "
                         f"{settings.backend} (Ray: start workers with `ray start --address`)")
    select_backend(settings.keras_backend)
    configure_threads(settings.threads)
    configure_gpu_memory()
    driver, backend = join_run(store, run, settings, events or SearchEvents(),
                               worker=os.getpid())
    try:
        backend.optimize(driver, n_trials=settings.trials, timeout=settings.timeout)
    finally:
        driver.writer.release_all()
        backend.close()


def join_run(store: RunStore, run: dict[str, Any], settings: RunSettings,
             events: SearchEvents, *, worker: int) -> tuple[Driver, Backend]:
    """A session on an existing run (``run``: its run.json), as ``search worker`` joins it:
    its driver (one process, no model retention: the run's own driver keeps that) and its
    prepared backend."""
    space, data = open_run(store)
    driver = _driver(space, trace_space(space), data, store, store.load_array("folds.npy"),
                     replace(settings, jobs=1), events, worker=worker, retain=False,
                     rows=read_rows(store, run))
    backend = _backend(settings, run["study_name"])
    backend.prepare(driver)
    return driver, backend


def _driver(space: Space, trace: SpaceTrace, data: Dataset, store: RunStore,
            fold_of: np.ndarray, settings: RunSettings, events: SearchEvents, *,
            worker: int = 0, retain: bool = True, rows: RowSubset | None = None) -> Driver:
    plan = RunPlan(
        space=SpaceSource.from_path(space.path), fold_of=fold_of, seed=settings.seed,
        data_dir=settings.data_dir, predict_test=settings.predict_test,
        save_models=settings.keep_models > 0, threads=settings.tf_threads(),
        backend=settings.backend, keras_backend=settings.keras_backend, seeds=settings.seeds,
        stack_folds=settings.stack_folds,
        tensorboard_dir=str(store.root / "trials") if settings.tensorboard else None,
        rows=rows,
    )
    writer = StoreWriter(store, n_train=len(data.y_train), direction=space.direction,
                         keep_models=settings.keep_models, events=events, retain=retain)
    return Driver(plan=plan, space=space, trace=trace, data=data, writer=writer,
                  events=events, jobs=settings.jobs, worker=worker,
                  max_failures=settings.max_failures)


def _optimize(store: RunStore, run: dict[str, Any], settings: RunSettings, backend: Backend,
              driver: Driver) -> None:
    entry: dict[str, Any] = {"started": time.time(), "trials": settings.trials,
                             "argv": [redact_url(a) for a in sys.argv[1:]], "finished": None}
    run["invocations"].append(entry)
    store.write_run(run)
    try:
        driver.collect_interrupted()
        driver.run_default()
        if not backend.resumes_interrupted:
            driver.resume_here()
        if driver.stop_reason() is None:
            backend.optimize(driver, n_trials=settings.trials, timeout=settings.timeout)
        _check_outcome(store, driver)
        entry["outcome"] = "finished"
    except KeyboardInterrupt:
        entry["outcome"] = "interrupted"
        raise
    except RunFailed as exc:
        entry["outcome"] = f"failed: {exc}"
        raise
    finally:
        driver.writer.release_all()  # trials still running read as interrupted
        entry["finished"] = time.time()
        store.write_run(run)


def _check_outcome(store: RunStore, driver: Driver) -> None:
    """A run that achieved nothing must say so (exit 1), with the most common reason."""
    stop = driver.stop_reason()
    where = f"; the failed trials' reasons: python -m search show {store.root}"
    if stop is not None:
        raise RunFailed(f"the search stopped: {stop}{where}")
    records = list(driver.writer.records.values())
    if not any(r.status == "complete" for r in records):
        failed = [r for r in records if r.status == "failed"]
        reasons = Counter((r.error or "unknown").splitlines()[0] for r in failed)
        common = (f"; the most common reason ({reasons.most_common(1)[0][1]} of "
                  f"{len(failed)} failed): {reasons.most_common(1)[0][0]}" if reasons else "")
        raise RunFailed(f"no trial completed ({len(records)} trials: "
                        f"{sum(r.status == 'pruned' for r in records)} pruned, "
                        f"{len(failed)} failed){common}{where}")
