"""One trial, identical for every backend: K folds of build → fit → predict → score.

Backends differ only in who proposes the parameters (the ``hp`` they pass) and where this
runs. The trial writes nothing itself: after each fold it hands a plain
:class:`~search.results.FoldResult` to a sink, and only the driver's sink writes the store.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from search import fold_values
from search.errors import SpaceError, TrialFailed, TrialPruned
from search.feeding import is_batches, row_batches, should_stream
from search.fold_values import Tape
from search.folds import fold_indices, fold_repeat, repeat_count, repeat_mean, split_count
from search.hp import HyperParameters
from search.modelio import as_predictions, predict
from search.results import FoldResult, TrialSink, model_bytes, preprocessor_bytes
from search.reuse import ModelReuse, prebuild
from search.rows import RowSubset
from search.rows import take_rows as _take
from search.space import Space
from search.store import FoldRecord, TrialRecord
from search.tf_setup import set_random_seed

Report = Callable[[int, float], None]

__all__ = ["Dataset", "FoldInputs", "TrialResult", "average_models", "bag_seed", "early_stopping",
           "fold_inputs", "fold_seed", "run_trial"]


@dataclass(frozen=True)
class Dataset:
    """The run's data, loaded once per process and shared by all its trials (no copies)."""

    x_train: Any
    y_train: np.ndarray
    x_test: Any
    y_test: np.ndarray

    @classmethod
    def from_space(cls, space: Space, data_dir: str | Path | None, *,
                   rows: RowSubset | None = None) -> Dataset:
        """The space's data; with ``rows``, a subset of its training split as (train, test).

        ``rows`` is how a nested-CV outer run trains on some training rows and is scored on
        others; the space's own test split is then not used at all.
        """
        (x_train, y_train), (x_test, y_test) = space.load_data(data_dir)
        if rows is not None:
            x_train, y_train, x_test, y_test = rows.apply(x_train, np.asarray(y_train))
        return cls(x_train, np.asarray(y_train), x_test, np.asarray(y_test))


@dataclass
class TrialResult:
    """What ``run_trial`` hands back to the backend."""

    record: TrialRecord
    oof: np.ndarray
    test_pred: np.ndarray | None


