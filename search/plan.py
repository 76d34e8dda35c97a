"""What a trial needs to run anywhere: a small, picklable description, and its loading.

A trial may run in the driver, in a ``--jobs`` child process, or on another machine of a
Ray cluster that shares no disk with the driver. So nothing here is a path into the run
directory: the space travels as its file's *content* (checked by sha256), the folds as the
fold-id array, the data as an absolute location each machine reads for itself (the same
files in Keras' layouts, see ``python -m search data fetch``).

:class:`RunPlan` is constant for a run (shipped once per worker); :class:`TrialSpec` is one
trial's part (its store number and parameters). :func:`execute` is the shared trial code
every executor calls; :func:`process_state` caches the loaded space and data per process, so
a reused worker pays for imports and data loading once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.errors import SpaceError
from search.hp import FixedHP, HyperParameters, Value

if TYPE_CHECKING:
    from search.results import TrialSink
    from search.rows import RowSubset
    from search.space import Space
    from search.store import TrialRecord
    from search.trial import Dataset, Report, TrialResult

__all__ = ["RunPlan", "SpaceSource", "TrialSpec", "execute", "process_state"]


@dataclass(frozen=True)
class SpaceSource:
    """A space file carried by content (its bytes and their sha256), not by path."""

    name: str
    text: str
    sha256: str

    @classmethod
    def from_path(cls, path: str | Path) -> SpaceSource:
        path = Path(path)
        raw = path.read_bytes()
        return cls(name=path.name, text=raw.decode("utf-8"),
                   sha256=hashlib.sha256(raw).hexdigest())

    def materialize(self) -> Path:
        """Write the content to a per-machine cache file named by its hash; return its path.

        The file name keeps the user's (so messages and ``Space.name`` read the same), the
        directory is the hash (so two runs' different spaces of one name never collide).
        """
        raw = self.text.encode("utf-8")
        if hashlib.sha256(raw).hexdigest() != self.sha256:
            raise SpaceError(f"{self.name}: space content does not match its sha256")
        base = Path(os.environ.get("SEARCH_SPACE_CACHE")
                    or Path(tempfile.gettempdir()) / "search-spaces")
        path = base / self.sha256[:16] / self.name
        if not (path.is_file() and path.read_bytes() == raw):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{self.name}.{os.getpid()}.tmp")
            tmp.write_bytes(raw)
            os.replace(tmp, path)
        return path


@dataclass(frozen=True)
class RunPlan:
    """The run-constant part of every trial's description.

    Attributes:
        space: The space file by content (a copy is kept as ``space.py`` in the run).
        fold_of: Fold id of every training row (the run's ``folds.npy``).
        seed: The run's seed; fold models get ``fold_seed(seed, number, fold)``.
        data_dir: Absolute data location, or None (the space's loader decides).
        predict_test: Predict the test split with every fold model.
        save_models: Ship fold models back to the driver (it keeps the best ones).
        threads: TensorFlow threads per executing process (0: TensorFlow's default).
        backend: The backend's name, written into each record.
        tensorboard_dir: Absolute directory for TensorBoard logs (same machine only).
        keras_backend: The Keras backend every process that trains selects before
            importing Keras (``jax``, ``tensorflow``, ``torch``; None: Keras' default).
        seeds: Models bagged per fold (``--seeds``).
        stack_folds: Train a trial's folds as one vectorised program where they can be
            (:mod:`search.stacking`); False: always one after another.
        rows: The rows of the space's training split the run uses as (train, test), or
            None for the space's own split (see :mod:`search.rows`). It travels here, not
            only in the driver, because every process loads the data itself.
    """

    space: SpaceSource
    fold_of: np.ndarray
    seed: int
    data_dir: str | None = None
    predict_test: bool = True
    save_models: bool = True
    threads: int = 0
    backend: str = "optuna"
    tensorboard_dir: str | None = None
    keras_backend: str | None = None
    seeds: int = 1
    stack_folds: bool = True
    rows: RowSubset | None = None

    @property
    def n_folds(self) -> int:
        """Fold models per trial: K, or R × K with repeated K-fold."""
        from search.folds import split_count

        return split_count(self.fold_of)


@dataclass(frozen=True)
class TrialSpec:
    """One trial: its store number and parameters, and who proposed it.

    ``params`` is None only for define-by-run execution in the proposing process (the
    backend then passes its live ``hp``); everywhere else the parameters are fixed.
    ``resume`` is the record an interrupted session left: the trial continues from its
    first unfinished fold (the record's folds travel, their files stay with the driver).
    ``keep_bar`` is the CV score a trial had to reach, when it was handed out, to be among
    the run's ``--keep-models`` best (None: any trial may be): a trial whose folds all
    finish at once (stacked) and score worse skips serialising fold models that the
    driver's retention would delete at its end. Bars only get stricter as the run goes on,
    so a bar read earlier never drops a model retention would keep.
    """

    number: int
    params: dict[str, Value] | None = None
    backend_id: str | None = None
    is_default: bool = False
    worker: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    resume: TrialRecord | None = None
    keep_bar: float | None = None


@dataclass
class _ProcessState:
    space: dict[str, Space] = field(default_factory=dict)
    data: dict[tuple[str, str | None, str | None], Dataset] = field(default_factory=dict)
    threads: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATE = _ProcessState()


def process_state(plan: RunPlan) -> tuple[Space, Dataset]:
    """The plan's space and data, loaded once per process (and per space hash)."""
    from search.tf_setup import configure_gpu_memory, configure_threads, select_backend

    select_backend(plan.keras_backend)  # before the space (and so Keras) is imported
    from search.space import load_space
    from search.trial import Dataset

    with _STATE.lock:
        if _STATE.threads is None:
            configure_threads(plan.threads)
            configure_gpu_memory()
            _STATE.threads = plan.threads
        space = _STATE.space.get(plan.space.sha256)
        if space is None:
            space = load_space(plan.space.materialize())
            _STATE.space[plan.space.sha256] = space
        key = _data_key(plan)
        data = _STATE.data.get(key)
        if data is None:
            data = Dataset.from_space(space, plan.data_dir, rows=plan.rows)
            _keep(key, data)
    return space, data


def _data_key(plan: RunPlan) -> tuple[str, str | None, str | None]:
    """One cached dataset per space, data location and row subset: the outer runs of one
    ``evaluate`` share a process and a space but not their rows."""
    return (plan.space.sha256, plan.data_dir, plan.rows.key if plan.rows is not None else None)


def _keep(key: tuple[str, str | None, str | None], data: Dataset) -> None:
    """Cache ``data``; a row subset replaces the other subsets of its space and location.

    ``evaluate`` runs its outer folds one after another in one process: keeping every outer
    fold's copy of the rows would hold ``--outer`` copies of the data for nothing.
    """
    if key[2] is not None:
        for old in [k for k in _STATE.data if k[:2] == key[:2] and k[2] is not None]:
            del _STATE.data[old]
    _STATE.data[key] = data


def remember(plan: RunPlan, space: Space, data: Dataset) -> None:
    """Seed the cache with what the driver already loaded (no second load in-process)."""
    with _STATE.lock:
        _STATE.space.setdefault(plan.space.sha256, space)
        key = _data_key(plan)
        if key not in _STATE.data:
            _keep(key, data)
        if _STATE.threads is None:
            _STATE.threads = plan.threads


def execute(plan: RunPlan, spec: TrialSpec, *, sink: TrialSink | None = None,
            report: Report | None = None, hp: HyperParameters | None = None) -> TrialResult:
    """Run one trial from its description: the code every executor shares.

    Raises what :func:`~search.trial.run_trial` raises (TrialPruned, TrialFailed).
    """
    from search.trial import run_trial

    space, data = process_state(plan)
    if hp is None:
        if spec.params is None:
            raise ValueError(f"trial {spec.number}: a spec without params needs a live hp")
        hp = FixedHP(spec.params)
    return run_trial(
        space, hp, data, fold_of=plan.fold_of, number=spec.number, seed=plan.seed, sink=sink,
        report=report, save_models=plan.save_models, predict_test=plan.predict_test,
        is_default=spec.is_default, backend=plan.backend, backend_id=spec.backend_id,
        worker=spec.worker, fit_overrides=spec.meta.get("fit"),
        warm_start=spec.meta.get("warm_start"), resume=spec.resume, seeds=plan.seeds,
        stack_folds=plan.stack_folds, keep_bar=spec.keep_bar,
        tensorboard_dir=(Path(plan.tensorboard_dir) / f"{spec.number:04d}"
                         if plan.tensorboard_dir else None),
    )
