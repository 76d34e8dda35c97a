"""The experiment store: the only thing the stages share.

Layout of one run directory (documented here and nowhere else)::

    <run>/
      run.json                 space path + sha256, task, metric, settings, seed, versions,
                               the traced space, data shapes, invocations (one per run/resume)
      space.py                 a byte-identical copy of the space file (what workers run)
      optuna.journal           Optuna's own state (JournalStorage, file backend), unless
                               --storage named another Optuna storage URL
      folds.npy                int16 fold id (0..K-1) of every training row, shared by all trials;
                               shape (R, n_train) with --repeats R (fold model r*K+k)
      y_train.npy              training targets, exactly as the space's loader returned them
      y_test.npy               test targets (for scoring members and ensembles; never fitted on)
      rows_train.npy           only in a run over a subset of the space's training split (an
      rows_test.npy            ``evaluate`` outer fold, run.json ``rows``): the row numbers
                               of that split the run trains on / is tested on (search.rows)
      trials/<NNNN>/
        trial.json             TrialRecord: params, status, per-fold score/best epoch/seed/time,
                               the backend and its own id of the trial; written last after
                               each fold (the commit record of what the files hold)
        oof.npy                float32 out-of-fold predictions, shape (n_train, n_outputs);
                               NaN in rows of folds not yet run (pruned/failed/crashed trials);
                               rows of a fold count only once trial.json lists the fold;
                               with --repeats: each row's mean over the splits' predictions
        oof_repeats.npy        with --repeats R: each split's OOF, (R, n_train, n_outputs)
        test_fold_<k>.npy      float32 test-set predictions of fold model k, while the trial
                               runs (what a resumed trial continues from); folded into
                               test.npy and deleted when the trial ends
        test.npy               float32 mean of the fold models' test-set predictions, written
                               when the trial ends, before its final trial.json (stored for
                               later stages; never used to choose anything)
        .lock                  held (``flock``) by the process whose session owns the trial
                               while it runs: a ``running`` record whose lock is free is an
                               interrupted trial, which the next session continues
        fold_<k>.keras         fold models, kept only for the best --keep-models trials
        fold_<k>.pre.joblib    the fold's fitted preprocessor, if the space has one
        tensorboard/fold_<k>/  TensorBoard logs (with --tensorboard)
      members/<NNNN>/          refit members (``retrain``): refit.json, seed_<s>.keras,
                               seed_<s>.pre.joblib, test.npy (mean over the kept seeds)
      ensemble.json            ensembles of the top trials: members, weights per method,
                               CV/test scores per member and method, leave-one-out effects
      ensemble/                ``--save``d ensemble: members' .keras files + weights
      workers/slot_<i>.log     output of the ``--jobs`` child processes
      ray/                     Ray Tune's experiment directory (``--backend ray``)

Every file is written to a temporary name and ``os.replace``d, after each fold, so a crash
or kill loses no completed trial, fold or prediction file. ``trial.json`` is each trial's
commit record, written last: a fold's files count only once the record lists the fold, and
a trial is complete only once its record says so (a kill in between leaves a fold to re-run,
never a partial file read as complete). A trial interrupted by Ctrl-C, kill -9 or power loss
stays ``running``; the next ``run --resume`` re-runs it under the same number and
parameters from its first unfinished fold. Only the driver process writes
here (:class:`search.writer.StoreWriter`); trials hand it plain results, wherever they ran.
It writes (and ``fsync``s) on a thread of its own, in the order asked, so the trial goes on
meanwhile: a kill -9 can also lose what was still queued (milliseconds after a fold ends),
which leaves the store as it was a moment earlier, and the resume re-runs that fold. Ctrl-C
and every normal end wait for the queue.
Trial numbers belong to the store: a new trial's directory is created exclusively
(``mkdir``), so processes sharing a run directory never take the same number.

``python -m search check RUN`` (:mod:`search.checking`) verifies a run directory against this
layout and repairs only what is safe (what interrupted writes leave behind).
"""

from __future__ import annotations

import copy
import fcntl
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from search.errors import RunNotFoundError, StoreError

Status = Literal["running", "complete", "pruned", "failed"]

__all__ = ["FoldRecord", "RunStore", "Status", "TrialLock", "TrialRecord", "atomic_write",
           "json_bytes", "npy_bytes", "write_bytes", "write_json"]


@contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write ``path`` via a temporary file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Atomically write pretty JSON (NaN becomes null: JSON has no NaN)."""
    write_bytes(path, json_bytes(data))


def json_bytes(data: Any) -> bytes:
    """What :func:`write_json` writes: ``data`` as pretty JSON text, encoded."""
    return (_pretty(_jsonable(data)) + "\n").encode()


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def _pretty(obj: Any, indent: str = "") -> str:
    """JSON text of ``obj`` (as :func:`_jsonable` leaves it): objects, and lists holding
    objects or lists, indented by two spaces; lists of plain values on one line.

    Why not ``json.dump(..., indent=2)``: with an indent, ``json`` runs its pure-Python
    encoder (the C one only without), and puts every float of a learning curve on a line
    of its own: 4.4 ms and 96 KB for a Boston trial record of 4 folds and 200-500 epochs
    (written six times a trial, growing). Here each curve is one ``json.dumps`` call (C):
    3.0 ms and 64 KB (measured together, one core busy), and the same JSON when read.
    """
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        inner = indent + "  "
        items = ",\n".join(f"{inner}{json.dumps(k)}: {_pretty(v, inner)}"
                           for k, v in obj.items())
        return f"{{\n{items}\n{indent}}}"
    if isinstance(obj, list) and obj and any(isinstance(v, (dict, list)) for v in obj):
        inner = indent + "  "
        items = ",\n".join(inner + _pretty(v, inner) for v in obj)
        return f"[\n{items}\n{indent}]"
    return json.dumps(obj)


def save_npy(path: Path, array: np.ndarray) -> None:
    """Atomically write a ``.npy`` file."""
    write_bytes(path, npy_bytes(array))


def npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` file of ``array`` (a copy: later changes to ``array`` do not reach it)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars as Python's, NaN/inf as None and paths as strings.

    Exact types first (a trial record is mostly lists of Python floats: its learning
    curves), with ``math.isfinite``: NumPy's ``isfinite`` on a Python float costs a ufunc
    call (measured: 2.7 → 0.2 ms a Boston trial record, written six times a trial)."""
    kind = type(obj)
    if kind is float:
        return obj if math.isfinite(obj) else None
    if kind is int or kind is str or kind is bool or obj is None:
        return obj
    if kind is list or kind is tuple:
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


@dataclass
class FoldRecord:
    """One fold of one trial."""

    fold: int
    score: float
    best_epoch: int
    epochs_run: int
    seed: int
    fit_seconds: float
    seconds: float
    batch_size: int | None = None  # what the fold trained with (halved after out of memory)
    train_loss: float | None = None
    val_loss: float | None = None
    history: dict[str, list[float]] = field(default_factory=dict)  # loss/val_loss per epoch
    seeds: int = 1  # --seeds: models bagged in this fold (history: the first one's)
    seed_best_epochs: list[int] = field(default_factory=list)  # each bagged model's, if > 1
    stacked: bool = False  # trained with the trial's other folds as one program (stacking)

    def to_json(self) -> dict[str, Any]:
        """``dataclasses.asdict``'s result without its per-element walk (see
        :meth:`TrialRecord.to_json`)."""
        out = {name: getattr(self, name) for name in _FOLD_FIELDS}
        out["history"] = {k: list(v) for k, v in self.history.items()}
        out["seed_best_epochs"] = list(self.seed_best_epochs)
        return out