def _derived_seed(*keys: int) -> int:
    """A reproducible 31-bit seed drawn from ``keys`` (numpy's SeedSequence mixing)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0] % (2**31))


def fold_seed(run_seed: int, trial: int, fold: int) -> int:
    """A seed per (run, trial, fold): reproducible, and different for every fold model."""
    return _derived_seed(run_seed, trial, fold)


@dataclass
class FoldInputs:
    """What ``Model.fit`` and ``predict`` get for one fold (or for a refit on all rows)."""

    fit_x: Any
    fit_y: Any
    fit_kwargs: dict[str, Any]
    validation: Any = None
    x_val: Any = None
    x_test: Any = None


def fold_inputs(space: Space, data: Dataset, settings: dict[str, Any], pre: Any, *,
                train: np.ndarray, val: np.ndarray | None, seed: int,
                predict_test: bool) -> FoldInputs:
    """Prepare one fold's inputs: the one place trials and refits take rows from the data.

    Small inputs are indexed (numpy copies only the fold's rows) and the preprocessor is
    fitted on the training rows only; inputs too large for a float32 copy are streamed in
    batches from the one shared array (:mod:`search.feeding`), where a preprocessor cannot
    be used. ``settings`` are the space's fit keywords; ``fit_kwargs`` is what to pass on.
    """
    settings = dict(settings)
    bs = settings["batch_size"]
    if should_stream(data.x_train):
        if pre is not None:
            raise SpaceError(
                f"{space.path}: preprocessor(hp) cannot be used with inputs this large "
                "(they are streamed in batches); preprocess inside the model instead"
            )
        fit_x: Any = row_batches(data.x_train, data.y_train, train, batch_size=bs,
                                shuffle=settings.pop("shuffle", True), seed=seed)
        del settings["batch_size"]
        big = max(bs, 256)
        out = FoldInputs(fit_x, None, settings)
        if val is not None:
            out.validation = row_batches(data.x_train, data.y_train, val, batch_size=big)
            out.x_val = row_batches(data.x_train, None, val, batch_size=big)
        if predict_test:
            out.x_test = row_batches(data.x_test, None, np.arange(len(data.y_test)),
                                     batch_size=big)
        return out
    whole = val is None and len(train) == len(data.y_train)
    fit_x = data.x_train if whole else _take(data.x_train, train)
    fit_y = data.y_train if whole else data.y_train[train]
    x_val = _take(data.x_train, val) if val is not None else None
    x_test = data.x_test if predict_test else None
    if pre is not None:
        pre.fit(fit_x)
        fit_x = pre.transform(fit_x)
        x_val = pre.transform(x_val) if x_val is not None else None
        x_test = pre.transform(x_test) if x_test is not None else None
    validation = (x_val, data.y_train[val]) if val is not None else None
    return FoldInputs(fit_x, fit_y, settings, validation, x_val, x_test)


def _best_epoch(history: dict[str, list[float]]) -> int:
    """1-based epoch with the lowest validation loss (the book picks epochs this way)."""
    val = history.get("val_loss") or history.get("loss") or []
    finite = [v if math.isfinite(v) else math.inf for v in val]
    if not finite:
        return 0
    return int(np.argmin(finite)) + 1


_OOM_NAMES = ("ResourceExhaustedError", "OutOfMemoryError")


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or type(exc).__name__ in _OOM_NAMES or \
        "out of memory" in str(exc).lower()[:2000]


def root_cause(text: str) -> str:
    """The line of an error message that says what went wrong.

    TensorFlow's graph errors start "Graph execution error:", then the Python stack where
    the failing op was defined, then the op's own message (the root cause), then the node
    name in ``[[...]]``: keep the op's message. Other messages: their first line.
    """
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if lines and lines[0].startswith("Graph execution error"):
        rest = [ln for ln in lines[1:] if ln and not ln.startswith(("Detected at node",
                                                                    "File ", "[[", "[Op:"))]
        if rest:
            line = rest[0]
            return line if len(line) <= 300 else line[:297] + "..."
    return lines[0] if lines else ""


def _describe(exc: BaseException) -> str:
    """A one-line failure reason with its root cause; out-of-memory gets named as such."""
    name = type(exc).__name__
    cause = root_cause(str(exc))
    if _is_oom(exc):
        return f"out of memory ({name}): {cause}".strip().rstrip(":")
    return f"{name}: {cause}".rstrip(": ")


#: A full garbage collection after every this many trials in a process (young generations
#: after every trial).
FULL_GC_EVERY = 10
_trials_run = 0


def _release_memory() -> None:
    """Drop Keras' graph state after a trial; collect the young generations each time and
    everything every :data:`FULL_GC_EVERY` trials; hand freed heap back to the system.

    Why not a full collection per trial: in a process holding JAX or TensorFlow it costs
    0.2–0.3 s (measured: 18 % of a 1.7 s Boston trial on JAX); the models' cycles that
    survive the young generations wait at most ten trials (resident memory over 100 trials
    is in benchmarks/RESULTS.md, "Speed").

    Why ``malloc_trim``: glibc keeps freed memory of large models in its arenas rather than
    returning it, so resident memory climbs with the largest model trained so far, not
    with what is in use (measured on the real Boston space: 8 trials left 1295 MB resident,
    969 MB after one trim, nothing else changed). Only on glibc (Linux); elsewhere nothing.
    It runs on a background thread (:func:`_malloc_trim`).

    Why ``gc.freeze`` after the process's first trial (after a full collection): what is
    alive then (Keras, JAX and TensorFlow's modules, their caches, the data: ~250,000
    objects on Boston) stays for the process's life, and every full collection traversed it
    again: ~150 ms each, about one a Boston trial, which Python starts inside the stacked
    training as it allocates (measured: 145 -> 17 ms a trial in collections). Frozen
    objects are still freed when nothing refers to them; only cycles among them would stay
    (the process's own objects).

    Why JAX's staging caches are cleared: they hold every traced function (and with it its
    Keras model) of every trial up to their size limits (thousands of entries), so resident
    memory grew by ~20 % over 60 Boston trials after warm-up; cleared after each trial it
    stays flat (955 -> 1142 MB before, 766 -> 740 MB after, trials 10 -> 60 and 10 -> 35).
    Compiled programs kept for reuse (:mod:`search.stacking`) are not in these caches but
    in each jitted function's own, so they still run without recompiling.
    """
    import gc

    import keras

    global _trials_run
    _trials_run += 1
    keras.backend.clear_session(free_memory=False)
    _clear_jax_staging()  # first: what only these caches held goes in this collection
    if _trials_run == 1:  # what is alive now lives as long as the process: frozen
        gc.collect()
        gc.freeze()
    else:
        gc.collect(1)
    if _trials_run % FULL_GC_EVERY == 0:
        gc.collect()
    _malloc_trim()


def _clear_jax_staging() -> None:
    """JAX's Python-level trace/lowering caches emptied (not the per-function compiled
    executables, which ``jax.clear_caches`` would also drop), except the one of eager
    primitives.

    Why that one stays: it holds one small jitted function per primitive and parameters
    (``convert_element_type`` to float32, ...), none of which holds a model, and emptying it
    made the next trial's first model build re-stage every eager op it runs: measured 13 ms
    → 65 ms a Boston build (4 builds a trial: 173 → 118 ms, the clearing itself 47 → 28 ms).

    ``jax._src.util`` is private: where it moved, nothing is cleared (memory then grows as
    before, nothing breaks).
    """
    if "jax" not in sys.modules:
        return
    try:
        from jax._src import dispatch, util
    except ImportError:
        return
    caches = getattr(util, "_caches", None)
    keep = getattr(dispatch, "xla_primitive_callable", None)
    if caches is None:
        clear = getattr(util, "clear_all_caches", None)
        if clear is not None:
            clear()
        return
    for cache in list(caches):
        if cache is not keep:
            cache.cache_clear()


def _malloc_trim() -> None:
    """Ask for glibc's ``malloc_trim``, which a background thread runs.

    Why a thread: it took 10–45 ms after a Boston trial (the more free memory the heap
    holds, the longer), which the next trial waited for. ``ctypes`` releases the GIL for
    the call and glibc's ``malloc_trim`` is thread-safe (it locks one arena at a time), so
    the trim runs while the next trial starts. Requests made while one runs are merged
    into one more trim.
    """
    trim = _libc_malloc_trim()
    if trim is None:
        return
    global _trimmer
    with _trim_lock:
        if _trimmer is None or not _trimmer.is_alive():
            _trimmer = threading.Thread(target=_trim_forever,
                                        args=(trim, _trim_wanted, trim_idle),
                                        name="search-malloc-trim", daemon=True)
            _trimmer.start()
        trim_idle.clear()
        _trim_wanted.set()


def _trim_forever(trim: Callable[[int], int], wanted: threading.Event,
                  idle: threading.Event) -> None:
    while True:
        wanted.wait()
        wanted.clear()
        trim(0)
        with _trim_lock:
            if not wanted.is_set():
                idle.set()


def _after_fork_in_child() -> None:
    """A forked child has no trimming thread, and its copies of the events may be mid-use."""
    global _trimmer, _trim_wanted, _trim_lock, trim_idle
    _trimmer, _trim_wanted, _trim_lock = None, threading.Event(), threading.Lock()
    trim_idle = threading.Event()
    trim_idle.set()


_trimmer: threading.Thread | None = None
_trim_wanted = threading.Event()
_trim_lock = threading.Lock()
#: Set while no trim is asked for or running: what a measurement of resident memory "after
#: a trial" waits for (benchmarks/speed.py), on a thread of its own.
trim_idle = threading.Event()
trim_idle.set()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none (not glibc)."""
    import ctypes
    import ctypes.util

    try:
        return cast(Callable[[int], int],
                    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim)
    except (OSError, AttributeError):
        return None


