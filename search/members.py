"""Ensemble members: a trial's Keras models, averaged; and refitting them on all the data.

Two kinds (design.md, issue 4):

* **fold members** — the K fold models the search kept (``trials/<id>/fold_*.keras``). They
  are the very models whose predictions fill ``oof.npy``, so weights fitted on OOF
  predictions transfer to them. The default.
* **refit members** — the trial retrained on the whole training set for the median best
  epoch of its folds, averaged over several seeds (``members/<id>/``). Measured on real
  Boston, single refits can collapse far below their fold models, so each seed's model
  passes a *divergence guard*: its final training loss is compared with the fold models'
  training loss at the same epoch; a model far worse is retrained once with a new seed, and
  if it fails again the member is dropped, with the reason recorded.

Both kinds predict raw inputs the same way: each model gets its own fitted preprocessor
(if the space has one), and the member's prediction is the mean over its models.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from search.errors import StoreError, UsageError
from search.feeding import row_batches, should_stream
from search.hp import FixedHP
from search.modelio import predict, save_model, save_preprocessor
from search.space import Space
from search.store import RunStore, TrialRecord, save_npy, write_json
from search.tf_setup import set_random_seed
from search.trial import Dataset, fold_inputs, fold_seed

MemberKind = Literal["folds", "refit"]

__all__ = ["KerasMember", "MemberKind", "RefitResult", "fold_member", "refit_member",
           "refit_trial"]


@dataclass
class KerasMember:
    """One ensemble member: the mean prediction of one or more saved Keras models.

    Models load lazily on the first ``predict`` and stay cached. ``task`` is the run's: a
    binary member's 2-unit softmax then predicts ``(n, 1)`` positive-class probabilities, the
    shape its OOF predictions (and so its ensemble weights) were made with.
    """

    trial: int
    kind: MemberKind
    model_files: list[Path]
    pre_files: list[Path | None]
    task: str | None = None
    _loaded: list[tuple[Any, Any]] = field(default_factory=list, repr=False)

    def _models(self) -> list[tuple[Any, Any]]:
        if not self._loaded:
            import joblib

            loaded = [(load_keras(mf), joblib.load(pf) if pf is not None else None)
                      for mf, pf in zip(self.model_files, self.pre_files, strict=True)]
            self._loaded = loaded  # all or none: a refused file leaves no partial member
        return self._loaded

    def predict(self, x: Any, *, batch_size: int = 256) -> np.ndarray:
        """Mean prediction of the member's models on raw inputs ``x`` (n, outputs)."""
        preds = []
        for model, pre in self._models():
            xx = pre.transform(x) if pre is not None else x
            preds.append(predict(model, xx, batch_size, task=self.task))
        return np.mean(preds, axis=0)


def load_keras(path: Path) -> Any:
    """Load a ``.keras`` file in Keras' safe mode, or fail naming the file.

    A model file may come from anywhere (a shared run directory, an ensemble someone saved),
    and loading it unsafely would run the Python bytecode a ``Lambda`` layer carries. Safe
    mode refuses such files instead; spaces that need custom code in a model use a layer or
    function registered with ``keras.saving.register_keras_serializable``, which loads safely.
    """
    import keras

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" not in str(exc):
            raise
        reason = str(exc).split(" If you trust", 1)[0]
        raise StoreError(
            f"{path} was not loaded: Keras' safe mode refuses it ({reason}). Model files load "
            "in safe mode so that opening one cannot run code; a model that needs custom code "
            "should use a layer or function registered with "
            "keras.saving.register_keras_serializable instead of a Python lambda"
        ) from None


def _pairs(model_files: list[Path]) -> list[Path | None]:
    out: list[Path | None] = []
    for mf in model_files:
        pre = mf.with_name(mf.name.replace(".keras", ".pre.joblib"))
        out.append(pre if pre.is_file() else None)
    return out


def _run_task(store: RunStore) -> str | None:
    """The run's TASK (members predict in the shape the run's OOF predictions have)."""
    task = store.read_run().get("task")
    return str(task) if task is not None else None


def fold_member(store: RunStore, record: TrialRecord) -> KerasMember:
    """The fold member of a stored trial; fails if its fold models were not kept."""
    files = store.model_paths(record.number)
    if len(files) != record.n_folds:
        raise UsageError(
            f"trial {record.number} has {len(files)} of {record.n_folds} fold models on disk: "
            "fold models are kept only for the best --keep-models trials; use fewer --top "
            "members, --members refit, or a larger --keep-models in the next run"
        )
    return KerasMember(record.number, "folds", files, _pairs(files), _run_task(store))


def refit_member(store: RunStore, number: int) -> KerasMember:
    """The refit member of a trial, from ``members/<id>/`` (after ``retrain``)."""
    mdir = member_dir(store, number)
    files = sorted(mdir.glob("seed_*.keras"))
    if not files:
        raise StoreError(f"trial {number} has no refit models in {mdir}; run `retrain` first")
    return KerasMember(number, "refit", files, _pairs(files), _run_task(store))


def member_dir(store: RunStore, number: int) -> Path:
    """A refit member's directory (finishing a swap a kill interrupted, see refit_trial)."""
    final = store.root / "members" / f"{number:04d}"
    staged = _staging(final)
    if not final.exists() and (staged / "refit.json").is_file():
        os.replace(staged, final)  # killed between the two renames: the new member stands
    return final


def _staging(final: Path) -> Path:
    return final.with_name(f".{final.name}.new")


