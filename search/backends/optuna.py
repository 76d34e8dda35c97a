"""Optuna backend (the embedded default): ask/tell over a file-based journal storage.

Ask/tell rather than ``study.optimize`` because we own the loop: a failed trial is told
FAIL and the loop goes on, an interrupted one is closed before the process exits, and the
run stops at a total that counts earlier sessions (``--resume``).
"""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from search.backends.base import Backend, TrialContext
from search.errors import TrialFailed, TrialPruned, UsageError
from search.hp import HyperParameters, ParamSpec, Value
from search.space import SpaceTrace

SAMPLERS = ("tpe", "random", "gp", "cmaes", "grid")
PRUNERS = ("none", "median", "hyperband", "successive-halving")
JOURNAL = "optuna.journal"

__all__ = ["JOURNAL", "PRUNERS", "SAMPLERS", "OptunaBackend", "OptunaHP"]


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
            raise UsageError(f"--storage {url!r} cannot be opened: {exc}") from exc
    return JournalStorage(JournalFileBackend(str(run_dir / JOURNAL)))


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


_COUNTED = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=done))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by the processes of one run (POSIX ``flock``)."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _claim(study: Any, run_dir: Path, n_trials: int) -> Any | None:
    """Ask for the next trial unless the run already has ``n_trials`` started or finished.

    Counting and asking happen under one lock, so parallel workers never overshoot. The
    lock is a file in the run directory: exact for the processes of one machine (``--jobs``);
    workers on several hosts sharing an RDB storage may overshoot by one trial per host.
    """
    from optuna.trial import TrialState

    with _locked(run_dir / ".claim.lock"):
        states = tuple(getattr(TrialState, name) for name in _COUNTED)
        if len(study.get_trials(deepcopy=False, states=states)) >= n_trials:
            return None
        return study.ask()


def spawn_workers(run_dir: Path, n: int) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """Start ``n`` worker processes on the run; their output goes to ``workers/*.log``."""
    logs = run_dir / "workers"
    logs.mkdir(exist_ok=True)
    out = []
    for i in range(1, n + 1):
        log = logs / f"worker_{i}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "search", "_worker", str(run_dir), "--index", str(i)],
                stdout=fh, stderr=subprocess.STDOUT,
            )
        out.append((proc, log))
    return out


def wait_workers(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> list[Path]:
    """Wait for the workers (interrupting them if the driver is interrupted); return the
    logs of those that failed."""
    failed = []
    try:
        for proc, log in workers:
            if proc.wait() != 0:
                failed.append(log)
    except BaseException:
        for proc, _ in workers:
            proc.send_signal(signal.SIGINT)
        for proc, _ in workers:
            proc.wait()
        raise
    return failed


class OptunaBackend(Backend):
    """Proposes parameters with an Optuna sampler, prunes after folds with its pruner."""

    name = "optuna"

    def __init__(
        self, *, study_name: str, sampler: str = "tpe", pruner: str = "none",
        storage: str | None = None, jobs: int = 1,
    ) -> None:
        self.jobs = jobs
        self.study_name = study_name
        self.sampler = sampler
        self.pruner = pruner
        self.storage = storage

    def optimize(self, ctx: TrialContext, *, n_trials: int, timeout: float | None,
                 worker: int = 0) -> None:
        """Run the ask/tell loop; worker 0 (the driver) also starts ``jobs - 1`` workers.

        Workers are processes of their own (``python -m search _worker``) on the same
        storage: each claims a trial under a file lock, so the run ends at exactly
        ``n_trials`` however many processes share it.
        """
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=self.study_name, storage=storage_for(ctx.store.root, self.storage),
            load_if_exists=True, direction=ctx.space.direction,
        )
        if worker == 0:
            self._close_stale(study, ctx)
            if not study.trials:
                kinds = {s.name: s.kind for s in ctx.trace.specs}
                defaults = {name: value for name, value in ctx.trace.defaults.items()
                            if kinds[name] != "fixed"}  # conditional params: not at default
                study.enqueue_trial(defaults, user_attrs={"default_point": True})
        # Reseed per session and per worker: a resumed run or a second process must not
        # replay the proposals of the first.
        study.sampler = make_sampler(self.sampler, seed=ctx.seed + len(study.trials)
                                     + 7919 * worker, trace=ctx.trace)
        study.pruner = make_pruner(self.pruner, folds=int(ctx.fold_of.max()) + 1)
        ctx.events.search_started(run_dir=ctx.store.root, total=n_trials,
                                  done=_finished(study), folds=int(ctx.fold_of.max()) + 1,
                                  metric=ctx.space.metric.name)
        workers = (spawn_workers(ctx.store.root, self.jobs - 1)
                   if worker == 0 and self.jobs > 1 else [])
        try:
            self._loop(study, ctx, n_trials=n_trials, timeout=timeout, worker=worker)
        finally:
            failed = wait_workers(workers)
            ctx.events.progress(_finished(study))
        for path in failed:
            ctx.events.message(f"a worker process failed; see {path}")

    def _loop(self, study: Any, ctx: TrialContext, *, n_trials: int, timeout: float | None,
              worker: int) -> None:
        from optuna.trial import TrialState

        start = time.monotonic()
        while True:
            if timeout is not None and time.monotonic() - start >= timeout:
                ctx.events.message(f"--timeout {timeout:g}s reached")
                return
            exhausted = getattr(study.sampler, "is_exhausted", None)
            if exhausted is not None and _finished(study) > 0 and exhausted(study):
                ctx.events.message(f"the grid is exhausted after {_finished(study)} trials")
                return
            trial = _claim(study, ctx.store.root, n_trials)
            if trial is None:
                return

            def report(fold: int, value: float, trial: Any = trial) -> None:
                trial.report(value, step=fold)
                if trial.should_prune():
                    raise TrialPruned(f"pruned after fold {fold}")

            try:
                result = ctx.execute(
                    trial.number, OptunaHP(trial), report=report,
                    is_default=bool(trial.user_attrs.get("default_point")), backend=self.name,
                    worker=worker,
                )
            except TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
            except TrialFailed:
                study.tell(trial, state=TrialState.FAIL)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            else:
                study.tell(trial, result.record.score)
            ctx.events.progress(_finished(study))

    @staticmethod
    def _close_stale(study: Any, ctx: TrialContext) -> None:
        """Trials left RUNNING by a killed process: tell FAIL, mark their records."""
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            try:
                record = ctx.store.read_trial(t.number)
            except Exception:
                continue
            if record.status == "running":
                record.status = "failed"
                record.error = "interrupted: the process ended before the trial finished"
                ctx.store.write_trial(record)
            ctx.events.message(f"trial {t.number} was interrupted earlier; marked failed")