def _stop_on_nan() -> Any:
    """A callback that ends the fit at the first NaN/inf batch loss (Keras'
    ``TerminateOnNaN`` does the same but prints; only the CLI prints here)."""
    import keras

    class StopOnNaN(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    return StopOnNaN()


#: Training steps Keras runs per call of its compiled train function when no callback needs
#: every batch: Keras' fixed cost per call, not arithmetic, dominates small models.
STEPS_PER_EXECUTION = 16
_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin",
                "on_batch_end")


def _batch_steps(model: Any, callbacks: list[Any]) -> None:
    """Set ``model.steps_per_execution`` to :data:`STEPS_PER_EXECUTION` unless the space
    compiled its own or a callback acts per batch (it would then see every 16th batch only:
    its semantics would change).

    Training is the same either way (every batch still updates the weights); only how often
    Python hears back changes. Our NaN stop then acts within one call (≤ 16 batches).
    Not on torch: Keras' torch trainer refuses any value but 1.
    """
    import keras

    if keras.backend.backend() == "torch" or \
            int(getattr(model, "steps_per_execution", 1) or 1) != 1:
        return
    base = keras.callbacks.Callback
    if any(getattr(type(cb), hook, None) is not getattr(base, hook) for cb in callbacks
           for hook in _BATCH_HOOKS):
        return
    model.steps_per_execution = STEPS_PER_EXECUTION


def early_stopping(patience: int) -> Any:
    """The space's ``early_stopping`` patience as Keras' callback: stop a fold after
    ``patience`` epochs without a lower validation loss and end it with its best weights
    (Keras restores them at the end of training whether or not it stopped early), so the
    fold's OOF and test predictions and its recorded best epoch belong to the same weights.

    The validation rows choose the epoch here, as in the book's own epoch selection: the
    fold's OOF score is then slightly optimistic (see README, "Early stopping").
    """
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience),
                                         restore_best_weights=True)


class _OutOfMemory(Exception):
    """A fold ran out of memory (kept apart so it can be retried with a smaller batch)."""


def bag_seed(fold_seed_: int, j: int) -> int:
    """The seed of a fold's ``j``-th bagged model (``j >= 1``; the first uses the fold's)."""
    return _derived_seed(fold_seed_, j)


def average_models(models: list[Any]) -> Any:
    """One Keras model whose output is the mean of ``models``' outputs (seed bagging).

    Saved as one ``.keras`` file, it is a fold model like any other: members, the ensemble
    API and ``check`` need not know about bagging. Only single-output models can be
    averaged this way.
    """
    import keras

    first = models[0]
    if len(first.outputs) != 1:
        raise SpaceError("--seeds above 1 needs models with one output; this space's model "
                         f"has {len(first.outputs)}")
    for j, m in enumerate(models):  # each was built after clear_session: same default name
        m.name = f"seed_model_{j}"
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype) for t in first.inputs]
    arg = inputs[0] if len(inputs) == 1 else inputs
    out = keras.layers.Average(name="seed_average")([m(arg) for m in models])
    return keras.Model(inputs, out, name=f"seed_bag_{len(models)}")


