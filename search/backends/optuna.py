"""Optuna backend (the embedded default): ask/tell over a file-based journal storage.

Ask/tell rather than ``study.optimize`` because we own the loop: a failed trial is told
FAIL and the loop goes on, an interrupted one is closed before the process exits, and the
run stops at a total that counts earlier sessions (``--resume``). Trials the study has not
seen (trial 0, run by the driver; trials of an older store) are told with ``add_trial``.

Where trials run: in this process (``--jobs 1``: Optuna's define-by-run ``hp`` is passed
live), or in ``--jobs`` child processes (:mod:`search.slots`: the driver fixes each trial's
parameters by building once, ships them, and answers the child's prune questions). Other
hosts join with ``python -m search worker RUN`` on a shared RDB storage (``--storage
postgresql://…``) and a run directory they can reach.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from search.backends.base import Backend, Driver, Option
from search.errors import TrialFailed, TrialPruned, UsageError
from search.hp import HyperParameters, ParamSpec, Value
from search.redact import redact_text, redact_url
from search.space import SpaceTrace
from search.store import TrialRecord

SAMPLERS = ("tpe", "random", "gp", "cmaes", "grid")
PRUNERS = ("none", "median", "hyperband", "successive-halving")
JOURNAL = "optuna.journal"

__all__ = ["JOURNAL", "PRUNERS", "SAMPLERS", "OptunaBackend", "OptunaHP", "distribution"]


class OptunaHP(HyperParameters):
    """``hp`` whose values come from an Optuna trial (define-by-run)."""

    def __init__(self, trial: Any) -> None:
        super().__init__()
        self.trial = trial

    def _value(self, spec: ParamSpec) -> Value:
        t = self.trial
        log = spec.sampling != "linear"
        if spec.kind == "int":
            assert spec.low is not None and spec.high is not None
            int_step = 1 if log or spec.step is None else int(spec.step)
            return int(t.suggest_int(spec.name, int(spec.low), int(spec.high), step=int_step,
                                     log=log))
        if spec.kind == "float":
            assert spec.low is not None and spec.high is not None
            float_step = None if log else spec.step
            return float(t.suggest_float(spec.name, spec.low, spec.high, step=float_step,
                                         log=log))
        value: Value = t.suggest_categorical(spec.name, list(spec.values))
        return value


def storage_for(run_dir: Path, url: str | None) -> Any:
    """The run's Optuna storage: a journal file inside the run unless a URL is given.

    A journal file (not SQLite) because Optuna recommends it for several worker processes
    on one machine, and it needs no server.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if url:
        try:
            return optuna.storages.get_storage(url)
        except Exception as exc:
            password = _password(url)
            raise UsageError(
                f"--storage {redact_url(url)} cannot be opened: "
                f"{redact_text(str(exc), [password] if password else [])}"
            ) from None
    return JournalStorage(JournalFileBackend(str(run_dir / JOURNAL)))


def _password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        raw = urlsplit(url).password
    except ValueError:
        return None
    return unquote(raw) if raw else None


