"""Keras Tuner backend: Keras Tuner's oracles and its ``Tuner`` loop over our K-fold trials.

Keras Tuner cannot cross-validate a Keras model (keras-team/keras-tuner #139); here its
oracle proposes, its ``Tuner.search`` loop drives, and :class:`SearchTuner.run_trial` runs
the shared K-fold trial code, so every trial keeps its OOF rows, test predictions and
models in our store like any other backend's.

- **The space** is traced from ``build(hp)`` by our tracer (every branch, so conditional
  parameters too) and declared to the oracle once (:func:`kt_space`); a trial's values come
  from ``trial.hyperparameters`` into our ``hp`` (:class:`~search.hp.FixedHP`).
- **Project directory**: ``RUN/keras_tuner/`` (Keras Tuner's own ``oracle.json`` and
  ``trial_*/trial.json``), plus ``store_numbers.json``: Keras Tuner trial id → store trial
  number. ``--resume`` reloads the project and continues to the requested total.
- **The default point** (trial 0, run by the driver) and every other store trial the oracle
  has not seen enter it as finished Keras Tuner trials (:func:`_add_finished`).
- **Hyperband** (``--algorithm hyperband --max-epochs E --factor F``): each trial trains
  every fold for Hyperband's ``tuner/epochs``, which replaces the space's own epochs
  (``fit_settings(hp)["epochs"]``, constant or searched: ignored under Hyperband; the
  space's callbacks such as early stopping still apply). A promoted trial
  (``tuner/trial_id``) starts each fold from its parent's fold model and trains epochs
  ``tuner/initial_epoch`` … ``tuner/epochs`` (as Keras Tuner's own Hyperband loads the
  parent's weights; the optimizer state starts fresh there too). Fold models of trials that
  may still be promoted are kept until the search ends; if a parent's models are gone
  (deleted by hand, or an older session), the trial trains from scratch for
  ``tuner/epochs``. ``FoldRecord.epochs_run`` records the epochs each fold actually trained;
  ``tuner/*`` values are in the trial's params.
- **Failures**: a trial that fails is recorded failed in the store (with its reason) and
  Keras Tuner sees an exception: it retries the same trial (same store number) up to
  ``--max-retries-per-trial`` times, and stops the search after
  ``--max-consecutive-failed-trials`` failed trials in a row, as its documentation says;
  that stop is an error (exit 1) naming the limit and the last reason.
- **Pruning**: Keras Tuner has no fold-level pruner; ``--pruner median`` stops a trial after
  a fold whose running mean is worse than the median of the other trials' at that fold
  (Optuna's MedianPruner rule, 3 completed trials first). Keras Tuner is told the pruned
  trial's running mean as its score (what Optuna's TPE does with a pruned trial's last
  value).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from search.backends.base import Backend, Driver, Option
from search.errors import SearchError, TrialFailed, TrialPruned, UsageError
from search.plan import TrialSpec
from search.space import SpaceTrace
from search.store import TrialRecord, write_json

ALGORITHMS = ("random", "bayesian", "hyperband")
PRUNERS = ("none", "median")
PROJECT = "keras_tuner"
NUMBERS = "store_numbers.json"
SCORE = "score"
_TUNER = "tuner/"

__all__ = ["ALGORITHMS", "PROJECT", "KerasTunerBackend", "SearchTuner", "hyperband_trials",
           "kt_space"]


def kt_space(trace: SpaceTrace) -> Any:
    """Our traced space as Keras Tuner ``HyperParameters`` (same names, ranges, defaults).

    Raises:
        UsageError: a parameter Keras Tuner cannot declare (e.g. a Choice mixing types).
    """
    import keras_tuner as kt

    hps = kt.HyperParameters()
    for s in trace.specs:
        try:
            if s.kind == "int":
                assert s.low is not None and s.high is not None
                step = None if s.sampling != "linear" else int(s.step or 1)
                hps.Int(s.name, int(s.low), int(s.high), step=step, sampling=s.sampling,
                        default=s.default)
            elif s.kind == "float":
                assert s.low is not None and s.high is not None
                hps.Float(s.name, float(s.low), float(s.high),
                          step=None if s.sampling != "linear" else s.step,
                          sampling=s.sampling, default=s.default)
            elif s.kind == "boolean":
                hps.Boolean(s.name, default=s.default)
            elif s.kind == "choice":
                hps.Choice(s.name, list(s.values), default=s.default)
            else:
                hps.Fixed(s.name, s.default)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"parameter {s.name!r} cannot be declared to Keras Tuner: {exc} "
                             "(use --backend optuna, or give it values of one type)") from None
    return hps


def hyperband_trials(max_epochs: int, factor: int) -> int:
    """Trials one Hyperband iteration runs (Keras Tuner's bracket sizes, summed)."""
    import keras_tuner as kt

    oracle = kt.oracles.HyperbandOracle(objective=kt.Objective(SCORE, "min"),
                                        max_epochs=max_epochs, factor=factor)
    return sum(oracle._get_size(b, r)
               for b in range(oracle._get_num_brackets())
               for r in range(oracle._get_num_rounds(b)))


def _objective(direction: str) -> Any:
    import keras_tuner as kt

    return kt.Objective(SCORE, direction="min" if direction == "minimize" else "max")


class KerasTunerBackend(Backend):
    """Keras Tuner's oracles (random, Bayesian, Hyperband) and ``Tuner.search`` loop."""

    name = "keras-tuner"
    extra = "keras-tuner"
    options: ClassVar[dict[str, Option]] = {
        "algorithm": Option("random", "Keras Tuner oracle.", choices=ALGORITHMS),
        "pruner": Option("none", "Stop a trial after a fold worse than the median.",
                         choices=PRUNERS),
        "max_epochs": Option(None, "Hyperband: most epochs a trial trains (default: the "
                             "space's default epochs).", type=int),
        "factor": Option(3, "Hyperband: reduction factor between rounds.", type=int),
        "max_retries_per_trial": Option(0, "Re-run a failed trial this many times.",
                                        type=int, frozen=False),
        "max_consecutive_failed_trials": Option(3, "Stop the search after this many failed "
                                                "trials in a row.", type=int, frozen=False),
    }

    def __init__(self, *, study_name: str, algorithm: str = "random", pruner: str = "none",
                 max_epochs: int | None = None, factor: int = 3,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3) -> None:
        self.study_name = study_name
        self.algorithm = algorithm
        self.pruner = pruner
        self.max_epochs = max_epochs
        self.factor = int(factor)
        self.max_retries_per_trial = int(max_retries_per_trial)
        self.max_consecutive_failed_trials = int(max_consecutive_failed_trials)

    def prepare(self, driver: Driver) -> None:
        """Usage errors before any trial: --jobs, a space Keras Tuner cannot declare,
        Hyperband flags."""
        if driver.jobs > 1:
            raise UsageError("--backend keras-tuner runs one trial at a time (Keras Tuner's "
                             "loop); for parallel trials use --backend optuna --jobs N or "
                             "--backend ray")
        kt_space(driver.trace)
        if self.algorithm != "hyperband" and self.max_epochs is not None:
            raise UsageError("--max-epochs is Hyperband's: add --algorithm hyperband")
        if self.algorithm == "hyperband":
            if self.factor < 2:
                raise UsageError(f"--factor must be at least 2; got {self.factor}")
            if self.epochs_cap(driver) < 1:
                raise UsageError("--max-epochs must be at least 1")
        if self.max_consecutive_failed_trials < 1:
            raise UsageError("--max-consecutive-failed-trials must be at least 1")

    def epochs_cap(self, driver: Driver) -> int:
        """Hyperband's ``max_epochs``: the flag, else the space's default epochs."""
        if self.max_epochs is not None:
            return int(self.max_epochs)
        from search.hp import FixedHP

        return int(driver.space.fit_settings(FixedHP(driver.trace.defaults))["epochs"])

    # -- the search ----------------------------------------------------------------------
    def optimize(self, driver: Driver, *, n_trials: int, timeout: float | None) -> None:
        import keras_tuner as kt

        project = driver.store.root / PROJECT
        numbers = _read_numbers(project)
        hps = kt_space(driver.trace)
        common: dict[str, Any] = {
            "objective": _objective(driver.direction), "hyperparameters": hps,
            "allow_new_entries": False, "tune_new_entries": True,
            "seed": driver.plan.seed % 2**31 + 1,
            "max_retries_per_trial": self.max_retries_per_trial,
            "max_consecutive_failed_trials": self.max_consecutive_failed_trials,
        }
        if self.algorithm == "random":
            oracle = kt.oracles.RandomSearchOracle(max_trials=n_trials, **common)
        elif self.algorithm == "bayesian":
            oracle = kt.oracles.BayesianOptimizationOracle(max_trials=n_trials, **common)
        else:
            oracle = kt.oracles.HyperbandOracle(max_epochs=self.epochs_cap(driver),
                                                factor=self.factor, **common)
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from …"
            tuner = SearchTuner(oracle, driver=driver, backend=self, numbers=numbers,
                                directory=str(driver.store.root), project_name=PROJECT)
        # A reloaded oracle keeps its own trial count: the total is this session's --trials.
        tuner.oracle.max_trials = n_trials
        tuner.oracle.verbose = 0
        for record in driver.finished():
            if record.number not in numbers.values():
                _add_finished(tuner.oracle, record, numbers, driver.direction)
        _write_numbers(project, numbers)
        driver.events.search_started(run_dir=driver.store.root, total=n_trials,
                                     done=driver.done(), folds=driver.n_folds,
                                     metric=driver.space.metric.name)
        tuner.deadline = None if timeout is None else time.monotonic() + timeout
        from keras_tuner.src import config as kt_config

        # Keras Tuner prints every failed trial's traceback while its DEBUG flag is on (the
        # default); our record keeps the reason and the traceback, the progress bar says it.
        debug, kt_config.DEBUG = kt_config.DEBUG, False
        try:
            tuner.search(verbose=0)
        except RuntimeError as exc:
            if "consecutive failures" not in str(exc):
                raise
            last = next((r for r in reversed(driver.finished()) if r.status == "failed"),
                        None)
            reason = (last.error or "").splitlines()[0] if last is not None else ""
            raise SearchError(
                f"Keras Tuner stopped the search: {self.max_consecutive_failed_trials} failed "
                f"trials in a row (--max-consecutive-failed-trials); the last one: {reason}"
            ) from None
        finally:
            kt_config.DEBUG = debug
            driver.writer.pinned.clear()
            driver.writer.retain_now()
        if tuner.timed_out:
            driver.events.message("--timeout reached")

    # -- pruning ---------------------------------------------------------------------------
    def should_prune(self, driver: Driver, number: int, fold: int, value: float) -> bool:
        """Optuna's MedianPruner rule over the store: worse than the median running mean of
        the other trials at this fold, once 3 trials have completed."""
        if self.pruner != "median":
            return False
        others = [r for r in driver.finished() if r.number != number]
        if sum(r.status == "complete" for r in others) < 3:
            return False
        means = [float(np.mean(r.fold_scores[: fold + 1])) for r in others
                 if r.status in ("complete", "pruned") and len(r.fold_scores) > fold]
        if not means:
            return False
        median = float(np.median(means))
        return value > median if driver.direction == "minimize" else value < median


def _tuner_class() -> type:
    import keras_tuner as kt

    return kt.Tuner


class SearchTuner(_tuner_class()):  # type: ignore[misc,unused-ignore]
    """A Keras Tuner ``Tuner`` whose ``run_trial`` is our K-fold trial.

    The hypermodel is None (Keras Tuner allows that when ``run_trial`` is overridden): our
    space builds the model, fold by fold, inside the shared trial code.
    """

    def __init__(self, oracle: Any, *, driver: Driver, backend: KerasTunerBackend,
                 numbers: dict[str, int], **kwargs: Any) -> None:
        self.driver = driver
        self.backend = backend
        self.numbers = numbers
        self.deadline: float | None = None
        self.timed_out = False
        super().__init__(oracle=oracle, hypermodel=None, overwrite=False, **kwargs)

    def pre_create_trial(self) -> None:
        """``--timeout``: no new trial after the deadline (Keras Tuner then stops)."""
        if (self.deadline is not None and time.monotonic() >= self.deadline) or \
                self.driver.stop_reason() is not None:
            self.timed_out = self.driver.stop_reason() is None
            self.oracle.max_trials = len(self.oracle.trials)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        from search.hp import FixedHP

        driver = self.driver
        if driver.queued and trial.trial_id not in self.numbers:
            # points to try first (partial): the oracle records the values actually run
            trial.hyperparameters.values.update(driver.queued.pop(0))
        values = dict(trial.hyperparameters.values)
        params = {k: v for k, v in values.items() if not k.startswith(_TUNER)}
        band = {k[len(_TUNER):]: v for k, v in values.items() if k.startswith(_TUNER)}
        number = self.numbers.get(trial.trial_id)  # a retry keeps its store number
        done = driver.writer.records.get(number) if number is not None else None
        if done is not None and done.status in ("complete", "pruned") and done.fold_scores \
                and trial.status != "FAILED":
            # an ongoing trial of a killed session, already continued by the driver
            return {SCORE: float(np.mean(done.fold_scores))}
        if number is None:
            number = driver.writer.allocate()
            self.numbers[trial.trial_id] = number
            _write_numbers(driver.store.root / PROJECT, self.numbers)
        spec = TrialSpec(number=number, params=params, backend_id=str(trial.trial_id))
        if band:
            spec.meta.update(self._hyperband(number, band))
        spec = replace(spec, keep_bar=driver.writer.keep_bar(number))  # after any pin
        state: dict[str, float] = {}

        def report(fold: int, value: float) -> None:
            state["last"] = value
            if self.backend.should_prune(driver, number, fold, value):
                raise TrialPruned(f"pruned after fold {fold}")

        hp = FixedHP(params)
        hp.values.update({k: v for k, v in values.items() if k.startswith(_TUNER)})  # recorded
        try:
            result = driver.run_here(spec, hp=hp, report=report)
        except TrialPruned:
            return {SCORE: state["last"]}
        except TrialFailed as exc:
            # Keras Tuner's retry / consecutive-failure logic sees an ordinary exception;
            # the store already holds the failed record with its reason.
            raise RuntimeError(str(exc)) from None
        finally:
            driver.events.progress(driver.done())
        assert result.record.score is not None
        return {SCORE: float(result.record.score)}

    def _hyperband(self, number: int, band: dict[str, Any]) -> dict[str, Any]:
        """Fit overrides and the parent's fold models for a Hyperband trial."""
        driver = self.driver
        epochs, initial = int(band["epochs"]), int(band.get("initial_epoch", 0))
        if int(band.get("round", 0)) < int(band.get("bracket", 0)):
            driver.writer.pinned.add(number)  # may be promoted: keep its fold models
        meta: dict[str, Any] = {"fit": {"epochs": epochs}}
        parent = band.get("trial_id")
        parent_number = self.numbers.get(str(parent)) if parent is not None else None
        if parent_number is not None:
            driver.writer.flush()  # the parent's fold models may still be on their way
        models = (driver.store.model_paths(parent_number) if parent_number is not None
                  else [])
        if initial > 0 and len(models) == driver.n_folds:
            meta["fit"]["initial_epoch"] = initial
            meta["warm_start"] = [str(p) for p in models]
            meta["parent"] = parent_number
        return meta

    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        """Models live in our store (fold models), not in Keras Tuner's checkpoints."""

    def load_model(self, trial: Any) -> Any:
        raise NotImplementedError("models of a run: search.load_experiment(RUN)")


def _add_finished(oracle: Any, record: TrialRecord, numbers: dict[str, int],
                  direction: str) -> None:
    """Tell the oracle a store trial it has not run (trial 0; older sessions' trials)."""
    from keras_tuner.src.engine import trial as kt_trial

    hp = oracle.hyperparameters.copy()
    names = {p.name for p in hp.space}
    hp.values = {k: v for k, v in record.params.items() if k in names}
    width = len(str(oracle.max_trials))
    trial_id = f"{len(oracle.trials):0{width}d}"
    while trial_id in oracle.trials:
        trial_id = f"{trial_id}_{record.number}"
    scored = record.status in ("complete", "pruned") and record.fold_scores
    status = kt_trial.TrialStatus.COMPLETED if scored else kt_trial.TrialStatus.FAILED
    trial = kt_trial.Trial(hyperparameters=hp, trial_id=trial_id, status=status)
    if scored:
        value = (record.score if record.score is not None
                 else float(np.mean(record.fold_scores)))
        trial.metrics.register(SCORE, direction="min" if direction == "minimize" else "max")
        trial.metrics.update(SCORE, float(value), step=0)
        trial.score, trial.best_step = float(value), 0
    else:
        trial.message = record.error
    oracle.trials[trial_id] = trial
    oracle.start_order.append(trial_id)
    oracle.end_order.append(trial_id)
    oracle._record_values(trial)
    oracle._save_trial(trial)
    oracle.save()
    numbers[trial_id] = record.number


def _read_numbers(project: Path) -> dict[str, int]:
    path = project / NUMBERS
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {str(k): int(v) for k, v in data.items()}


def _write_numbers(project: Path, numbers: dict[str, int]) -> None:
    project.mkdir(parents=True, exist_ok=True)
    write_json(project / NUMBERS, numbers)