def _fit_retrying(space: Space, hp: HyperParameters, data: Dataset,
                  args: dict[str, Any]) -> FoldFit:
    """:func:`_fit_fold`; after running out of memory once more with half the batch size
    (memory grows with it), then the trial fails."""
    try:
        return _fit_fold(space, hp, data, **args)
    except _OutOfMemory as first:
        try:
            return _fit_fold(space, hp, data, retry=True, **args)
        except Exception as exc:
            if not _is_oom(exc):
                raise
            raise TrialFailed(f"{_describe(exc)} (fold {args['fold']}, retried with half the "
                              f"batch size after: {first})") from exc


def run_trial(
    space: Space,
    hp: HyperParameters,
    data: Dataset,
    *,
    fold_of: np.ndarray,
    number: int,
    seed: int,
    sink: TrialSink | None = None,
    report: Report | None = None,
    save_models: bool = True,
    predict_test: bool = True,
    is_default: bool = False,
    backend: str = "optuna",
    backend_id: str | None = None,
    worker: int = 0,
    tensorboard_dir: Path | None = None,
    fit_overrides: dict[str, Any] | None = None,
    warm_start: list[str] | None = None,
    resume: TrialRecord | None = None,
    seeds: int = 1,
    reuse_models: bool = True,
    stack_folds: bool = True,
    keep_bar: float | None = None,
) -> TrialResult:
    """Run one trial: for each fold, build, fit, predict its validation rows, score, report.

    Args:
        space: The loaded space.
        hp: The backend's ``hp``; the same object is used for every fold, so every fold
            model is built from the same parameters.
        data: The run's data.
        fold_of: Fold id of every training row (``folds.npy``): identical for all trials.
        number: Trial number (the store's trial id).
        seed: The run's seed; each fold gets ``fold_seed(seed, number, fold)``.
        sink: Receives the record at the start, a :class:`FoldResult` after every fold and
            the final record (whatever the outcome). None: results are only returned.
        report: Called as ``report(fold, running_mean)`` after each fold but the last; may
            raise :class:`TrialPruned` to stop the trial (its finished folds are kept).
        save_models: Hand each fold model (``.keras`` bytes) to the sink.
        predict_test: Predict the test split with every fold model.
        is_default: This trial is the space's default point (the baseline).
        backend / backend_id: The proposing backend and its own id of the trial.
        worker: Which process of a parallel run executed it (0: the driver).
        tensorboard_dir: Write TensorBoard logs to ``tensorboard_dir/tensorboard/fold_<k>``.
        fit_overrides: Replace these of the space's fit settings (a backend's epoch budget:
            Hyperband's ``epochs`` / ``initial_epoch``).
        warm_start: One ``.keras`` file per fold: each fold model starts from its weights
            (a Hyperband trial promoted from a parent trial).
        seeds: Seed bagging: each fold trains this many models (the first with the fold's
            seed, the others with :func:`bag_seed`), and its predictions, test predictions
            and saved model (:func:`average_models`) are their average; the record keeps
            the first model's learning curve and the seeds' median best epoch.
        reuse_models: Train later fold models on the first one's traced program
            (:mod:`search.reuse`; JAX only): the same numbers, without a new trace per fold.
        stack_folds: Train the folds as one vectorised program where they can be
            (:mod:`search.stacking`; JAX, small in-memory data, no callbacks of the space's
            own, no bagging, warm start or TensorBoard); else one after another.
        resume: The record of this trial left by an interrupted session: its folds are
            kept (the sink holds their files) and the trial continues from its first
            unfinished fold, with the same number and parameters.
        keep_bar: The CV score the trial must reach for the run to keep its fold models
            (:attr:`~search.plan.TrialSpec.keep_bar`). Stacked folds are all scored before
            the first is handed to the sink: a trial worse than the bar (or failing) sends
            no model bytes, because retention would delete them at its end. Folds trained
            one after another are handed over as each ends, so they always carry theirs.

    Returns:
        The record, the OOF array (NaN in rows of folds that did not run in this call: a
        resumed trial's earlier folds are in the store) and the mean test prediction of
        the folds run here.

    Raises:
        TrialPruned: the pruner stopped the trial; the record says ``pruned``.
        TrialFailed: NaN loss or predictions (the fit stops at the first NaN batch), out of
            memory (after one retry of the fold with half the batch size), or any exception
            from the space's code; the record says ``failed`` with the root cause.
        KeyboardInterrupt: the record stays ``running``: an interrupted trial, which the
            next session continues.
    """
    import keras

    k = split_count(fold_of)  # fold models: K, or R × K with repeated K-fold
    repeats = repeat_count(fold_of)
    n_train = len(data.y_train)
    record = TrialRecord(
        number=number, status="running", params={}, n_folds=k, seed=seed,
        backend=backend, backend_id=backend_id, started=time.time(), is_default=is_default,
        worker=worker, keras_backend=str(keras.backend.backend()),
    )
    prior_seconds = 0.0
    if resume is not None:  # the same trial, continued: its committed folds stand
        record.folds = [copy.deepcopy(f) for f in resume.folds]
        record.params = dict(resume.params)
        record.resumed = resume.resumed + 1
        prior_seconds = float(sum(f.seconds for f in record.folds))
    done = {f.fold for f in record.folds}
    reuse = ModelReuse(enabled=reuse_models)
    oof: np.ndarray | None = None
    test_sum: np.ndarray | None = None
    announced = False

    def announce() -> None:
        """Hand the record to the sink once its parameters are known: after the first
        build (define-by-run samplers learn them there), before the first fit. So an
        interrupted record always holds the parameters it is continued with."""
        nonlocal announced
        if not announced:
            announced = True
            if resume is None:
                record.params = dict(hp.values)
            if sink is not None:
                sink.started(record)

    if resume is not None:
        announce()

    def finish(status: str, error: str | None = None, detail: str | None = None) -> None:
        record.status = status  # type: ignore[assignment]
        record.finished = time.time()
        record.seconds = record.finished - record.started + prior_seconds
        record.error, record.error_detail = error, detail
        record.params = dict(hp.values) or record.params
        announce()
        scores = record.fold_scores
        record.score = float(np.mean(scores)) if scores else None
        record.score_std = float(np.std(scores)) if scores else None
        if sink is not None:
            sink.finished(record)

    try:
        stacked: dict[int, FoldFit | TrialFailed] = {}
        stack_seconds = 0.0
        pending = [f for f in range(k) if f not in done]
        if stack_folds and seeds == 1 and warm_start is None and tensorboard_dir is None \
                and len(pending) > 1:
            t0 = time.perf_counter()
            stacked = _fit_stacked(space, hp, data, fold_of=fold_of, folds=pending,
                                   seeds=[fold_seed(seed, number, f) for f in pending],
                                   fit_overrides=fit_overrides, predict_test=predict_test,
                                   built=announce)
            stack_seconds = (time.perf_counter() - t0) / len(pending)
            if save_models and keep_bar is not None and stacked:
                save_models = _may_be_kept(space, data, fold_of, record, stacked, keep_bar)
        for fold in pending:
            t0 = time.perf_counter()
            s = fold_seed(seed, number, fold)
            tr, va = fold_indices(fold_of, fold)
            fits = []
            fold_was_stacked = fold in stacked
            if fold_was_stacked:  # trained with the trial's other folds, in one program
                outcome = stacked.pop(fold)
                if isinstance(outcome, TrialFailed):
                    raise outcome
                fits.append(outcome)
                t0 -= stack_seconds  # its share of the program
            # seed bagging: S models, their predictions averaged (none left if stacked)
            for j in range(seeds if not fits else 0):
                args = dict(fold=fold, seed=s if j == 0 else bag_seed(s, j), tr=tr, va=va,
                            fit_overrides=fit_overrides, warm_start=warm_start,
                            predict_test=predict_test, built=announce, part=(j, seeds),
                            reuse=reuse,
                            tensorboard_dir=tensorboard_dir if j == 0 else None)
                fits.append(_fit_retrying(space, hp, data, args))
            model, pre, settings, history, pred, tp, fit_seconds = fits[0]
            best_epochs = [_best_epoch(f[3]) for f in fits]
            if seeds > 1:
                pred = np.mean([f[4] for f in fits], axis=0).astype(np.float32)
                tp = None if tp is None else np.mean([cast(np.ndarray, f[5]) for f in fits],
                                                     axis=0)
                fit_seconds = float(sum(f[6] for f in fits))
                model = average_models([f[0] for f in fits]) if save_models else None
            record.params = dict(hp.values)
            if oof is None:  # one OOF array per K-fold split; the trial's is their mean
                oof = np.full((repeats, n_train, pred.shape[1]), np.nan, dtype=np.float32)
            repeat, _ = fold_repeat(fold_of, fold)
            oof[repeat, va] = pred
            score = space.metric(data.y_train[va], pred, space.task)
            if not math.isfinite(score):
                raise TrialFailed(f"fold {fold} scored {score} ({space.metric.name})")
            if tp is not None:
                test_sum = tp if test_sum is None else test_sum + tp
            losses = history.get("loss", [])
            val_loss = history.get("val_loss", [None])[-1]
            start = int(settings.get("initial_epoch", 0)) if warm_start is not None else 0
            fold_rec = FoldRecord(
                fold=fold, score=float(score),
                best_epoch=round(float(np.median(best_epochs))) + start,
                epochs_run=max(len(f[3].get("loss", [])) for f in fits), seed=s,
                fit_seconds=fit_seconds, seeds=seeds,
                seed_best_epochs=[b + start for b in best_epochs] if seeds > 1 else [],
                seconds=time.perf_counter() - t0, batch_size=int(settings["batch_size"]),
                stacked=fold_was_stacked,
                train_loss=float(losses[-1]) if losses else None,
                val_loss=float(val_loss) if val_loss is not None else None,
                history={k: [float(v) for v in history[k]] for k in ("loss", "val_loss")
                         if k in history},
            )
            record.folds.append(fold_rec)
            record.folds.sort(key=lambda f: f.fold)
            record.models_kept = save_models
            if sink is not None:
                sink.fold(FoldResult(
                    record=copy.deepcopy(record), fold=fold, rows=va, oof=pred, test=tp,
                    model=model_bytes(_materialised(model)) if save_models else None,
                    preprocessor=(preprocessor_bytes(pre) if save_models and pre is not None
                                  else None),
                    repeat=repeat, repeats=repeats,
                ))
            del model, fits
            if report is not None and len(record.folds) < k:
                report(fold, float(np.mean(record.fold_scores)))
    except TrialPruned:
        finish("pruned", f"pruned after fold {len(record.folds) - 1}")
        raise
    except TrialFailed as exc:
        finish("failed", str(exc))
        raise
    except (KeyboardInterrupt, SystemExit):
        raise  # the record stays ``running``: the next session continues this trial
    except SpaceError as exc:
        finish("failed", str(exc), traceback.format_exc())
        raise TrialFailed(str(exc)) from exc
    except Exception as exc:  # user code, Keras, OOM: this trial fails, the search goes on
        finish("failed", _describe(exc), traceback.format_exc())
        raise TrialFailed(_describe(exc)) from exc
    finally:
        _release_memory()
    finish("complete")
    if oof is None:  # every fold was done before this session (killed before the end)
        oof = np.full((1, n_train, 1), np.nan, dtype=np.float32)
    oof = repeat_mean(oof)
    test_pred = None if test_sum is None else test_sum / (k - len(done))
    return TrialResult(record=record, oof=oof, test_pred=test_pred)