def _swap_in(staged: Path, final: Path) -> None:
    """Replace ``final`` by the complete ``staged`` directory: rename the old one away,
    rename the new one in, delete the old. A kill at any point leaves one complete member
    (the old, or the new: :func:`member_dir` finishes the second rename)."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class SeedFit:
    """One seed's refit model and what the guard saw."""

    seed: int
    attempt: int
    epochs: int
    train_loss: float
    reference_loss: float | None
    ok: bool
    seconds: float


@dataclass
class RefitResult:
    """The outcome of refitting one trial (``members/<id>/refit.json``)."""

    trial: int
    status: Literal["ok", "dropped"]
    epochs: int
    seeds: list[SeedFit]
    reason: str | None = None
    guard_factor: float = 2.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _reference_loss(record: TrialRecord, epochs: int) -> float | None:
    """Median training loss of the fold models at ``epochs`` (what a healthy refit reaches)."""
    losses = []
    for f in record.folds:
        curve = f.history.get("loss") or []
        if len(curve) >= epochs:
            losses.append(curve[epochs - 1])
        elif f.train_loss is not None:
            losses.append(f.train_loss)
    finite = [v for v in losses if math.isfinite(v)]
    return statistics.median(finite) if finite else None


def refit_epochs(record: TrialRecord) -> int:
    """Median best epoch across the trial's folds (at least 1)."""
    best = [f.best_epoch for f in record.folds if f.best_epoch > 0]
    if not best:
        return max(1, max((f.epochs_run for f in record.folds), default=1))
    return max(1, round(statistics.median(best)))


def _fit_full(space: Space, record: TrialRecord, data: Dataset, epochs: int,
              seed: int) -> tuple[Any, Any, float]:
    import keras

    keras.backend.clear_session()
    set_random_seed(seed)
    hp = FixedHP(record.params)
    model = space.build(hp)
    settings = space.fit_settings(hp)
    settings["epochs"] = epochs
    settings.pop("early_stopping", None)  # the folds' best epoch is the stopping point here
    # No validation part in a refit: callbacks that watch validation metrics cannot work.
    settings["callbacks"] = [c for c in settings["callbacks"]
                             if not str(getattr(c, "monitor", "")).startswith("val_")]
    pre = space.preprocessor(hp)
    inputs = fold_inputs(space, data, settings, pre, train=np.arange(len(data.y_train)),
                         val=None, seed=seed, predict_test=False)
    history = model.fit(inputs.fit_x, inputs.fit_y, verbose=0, **inputs.fit_kwargs).history
    losses = history.get("loss", [math.nan])
    return model, pre, float(losses[-1])


def refit_trial(space: Space, data: Dataset, store: RunStore, record: TrialRecord, *,
                seeds: int = 3, run_seed: int = 0, guard_factor: float = 2.0,
                predict_test: bool = True) -> RefitResult:
    """Retrain one trial on all training rows, ``seeds`` times, behind the divergence guard.

    A seed's model is *diverged* when its final training loss is not finite or exceeds
    ``guard_factor`` × the fold models' median training loss at the same epoch. It is
    retrained once with a new seed; if that fails too, the member is dropped (status
    ``dropped``, the reason recorded) and its models are not kept.
    """
    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1; got {seeds}")
    if guard_factor <= 1:
        raise UsageError(f"--guard-factor must be above 1; got {guard_factor}")
    final = member_dir(store, record.number)
    # The new member is written aside and swapped in whole, refit.json included: a kill
    # mid-retrain leaves the previous member (models, test.npy, refit.json) as it was.
    mdir = _staging(final)
    shutil.rmtree(mdir, ignore_errors=True)
    mdir.mkdir(parents=True)
    epochs = refit_epochs(record)
    reference = _reference_loss(record, epochs)
    result = RefitResult(record.number, "ok", epochs, [], guard_factor=guard_factor)
    test_preds: list[np.ndarray] = []
    for i in range(seeds):
        for attempt in range(2):
            s = fold_seed(run_seed, record.number, 1000 + 10 * i + attempt)
            t0 = time.perf_counter()
            model, pre, loss = _fit_full(space, record, data, epochs, s)
            ok = math.isfinite(loss) and (reference is None or loss <= guard_factor * reference
                                          + 1e-12)
            result.seeds.append(SeedFit(s, attempt, epochs, loss, reference, ok,
                                        time.perf_counter() - t0))
            if ok:
                break
        if not ok:
            result.status = "dropped"
            result.reason = (f"seed model {i} diverged twice: final training loss {loss:.4g} vs "
                             f"{guard_factor:g} × fold models' {reference:.4g}"
                             if reference is not None else f"training loss {loss}")
            for old in mdir.glob("seed_*"):
                old.unlink()
            test_preds = []
            break
        save_model(model, mdir / f"seed_{i}.keras")
        if pre is not None:
            save_preprocessor(pre, mdir / f"seed_{i}.pre.joblib")
        if predict_test:
            xt = pre.transform(data.x_test) if pre is not None else data.x_test
            if should_stream(xt):
                xt = row_batches(xt, None, np.arange(len(data.y_test)), batch_size=256)
            test_preds.append(predict(model, xt, 256, task=space.task))
    if test_preds:
        save_npy(mdir / "test.npy", np.mean(test_preds, axis=0).astype(np.float32))
    else:
        (mdir / "test.npy").unlink(missing_ok=True)
    write_json(mdir / "refit.json", result.to_json())
    _swap_in(mdir, final)
    import keras

    keras.backend.clear_session()
    return result


def read_refit(store: RunStore, number: int) -> RefitResult | None:
    """The stored refit outcome of a trial, or None if it was never refit."""
    import json

    path = member_dir(store, number) / "refit.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    data["seeds"] = [SeedFit(**s) for s in data.get("seeds", [])]
    return RefitResult(**data)
