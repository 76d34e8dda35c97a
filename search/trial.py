"""One trial, identical for every backend: K folds of build → fit → predict → score.

Backends differ only in who proposes the parameters (the ``hp`` they pass) and where this
runs. The trial writes nothing itself: after each fold it hands a plain
:class:`~search.results.FoldResult` to a sink, and only the driver's sink writes the store.
"""

from __future__ import annotations

import copy
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.errors import SpaceError, TrialFailed, TrialPruned
from search.feeding import row_batches, should_stream
from search.folds import fold_indices
from search.hp import HyperParameters
from search.modelio import predict
from search.results import FoldResult, TrialSink, model_bytes, preprocessor_bytes
from search.space import Space
from search.store import FoldRecord, TrialRecord

Report = Callable[[int, float], None]

__all__ = ["Dataset", "FoldInputs", "TrialResult", "fold_inputs", "fold_seed", "run_trial"]


@dataclass(frozen=True)
class Dataset:
    """The run's data, loaded once per process and shared by all its trials (no copies)."""

    x_train: Any
    y_train: np.ndarray
    x_test: Any
    y_test: np.ndarray

    @classmethod
    def from_space(cls, space: Space, data_dir: str | Path | None) -> Dataset:
        (x_train, y_train), (x_test, y_test) = space.load_data(data_dir)
        return cls(x_train, np.asarray(y_train), x_test, np.asarray(y_test))


@dataclass
class TrialResult:
    """What ``run_trial`` hands back to the backend."""

    record: TrialRecord
    oof: np.ndarray
    test_pred: np.ndarray | None


def fold_seed(run_seed: int, trial: int, fold: int) -> int:
    """A seed per (run, trial, fold): reproducible, and different for every fold model."""
    return int(np.random.SeedSequence([run_seed, trial, fold]).generate_state(1)[0] % (2**31))


def _take(x: Any, idx: np.ndarray) -> Any:
    if isinstance(x, dict):
        return {k: _take(v, idx) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_take(v, idx) for v in x)
    return x[idx]


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