FoldFit = tuple[Any, Any, dict[str, Any], dict[str, list[float]], np.ndarray,
                np.ndarray | None, float]


def _may_be_kept(space: Space, data: Dataset, fold_of: np.ndarray, record: TrialRecord,
                 stacked: dict[int, FoldFit | TrialFailed], keep_bar: float) -> bool:
    """Whether a trial whose remaining folds all trained (stacked) can reach ``keep_bar``:
    its CV score (the folds it had plus these, scored as the fold loop scores them) is at
    least as good. A fold that failed fails the trial: its models would not be kept."""
    scores = list(record.fold_scores)
    for fold, outcome in stacked.items():
        if isinstance(outcome, TrialFailed):
            return False
        _, va = fold_indices(fold_of, fold)
        scores.append(space.metric(data.y_train[va], outcome[4], space.task))
    score = float(np.mean(scores))
    if not math.isfinite(score):
        return False
    return score <= keep_bar if space.direction == "minimize" else score >= keep_bar


@dataclass
class _Prepared:
    """One fold model built and its inputs made, ready to fit."""

    model: Any
    pre: Any
    settings: dict[str, Any]  # the fit settings (callbacks: the ones the fit gets)
    inputs: FoldInputs
    user_callbacks: list[Any]  # the space's own
    patience: int | None
    #: How the model's build made its initial values (``tape=True`` and a build the tape
    #: can replay, else None).
    tape: Tape | None = None