def distribution(spec: ParamSpec) -> Any:
    """The Optuna distribution that :class:`OptunaHP` asks for ``spec`` (exactly the same,
    so trials told with ``add_trial`` share the sampler's history)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    log = spec.sampling != "linear"
    assert spec.kind != "fixed"
    if spec.kind == "int":
        assert spec.low is not None and spec.high is not None
        step = 1 if log or spec.step is None else int(spec.step)
        return IntDistribution(int(spec.low), int(spec.high), log=log, step=step)
    if spec.kind == "float":
        assert spec.low is not None and spec.high is not None
        return FloatDistribution(spec.low, spec.high, log=log, step=None if log else spec.step)
    return CategoricalDistribution(list(spec.values))


def frozen_trial(record: TrialRecord, trace: SpaceTrace) -> Any:
    """A finished store record as an Optuna trial to ``add_trial`` (its fold running means as
    intermediate values, so pruners compare against it too)."""
    import numpy as np
    import optuna
    from optuna.trial import TrialState

    specs = {s.name: s for s in trace.specs if s.kind != "fixed"}
    params = {k: v for k, v in record.params.items() if k in specs and
              specs[k].contains(v)}
    dists = {k: distribution(specs[k]) for k in params}
    scores = record.fold_scores
    inter = {i: float(np.mean(scores[: i + 1])) for i in range(len(scores))}
    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(
        record.status, TrialState.FAIL)
    value = record.score if state == TrialState.COMPLETE else None
    return optuna.trial.create_trial(
        params=params, distributions=dists, value=value, state=state,
        intermediate_values=inter if state != TrialState.FAIL else None,
        user_attrs={"store_number": record.number, "default_point": record.is_default},
    )


def make_sampler(name: str, *, seed: int, trace: SpaceTrace) -> Any:
    """Build an Optuna sampler by CLI name, with an install hint for optional needs."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        _require("torch", "--sampler gp", "pip install torch")
        return optuna.samplers.GPSampler(seed=seed)
    if name == "cmaes":
        _require("cmaes", "--sampler cmaes", "pip install cmaes")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "grid":
        searched = [s for s in trace.specs if s.kind != "fixed"]
        continuous = [s.name for s in searched if not s.is_discrete()]
        if continuous:
            raise UsageError(
                f"--sampler grid needs every parameter discrete; continuous: "
                f"{', '.join(continuous)} (give them a step, or use --sampler tpe)"
            )
        return _grid_sampler_class()({s.name: s.grid() for s in searched}, seed=seed)
    raise UsageError(f"--sampler must be one of {', '.join(SAMPLERS)}; got {name!r}")


def _grid_sampler_class() -> type:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler minus its ``study.stop()`` call, which only works inside
        ``study.optimize``; our ask/tell loop checks ``is_exhausted`` itself."""

        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            return None

    return GridSampler


def make_pruner(name: str, *, folds: int) -> Any:
    """Build an Optuna pruner by CLI name; its steps are folds."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=folds)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    raise UsageError(f"--pruner must be one of {', '.join(PRUNERS)}; got {name!r}")


def _require(module: str, flag: str, hint: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"{flag} needs the {module!r} package; install it with `{hint}`")