@dataclass
class TrialRecord:
    """The trial record every backend writes (``trials/<NNNN>/trial.json``)."""

    number: int
    status: Status
    params: dict[str, Any]
    score: float | None = None
    score_std: float | None = None
    folds: list[FoldRecord] = field(default_factory=list)
    n_folds: int = 0
    seed: int = 0
    backend: str = "optuna"
    backend_id: str | None = None  # the backend's own id of the trial (Optuna number, Ray id)
    started: float = 0.0
    finished: float | None = None
    seconds: float | None = None
    error: str | None = None
    error_detail: str | None = None
    models_kept: bool = False
    is_default: bool = False
    worker: int = 0
    node: str | None = None  # where it ran: a Ray node id (None: the driver's machine)
    resumed: int = 0  # sessions that continued this trial after an interruption
    keras_backend: str | None = None  # the Keras backend its folds trained on

    @property
    def id(self) -> str:
        return f"{self.number:04d}"

    @property
    def ended(self) -> bool:
        return self.status != "running"

    @property
    def fold_scores(self) -> list[float]:
        return [f.score for f in self.folds]

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data: ``dataclasses.asdict``'s result, built directly.

        Why not ``asdict``: it copies recursively and visits every float of every fold's
        history, 2.3 ms for a 4-fold record of 200-500 epochs, and a record is written six
        times a trial; copying each field one level deep (all they nest) takes ~0.1 ms.
        """
        out = {name: getattr(self, name) for name in _TRIAL_FIELDS}
        out["params"] = copy.deepcopy(self.params)  # values are scalars; a Fixed may nest
        out["folds"] = [f.to_json() for f in self.folds]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRecord:
        data = dict(data)
        fold_keys = set(FoldRecord.__dataclass_fields__)
        folds = [FoldRecord(**{k: v for k, v in f.items() if k in fold_keys})
                 for f in data.pop("folds", [])]
        known = {f for f in cls.__dataclass_fields__}
        return cls(folds=folds, **{k: v for k, v in data.items() if k in known})


_FOLD_FIELDS = tuple(f.name for f in fields(FoldRecord))
_TRIAL_FIELDS = tuple(f.name for f in fields(TrialRecord))


class RunStore:
    """Reads and writes one run directory. Knows files, not backends or Keras."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # -- run-level ----------------------------------------------------------------------
    @property
    def run_json_path(self) -> Path:
        return self.root / "run.json"

    def exists(self) -> bool:
        return self.run_json_path.is_file()

    def require(self) -> RunStore:
        """Fail clearly if this is not a run directory."""
        if not self.exists():
            raise RunNotFoundError(
                f"{self.root} is not a run directory (no run.json); runs live under "
                "experiments/ by default: see `python -m search list`"
            )
        return self

    def read_run(self) -> dict[str, Any]:
        self.require()
        try:
            data: dict[str, Any] = json.loads(self.run_json_path.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self.run_json_path} is not valid JSON: {exc}") from exc
        return data

    def write_run(self, data: dict[str, Any]) -> None:
        write_json(self.run_json_path, data)

    def save_array(self, name: str, array: np.ndarray) -> None:
        save_npy(self.root / name, array)

    def load_array(self, name: str) -> np.ndarray:
        path = self.root / name
        if not path.is_file():
            raise StoreError(f"{path} is missing; the run directory is incomplete")
        return np.load(path, allow_pickle=False)

    # -- trials -------------------------------------------------------------------------
    def trial_dir(self, number: int) -> Path:
        return self.root / "trials" / f"{number:04d}"

    def allocate(self, start: int = 0) -> int:
        """Claim the next free trial number (at least ``start``) by creating its directory.

        ``mkdir`` is atomic, so processes sharing the run directory (``search worker`` on a
        shared filesystem) never take the same number.
        """
        base = self.root / "trials"
        base.mkdir(parents=True, exist_ok=True)
        numbers = [int(d.name) for d in base.iterdir() if d.name.isdigit()]
        n = max([start, *(x + 1 for x in numbers)])
        while True:
            try:
                self.trial_dir(n).mkdir()
                return n
            except FileExistsError:
                n += 1

    def claim_number(self, number: int) -> bool:
        """Take ``number`` for a new trial if no process has (exclusive ``mkdir``)."""
        (self.root / "trials").mkdir(parents=True, exist_ok=True)
        try:
            self.trial_dir(number).mkdir()
            return True
        except FileExistsError:
            return False

    def count_trials(self) -> int:
        """Trial numbers in use: a record (any status) or held by a live process."""
        base = self.root / "trials"
        if not base.is_dir():
            return 0
        return sum(1 for d in base.iterdir() if d.name.isdigit() and (
            (d / "trial.json").is_file() or self.trial_alive(int(d.name))))

    def release_unused(self) -> None:
        """Remove trial directories allocated but never written (a trial never started)."""
        base = self.root / "trials"
        if not base.is_dir():
            return
        for d in base.iterdir():
            if d.name.isdigit() and d.is_dir() and \
                    all(f.name == ".lock" for f in d.iterdir()) and \
                    not self.trial_alive(int(d.name)):
                (d / ".lock").unlink(missing_ok=True)
                try:
                    d.rmdir()
                except OSError:
                    pass

    def write_trial(self, record: TrialRecord) -> None:
        write_json(self.trial_json_path(record.number), record.to_json())

    def trial_json_path(self, number: int) -> Path:
        return self.trial_dir(number) / "trial.json"

    def oof_path(self, number: int) -> Path:
        return self.trial_dir(number) / "oof.npy"

    def oof_repeats_path(self, number: int) -> Path:
        return self.trial_dir(number) / "oof_repeats.npy"

    def test_path(self, number: int) -> Path:
        return self.trial_dir(number) / "test.npy"

    def read_trial(self, number: int) -> TrialRecord:
        path = self.trial_dir(number) / "trial.json"
        try:
            return TrialRecord.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise StoreError(f"trial {number} has no record at {path}") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise StoreError(f"{path} is not a valid trial record: {exc}") from exc

    def trials(self) -> list[TrialRecord]:
        """All trial records, in trial-number order."""
        base = self.root / "trials"
        if not base.is_dir():
            return []
        out = []
        for d in sorted(base.iterdir()):
            if d.name.isdigit() and (d / "trial.json").is_file():
                out.append(self.read_trial(int(d.name)))
        return out

    def save_oof(self, number: int, oof: np.ndarray) -> None:
        save_npy(self.oof_path(number), oof.astype(np.float32))

    def load_oof(self, number: int) -> np.ndarray:
        return np.load(self.trial_dir(number) / "oof.npy", allow_pickle=False)

    def load_oof_repeats(self, number: int) -> np.ndarray:
        """Repeated K-fold: each split's OOF predictions ``(R, n_train, outputs)`` (the store
        writer writes them); ``oof.npy`` holds their mean."""
        return np.load(self.trial_dir(number) / "oof_repeats.npy", allow_pickle=False)

    def save_test(self, number: int, pred: np.ndarray) -> None:
        save_npy(self.test_path(number), pred.astype(np.float32))

    def load_test(self, number: int) -> np.ndarray:
        return np.load(self.trial_dir(number) / "test.npy", allow_pickle=False)

    def fold_test_path(self, number: int, fold: int) -> Path:
        return self.trial_dir(number) / f"test_fold_{fold}.npy"

    def drop_fold_tests(self, number: int) -> None:
        """Delete a trial's per-fold test predictions (once test.npy holds their mean)."""
        for path in self.trial_dir(number).glob("test_fold_*.npy"):
            path.unlink(missing_ok=True)

    # -- liveness -----------------------------------------------------------------------
    def lock_trial(self, number: int) -> TrialLock | None:
        """Take trial ``number``'s lock (held while its session runs it), or None when
        another live process holds it. ``flock`` is released when the holder dies (kill -9
        included), and works across the hosts of an NFS mount on Linux."""
        path = self.trial_dir(number) / ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return TrialLock(fd)

    def trial_alive(self, number: int) -> bool:
        """Whether a live process holds trial ``number`` (running it right now).

        Creates nothing (a holder always has the lock file). The probe holds the lock for
        an instant: a session claiming the same trial at that instant leaves it to the next.
        """
        try:
            fd = os.open(self.trial_dir(number) / ".lock", os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def interrupted(self, trials: list[TrialRecord] | None = None) -> list[TrialRecord]:
        """``running`` records no live process holds: trials to continue."""
        trials = self.trials() if trials is None else trials
        return [t for t in trials if t.status == "running" and not self.trial_alive(t.number)]

    def model_paths(self, number: int) -> list[Path]:
        return sorted(self.trial_dir(number).glob("fold_*.keras"))

    def delete_models(self, number: int) -> None:
        """Drop a trial's fold models and preprocessors (keeps record and predictions)."""
        for path in self.trial_dir(number).glob("fold_*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def ranked(self, direction: str, trials: list[TrialRecord] | None = None
               ) -> list[TrialRecord]:
        """Completed trials, best first; ties broken by trial number (deterministic).

        ``trials``: records already read (saves reading every trial.json again).
        """
        trials = self.trials() if trials is None else trials
        done = [t for t in trials if t.status == "complete" and t.score is not None]
        sign = 1.0 if direction == "minimize" else -1.0
        return sorted(done, key=lambda t: (sign * float(t.score or 0.0), t.number))

    def prune_models(self, keep: int, direction: str,
                     trials: list[TrialRecord] | None = None) -> list[int]:
        """Keep fold models of the best ``keep`` completed trials only; return those dropped.

        Called after every trial so disk use stays bounded by ``keep`` trials' models.
        """
        trials = self.trials() if trials is None else trials
        best = {t.number for t in self.ranked(direction, trials)[:keep]}
        dropped = []
        for record in trials:
            if record.status == "running" or record.number in best:
                continue
            if record.models_kept or self.model_paths(record.number):
                self.delete_models(record.number)
                record.models_kept = False
                self.write_trial(record)
                dropped.append(record.number)
        return dropped


class TrialLock:
    """An open, ``flock``ed trial lock file; :meth:`release` (or process exit) frees it."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def list_runs(out: str | Path) -> list[RunStore]:
    """Run directories directly under ``out`` (those with a run.json), oldest first."""
    base = Path(out)
    if not base.is_dir():
        return []
    runs = [RunStore(d) for d in base.iterdir() if (d / "run.json").is_file()]
    return sorted(runs, key=lambda r: (_created(r), r.root.name))


def _created(store: RunStore) -> float:
    """When a run was started (run.json's ``created``); unreadable runs sort first."""
    try:
        return float(store.read_run().get("created", 0.0))
    except (StoreError, ValueError, TypeError):
        return 0.0