@dataclass
class _FoldValues:
    """A stacked fold's trained values, on the one model its trial's folds share (given to
    it by :func:`_materialised` when the fold's model is needed: to save it)."""

    model: Any
    trainable: list[np.ndarray]
    non_trainable: list[np.ndarray]


def _materialised(model: Any) -> Any:
    """The Keras model of a FoldFit: itself, or the shared one holding the fold's values."""
    if isinstance(model, _FoldValues):
        from search.stacking import assign

        return assign(model.model, model.trainable, model.non_trainable)
    return model


def _prepare_fold(space: Space, hp: HyperParameters, data: Dataset, *, fold: int, seed: int,
                  tr: np.ndarray, va: np.ndarray, fit_overrides: dict[str, Any] | None,
                  warm_start: list[str] | None, predict_test: bool,
                  tensorboard_dir: Path | None, built: Callable[[], None],
                  part: tuple[int, int] = (0, 1), retry: bool = False,
                  model: Any = None, tape: bool = False) -> _Prepared:
    """Build one fold's model (fresh Keras state, the fold's seed) and make its inputs.

    ``model``: a model built for another fold of this trial, whose initial values this
    fold does not need (its folds train stacked from taped values): nothing is built.
    ``tape``: record how the build made its initial values (:mod:`search.fold_values`).
    """
    import keras

    taped = None
    if model is None:
        # Fresh Keras state per fold; the full collection (gc.collect, ~0.2 s in a big
        # process) once per trial, in run_trial's ``finally``.
        keras.backend.clear_session(free_memory=retry)
        set_random_seed(seed)
        if tape:
            with fold_values.recording():
                model = space.build(hp)
            taped = fold_values.record(model, seed)
        else:
            model = space.build(hp)
    settings = space.fit_settings(hp)
    if fit_overrides:
        settings.update(fit_overrides)
    if retry:
        settings["batch_size"] = max(1, settings["batch_size"] // 2)
    pre = space.preprocessor(hp)
    built()
    if warm_start is not None:
        parent = keras.models.load_model(warm_start[fold], compile=False, safe_mode=True)
        weights, n = parent.get_weights(), len(model.get_weights())
        j, bag = part
        if len(weights) == n * bag:  # a bagged parent holds its S models' weights in turn
            weights = weights[j * n:(j + 1) * n]
        model.set_weights(weights)
        del parent
    user_callbacks = list(settings.get("callbacks", []))
    callbacks = list(user_callbacks)
    patience = settings.pop("early_stopping", None)
    if patience:
        callbacks.append(early_stopping(patience))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(
            log_dir=str(tensorboard_dir / "tensorboard" / f"fold_{fold}")))
    _batch_steps(model, callbacks)
    settings["callbacks"] = [*callbacks, _stop_on_nan()]
    inputs = fold_inputs(space, data, settings, pre, train=tr, val=va, seed=seed,
                         predict_test=predict_test)
    return _Prepared(model, pre, settings, inputs, user_callbacks,
                     int(patience) if patience else None, taped)