#: User attribute of an Optuna trial a killed session left RUNNING: told FAIL, it does not
#: count (its store trial is continued, then told to the study as a finished trial).
STALE = "stale"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by the processes of one run (POSIX ``flock``)."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class OptunaBackend(Backend):
    """Proposes parameters with an Optuna sampler, prunes after folds with its pruner."""

    name = "optuna"
    resumes_interrupted = True
    options: ClassVar[dict[str, Option]] = {
        "sampler": Option("tpe", "Optuna sampler.", choices=SAMPLERS),
        "pruner": Option("none", "Prune trials after a fold.", choices=PRUNERS),
        "storage": Option(None, "Optuna storage URL (default: a journal file inside the run "
                          "directory); postgresql://… lets `search worker` on other hosts "
                          "join. The password is never stored.", secret_free=False),
    }

    def __init__(self, *, study_name: str, sampler: str = "tpe", pruner: str = "none",
                 storage: str | None = None) -> None:
        self.study_name = study_name
        self.sampler = sampler
        self.pruner = pruner
        self.storage = storage
        self._lock = threading.RLock()

    def prepare(self, driver: Driver) -> None:
        """Fail before any trial: a grid over continuous parameters, a storage URL that
        cannot be opened (wrong password, no server)."""
        make_sampler(self.sampler, seed=0, trace=driver.trace)
        if self.storage:
            storage_for(driver.store.root, self.storage)

    def open_study(self, driver: Driver) -> Any:
        """Create or load the run's study, with the sampler reseeded for this process."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=self.study_name, storage=storage_for(driver.store.root, self.storage),
            load_if_exists=True, direction=driver.direction,
        )
        # Reseed per session and per worker: a resumed run or a second process must not
        # replay the proposals of the first.
        seed = (driver.plan.seed + len(study.trials) + 7919 * driver.worker) % 2**31
        study.sampler = make_sampler(self.sampler, seed=seed, trace=driver.trace)
        study.pruner = make_pruner(self.pruner, folds=driver.n_folds)
        return study

    def optimize(self, driver: Driver, *, n_trials: int, timeout: float | None) -> None:
        """The ask/tell loop, in this process or over ``driver.jobs`` child processes."""
        study = self.open_study(driver)
        if driver.worker == 0:  # once per session, by the driver only (workers share the study)
            self.close_stale(study, driver)
            for params in driver.queued:
                study.enqueue_trial(params)
            self._sync(study, driver)
        driver.events.search_started(run_dir=driver.store.root, total=n_trials,
                                     done=driver.done(), folds=driver.n_folds,
                                     metric=driver.space.metric.name)
        deadline = None if timeout is None else time.monotonic() + timeout
        if driver.jobs <= 1:
            self._loop(study, driver, n_trials=n_trials, deadline=deadline, slot=None)
            return
        from search.slots import ProcessSlot

        logs = driver.store.root / "workers"
        logs.mkdir(exist_ok=True)
        slots = [ProcessSlot(driver.plan, i + 1, log=logs / f"slot_{i + 1}.log")
                 for i in range(driver.jobs)]
        errors: list[BaseException] = []

        def run(slot: ProcessSlot) -> None:
            try:
                self._loop(study, driver, n_trials=n_trials, deadline=deadline, slot=slot)
            except BaseException as exc:  # surfaced in the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in slots]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.5)
        except BaseException:
            for s in slots:
                s.close(kill=True)
            for t in threads:  # let them record their trials as interrupted
                t.join(timeout=10)
            raise
        for s in slots:
            s.close()
        if errors:
            raise errors[0]

    def _sync(self, study: Any, driver: Driver) -> None:
        """Tell the study every finished store trial it has not seen (trial 0 first; a
        trial continued after an interruption, whose first Optuna trial went stale)."""
        with self._lock:
            known = {t.user_attrs.get("store_number") for t in study.get_trials(deepcopy=False)
                     if not t.user_attrs.get(STALE)}
            for record in driver.finished():
                if record.number not in known:
                    study.add_trial(frozen_trial(record, driver.trace))

    @contextmanager
    def _claiming(self, driver: Driver) -> Iterator[None]:
        """The claim locks: this process's thread lock, then the run's file lock."""
        with self._lock, _locked(driver.store.root / ".claim.lock"):
            yield

    def _claim(self, study: Any, driver: Driver, n_trials: int, worker: int | None
               ) -> tuple[Any, Any] | None:
        """The next trial to run: an interrupted one to continue (no Optuna trial: it is
        told to the study when it ends), else a new one asked from the study, unless the
        run already has ``n_trials`` trials.

        Counting (the store's trial numbers) and allocating happen under one lock (a thread
        lock and a file lock on the run directory), so parallel processes never overshoot;
        on several hosts the file lock needs a filesystem with working ``flock`` (NFSv4).
        """
        with self._claiming(driver):
            resumed = driver.take_interrupted(worker)
            if resumed is not None:
                return None, resumed
            if driver.trials_claimed() >= n_trials:
                return None
            trial = study.ask()
            spec = driver.spec(None, backend_id=str(trial.number), worker=worker)
            trial.set_user_attr("store_number", spec.number)
            return trial, spec

    def _loop(self, study: Any, driver: Driver, *, n_trials: int, deadline: float | None,
              slot: Any) -> None:
        from optuna.trial import TrialState

        while True:
            if deadline is not None and time.monotonic() >= deadline:
                driver.events.message("--timeout reached")
                return
            if driver.stop_reason() is not None:
                return
            exhausted = getattr(study.sampler, "is_exhausted", None)
            if exhausted is not None and exhausted(study):
                driver.events.message(f"the grid is exhausted after {driver.done()} trials")
                return
            claimed = self._claim(study, driver, n_trials,
                                  slot.index if slot is not None else None)
            if claimed is None:
                return
            trial, spec = claimed
            if trial is None:  # an interrupted trial, continued with its own parameters
                try:
                    if slot is None:
                        driver.run_here(spec)
                    else:
                        slot.run(spec, driver.writer, None)
                except (TrialPruned, TrialFailed):
                    pass
                finally:
                    self._sync(study, driver)
                    driver.events.progress(driver.done())
                continue

            def report(fold: int, value: float, trial: Any = trial) -> None:
                with self._lock:
                    trial.report(value, step=fold)
                    prune = trial.should_prune()
                if prune:
                    raise TrialPruned(f"pruned after fold {fold}")

            try:
                if slot is None:
                    record = driver.run_here(spec, hp=OptunaHP(trial), report=report).record
                else:
                    with self._lock:  # building to propose uses Keras' global session
                        hp = OptunaHP(trial)
                        try:
                            params = driver.propose(hp)
                        except TrialFailed as exc:
                            driver.record_failure(spec, str(exc), dict(hp.values))
                            raise
                    spec = _with_params(spec, params)
                    record = slot.run(spec, driver.writer, report)
            except TrialPruned:
                with self._lock:
                    study.tell(trial, state=TrialState.PRUNED)
            except TrialFailed:
                with self._lock:
                    study.tell(trial, state=TrialState.FAIL)
            except KeyboardInterrupt:
                # the store trial stays interrupted (continued next session); the Optuna
                # trial is stale and does not count
                with self._lock:
                    trial.set_user_attr(STALE, True)
                    study.tell(trial, state=TrialState.FAIL)
                raise
            except BaseException:
                with self._lock:
                    study.tell(trial, state=TrialState.FAIL)
                raise
            else:
                with self._lock:
                    study.tell(trial, record.score)
            driver.events.progress(driver.done())

    def close_stale(self, study: Any, driver: Driver) -> None:
        """Optuna trials a killed session left RUNNING: tell each what its store trial
        became. Ended in the store (killed after the record, before ``tell``): its outcome.
        Interrupted (continued by this session) or never started: FAIL, marked stale so it
        does not count (Optuna's ``RetryFailedTrialCallback`` pattern: the parameters run
        again: the store trial is continued, or, never started, its enqueued parameters
        are enqueued again). Held by a live process (another host's worker, a second session): left.

        Why under the claim locks: a worker already searching this run (another host, or
        one started before this session's driver got here) asks its Optuna trial and tags
        it with its store number under them (:meth:`_claim`). Read between those two
        steps, its live trial is RUNNING with no store number, which looks exactly like a
        trial killed before its tag, and was told FAIL: its next ``report`` then failed
        with Optuna's ``UpdateFinishedTrialError`` (seen as a flaky
        ``test_worker_on_another_host_joins_the_study``).
        """
        from optuna.trial import TrialState

        with self._claiming(driver):
            records = driver.writer.records
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                number = t.user_attrs.get("store_number")
                record = records.get(number) if number is not None else None
                if record is not None and record.ended:
                    if record.status == "complete":
                        study.tell(t.number, record.score, skip_if_finished=True)
                    else:
                        state = (TrialState.PRUNED if record.status == "pruned"
                                 else TrialState.FAIL)
                        study.tell(t.number, state=state, skip_if_finished=True)
                    continue
                if number is not None and driver.store.trial_alive(number) and not any(
                        r.number == number for r in driver.interrupted):
                    continue
                study._storage.set_trial_user_attr(t._trial_id, STALE, True)
                study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                fixed = t.system_attrs.get("fixed_params")
                if record is None and fixed:  # killed before its first build: ask it again
                    study.enqueue_trial(fixed)


def _with_params(spec: Any, params: dict[str, Value]) -> Any:
    from dataclasses import replace

    return replace(spec, params=params)