def _describe(exc: BaseException) -> str:
    """A one-line failure reason; out-of-memory gets named as such."""
    name = type(exc).__name__
    if isinstance(exc, MemoryError) or name in ("ResourceExhaustedError", "OutOfMemoryError"):
        return f"out of memory ({name}): {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    text = str(exc).strip().splitlines()
    return f"{name}: {text[0] if text else ''}".rstrip(": ")


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

    Returns:
        The record, the OOF array (NaN in rows of folds that did not run) and the mean
        test prediction.

    Raises:
        TrialPruned: the pruner stopped the trial; the record says ``pruned``.
        TrialFailed: NaN loss or predictions, out of memory, or any exception from the
            space's code; the record says ``failed`` with the reason.
    """
    import keras

    k = int(fold_of.max()) + 1
    n_train = len(data.y_train)
    record = TrialRecord(
        number=number, status="running", params={}, n_folds=k, seed=seed,
        backend=backend, backend_id=backend_id, started=time.time(), is_default=is_default,
        worker=worker,
    )
    oof: np.ndarray | None = None
    test_sum: np.ndarray | None = None
    if sink is not None:
        sink.started(record)  # visible as running; a kill before fold 0 leaves a trace

    def finish(status: str, error: str | None = None, detail: str | None = None) -> None:
        record.status = status  # type: ignore[assignment]
        record.finished = time.time()
        record.seconds = record.finished - record.started
        record.error, record.error_detail = error, detail
        record.params = dict(hp.values)
        scores = record.fold_scores
        record.score = float(np.mean(scores)) if scores else None
        record.score_std = float(np.std(scores)) if scores else None
        if sink is not None:
            sink.finished(record)

    try:
        for fold in range(k):
            t0 = time.perf_counter()
            s = fold_seed(seed, number, fold)
            # Fresh Keras state per fold; the full collection (gc.collect, ~0.2 s in a big
            # process) once per trial, in ``finally`` below.
            keras.backend.clear_session(free_memory=False)
            keras.utils.set_random_seed(s)
            tr, va = fold_indices(fold_of, fold)
            model = space.build(hp)
            settings = space.fit_settings(hp)
            if fit_overrides:
                settings.update(fit_overrides)
            # a warm-started model already trained ``initial_epoch`` epochs: best_epoch counts
            # from its first (what a refit from scratch needs), epochs_run only this trial's
            start = int(settings.get("initial_epoch", 0)) if warm_start is not None else 0
            if warm_start is not None:
                parent = keras.models.load_model(warm_start[fold], compile=False,
                                                 safe_mode=True)
                model.set_weights(parent.get_weights())
                del parent
            if tensorboard_dir is not None:
                settings["callbacks"] = [*settings["callbacks"], keras.callbacks.TensorBoard(
                    log_dir=str(tensorboard_dir / "tensorboard" / f"fold_{fold}"))]
            bs = settings["batch_size"]
            pre = space.preprocessor(hp)
            inputs = fold_inputs(space, data, settings, pre, train=tr, val=va, seed=s,
                                 predict_test=predict_test)
            y_va = data.y_train[va]
            record.params = dict(hp.values)
            t_fit = time.perf_counter()
            history = model.fit(inputs.fit_x, inputs.fit_y, validation_data=inputs.validation,
                                verbose=0, **inputs.fit_kwargs).history
            fit_seconds = time.perf_counter() - t_fit
            losses = history.get("loss", [])
            bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
            if bad:
                raise TrialFailed(f"training loss became NaN/inf at epoch {bad[0] + 1}")
            pred = predict(model, inputs.x_val, bs, task=space.task)
            if not np.all(np.isfinite(pred)):
                raise TrialFailed("the model predicted NaN/inf on validation rows")
            if oof is None:
                oof = np.full((n_train, pred.shape[1]), np.nan, dtype=np.float32)
            oof[va] = pred
            score = space.metric(y_va, pred, space.task)
            if not math.isfinite(score):
                raise TrialFailed(f"fold {fold} scored {score} ({space.metric.name})")
            tp = predict(model, inputs.x_test, bs, task=space.task) if predict_test else None
            if tp is not None:
                test_sum = tp if test_sum is None else test_sum + tp
            val_loss = history.get("val_loss", [None])[-1]
            fold_rec = FoldRecord(
                fold=fold, score=float(score), best_epoch=_best_epoch(history) + start,
                epochs_run=len(losses), seed=s, fit_seconds=fit_seconds,
                seconds=time.perf_counter() - t0,
                train_loss=float(losses[-1]) if losses else None,
                val_loss=float(val_loss) if val_loss is not None else None,
                history={k: [float(v) for v in history[k]] for k in ("loss", "val_loss")
                         if k in history},
            )
            record.folds.append(fold_rec)
            record.models_kept = save_models
            if sink is not None:
                sink.fold(FoldResult(
                    record=copy.deepcopy(record), fold=fold, rows=va, oof=pred, test=tp,
                    model=model_bytes(model) if save_models else None,
                    preprocessor=(preprocessor_bytes(pre) if save_models and pre is not None
                                  else None),
                ))
            if report is not None and fold < k - 1:
                report(fold, float(np.mean(record.fold_scores)))
    except TrialPruned:
        finish("pruned", f"pruned after fold {len(record.folds) - 1}")
        raise
    except TrialFailed as exc:
        finish("failed", str(exc))
        raise
    except (KeyboardInterrupt, SystemExit):
        finish("failed", "interrupted")
        raise
    except SpaceError as exc:
        finish("failed", str(exc), traceback.format_exc())
        raise TrialFailed(str(exc)) from exc
    except Exception as exc:  # user code, Keras, OOM: this trial fails, the search goes on
        finish("failed", _describe(exc), traceback.format_exc())
        raise TrialFailed(_describe(exc)) from exc
    finally:
        keras.backend.clear_session()
    finish("complete")
    assert oof is not None
    test_pred = None if test_sum is None else test_sum / k
    return TrialResult(record=record, oof=oof, test_pred=test_pred)