def _first_row(inputs: FoldInputs) -> tuple[Any, Any] | None:
    """One row of a fold's inputs and targets (None: streamed inputs)."""
    if is_batches(inputs.fit_x) or inputs.fit_y is None:
        return None
    first = np.arange(1)
    return _take(inputs.fit_x, first), inputs.fit_y[first]


def _fit_fold(space: Space, hp: HyperParameters, data: Dataset, *, fold: int, seed: int,
              tr: np.ndarray, va: np.ndarray, fit_overrides: dict[str, Any] | None,
              warm_start: list[str] | None, predict_test: bool,
              tensorboard_dir: Path | None, built: Callable[[], None],
              part: tuple[int, int] = (0, 1), reuse: ModelReuse | None = None,
              retry: bool = False) -> FoldFit:
    """Build, fit and predict one fold: (model, preprocessor, fit settings, history, OOF
    rows, test predictions, fit seconds). ``retry``: the second try after running out of
    memory, with half the space's batch size. ``part``: (j, S): the j-th of a fold's S
    bagged models (a warm start then takes the parent's j-th model's weights). ``reuse``:
    the trial's :class:`~search.reuse.ModelReuse` (the fold trains on its host model).

    Raises:
        _OutOfMemory: the fold ran out of memory (first try only; on ``retry`` the error
            propagates and fails the trial).
        TrialFailed: the loss became NaN/inf (the fit stops at once), or NaN predictions.
    """
    try:
        p = _prepare_fold(space, hp, data, fold=fold, seed=seed, tr=tr, va=va,
                          fit_overrides=fit_overrides, warm_start=warm_start,
                          predict_test=predict_test, tensorboard_dir=tensorboard_dir,
                          built=built, part=part, retry=retry)
        model, inputs, settings = p.model, p.inputs, p.settings
        # the trial's first fold model, holding this one's state, if they match
        host = reuse.host_for(model, _first_row(inputs)) if reuse is not None else model
        ok = False
        try:
            t_fit = time.perf_counter()
            history = host.fit(inputs.fit_x, inputs.fit_y, validation_data=inputs.validation,
                               verbose=0, **inputs.fit_kwargs).history
            fit_seconds = time.perf_counter() - t_fit
            _check_losses(history.get("loss", []), fold)
            pred, tp = _predictions(space, host, inputs, settings["batch_size"], fold)
            ok = True
        finally:
            if reuse is not None:
                reuse.give_back(host, model, ok=ok)
    except (TrialFailed, SpaceError):
        raise
    except Exception as exc:
        if _is_oom(exc) and not retry:
            raise _OutOfMemory(_describe(exc)) from exc
        raise
    return model, p.pre, settings, history, pred, tp, fit_seconds


def _check_losses(losses: list[float], fold: int) -> None:
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        raise TrialFailed(f"training loss became NaN/inf in epoch {bad[0] + 1} of fold "
                          f"{fold}; the fit was stopped there (a lower learning rate "
                          "or gradient clipping usually helps)")


def _predictions(space: Space, model: Any, inputs: FoldInputs, batch_size: int,
                 fold: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A fold model's predictions of its validation rows (checked finite) and of the test
    split (None unless asked)."""
    pred = predict(model, inputs.x_val, batch_size, task=space.task)
    tp = predict(model, inputs.x_test, batch_size, task=space.task) \
        if inputs.x_test is not None else None
    return _checked(space, pred, tp, fold)


def _checked(space: Space, pred: Any, tp: Any, fold: int
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw validation/test outputs as predictions (:func:`~search.modelio.as_predictions`),
    the validation ones checked finite."""
    pred = as_predictions(pred, task=space.task)
    if not np.all(np.isfinite(pred)):
        raise TrialFailed(f"the model predicted NaN/inf on validation rows of fold {fold}")
    return pred, None if tp is None else as_predictions(tp, task=space.task)


def _stackable_test(x_test: list[Any]) -> list[np.ndarray] | None:
    """The folds' test inputs when the stacked program can predict them in one call (one
    array each, equal shapes, at most ``MAX_STACK_BYTES`` together), else None (then each
    fold model predicts its own, as unstacked)."""
    from search.stacking import MAX_STACK_BYTES

    if not all(isinstance(a, np.ndarray) for a in x_test) or \
            len({a.shape for a in x_test}) != 1 or \
            sum(a.nbytes for a in x_test) > MAX_STACK_BYTES:
        return None
    return x_test


def _fit_stacked(space: Space, hp: HyperParameters, data: Dataset, *, fold_of: np.ndarray,
                 folds: list[int], seeds: list[int], fit_overrides: dict[str, Any] | None,
                 predict_test: bool, built: Callable[[], None]
                 ) -> dict[int, FoldFit | TrialFailed]:
    """``folds`` trained as one program (:mod:`search.stacking`): each fold's FoldFit, or
    the TrialFailed it would have raised alone (NaN loss or predictions). Empty when they
    cannot be stacked or the stacked program fails to run (out of memory, a model JAX
    cannot vmap): the folds then train one after another, as without stacking.
    """
    from search import stacking

    stacking.last_blocker = stacking.backend_blocker()
    if stacking.last_blocker is not None:  # before any fold model is built
        return {}
    prepared: list[_Prepared] = []
    for fold, s in zip(folds, seeds, strict=True):
        tr, va = fold_indices(fold_of, fold)
        # the first fold's model is built and taped; where the tape can give the others'
        # initial values, they share it (search.fold_values: ~30 ms a build saved)
        shared = prepared[0].model if prepared and prepared[0].tape is not None else None
        prepared.append(_prepare_fold(space, hp, data, fold=fold, seed=s, tr=tr, va=va,
                                      fit_overrides=fit_overrides, warm_start=None,
                                      predict_test=predict_test, tensorboard_dir=None,
                                      built=built, model=shared, tape=not prepared))
    first = prepared[0]
    tape = first.tape
    sample = _first_row(first.inputs)
    if sample is None or not prebuild(first.model, sample):
        stacking.last_blocker = "streamed inputs or a loss Keras cannot build ahead"
        return {}
    blocker = stacking.stack_blocker(
        [p.model for p in prepared], [p.inputs.fit_x for p in prepared],
        [p.inputs.fit_y for p in prepared], [p.inputs.x_val for p in prepared],
        first.inputs.fit_kwargs, first.user_callbacks)
    stacking.last_blocker = blocker
    if blocker is not None:
        return {}
    initial = None
    if tape is not None:
        host = first.model
        initial = [([np.asarray(v.value) for v in host.trainable_variables],
                    [np.asarray(v.value) for v in host.non_trainable_variables])]
        initial += [tape.values(s) for s in seeds[1:]]
    t_fit = time.perf_counter()
    try:
        outcomes = stacking.train_stacked(
            [p.model for p in prepared], fit_x=[p.inputs.fit_x for p in prepared],
            fit_y=[p.inputs.fit_y for p in prepared], x_val=[p.inputs.x_val for p in prepared],
            y_val=[p.inputs.validation[1] for p in prepared], seeds=seeds,
            epochs=int(first.settings["epochs"]),
            batch_size=int(first.settings["batch_size"]),
            shuffle=bool(first.settings.get("shuffle", True)), patience=first.patience,
            x_test=_stackable_test([p.inputs.x_test for p in prepared]), initial=initial)
    except Exception as exc:  # any failure of the program: the folds train alone
        stacking.last_blocker = f"the stacked program failed: {_describe(exc)}"
        return {}
    fit_seconds = (time.perf_counter() - t_fit) / len(folds)
    out: dict[int, FoldFit | TrialFailed] = {}
    for fold, p, done in zip(folds, prepared, outcomes, strict=True):
        model = p.model if tape is None else \
            _FoldValues(p.model, done.trainable, done.non_trainable)
        try:
            if done.nan_epoch is not None:
                _check_losses(done.history.get("loss", []), fold)
            if done.val_pred is not None and (done.test_pred is not None
                                              or p.inputs.x_test is None):
                pred, tp = _checked(space, done.val_pred, done.test_pred, fold)
            else:
                pred, tp = _predictions(space, _materialised(model), p.inputs,
                                        p.settings["batch_size"], fold)
        except TrialFailed as exc:
            out[fold] = exc
            continue
        out[fold] = (model, p.pre, p.settings, done.history, pred, tp, fit_seconds)
    return out
