"""The backend seam: who proposes parameters and decides what to stop.

A backend is a small class with one method, :meth:`Backend.optimize`. It proposes parameters
(its sampler/searcher), decides what to prune (its pruner/scheduler) and chooses where the
trials execute (in the driver, in ``--jobs`` processes, on Ray workers). Everything else is
shared and lives in :class:`Driver`: trial numbers (the store's), the run's
:class:`~search.plan.RunPlan`, the one :class:`~search.writer.StoreWriter` every result goes
through, and the finished trials a backend must be told about (trial 0, the default point,
is always run by the driver before the backend starts, and earlier sessions' trials on
resume).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from search.errors import TrialFailed, TrialPruned, UsageError
from search.events import SearchEvents
from search.hp import FixedHP, HyperParameters, Value
from search.metrics import Direction
from search.plan import RunPlan, TrialSpec, execute, remember
from search.space import Space, SpaceTrace
from search.store import RunStore, TrialRecord
from search.trial import Dataset, Report, TrialResult
from search.writer import StoreWriter

__all__ = ["Backend", "Driver", "Option"]


@dataclass(frozen=True)
class Option:
    """One backend option (a CLI flag, stored in run.json under ``backend_options``).

    ``frozen`` options keep their value on ``--resume`` (the search's meaning depends on
    them); the others (resources, cluster address) may change between sessions.
    """

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    type: type = str
    frozen: bool = True
    secret_free: bool = True  # False: redact before storing (storage URLs with passwords)


@dataclass
class Driver:
    """What a backend gets from the run: trial numbers, the plan, the writer, the history."""

    plan: RunPlan
    space: Space
    trace: SpaceTrace
    data: Dataset
    writer: StoreWriter
    events: SearchEvents = field(default_factory=SearchEvents)
    jobs: int = 1
    worker: int = 0  # 0: the driver; > 0: a `search worker` process on a shared disk
    #: Parameters to try first, in order (partial dicts: the rest is proposed as usual).
    queued: list[dict[str, Value]] = field(default_factory=list)
    #: Consecutive failed trials that stop the run (0: never); see :meth:`stop_reason`.
    max_failures: int = 0
    #: Interrupted trials this session owns and has yet to continue (trial 0 excluded).
    interrupted: list[TrialRecord] = field(default_factory=list)
    _zero: TrialRecord | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        remember(self.plan, self.space, self.data)

    @property
    def store(self) -> RunStore:
        return self.writer.store

    @property
    def direction(self) -> Direction:
        return self.space.direction

    @property
    def n_folds(self) -> int:
        return self.plan.n_folds

    def finished(self) -> list[TrialRecord]:
        """Trials that ended (complete, pruned, failed), in trial-number order."""
        self.writer.refresh()
        return sorted((r for r in self.writer.records.values() if r.status != "running"),
                      key=lambda r: r.number)

    def done(self) -> int:
        """How many trials of the run ended (all processes counted)."""
        self.writer.refresh()
        return self.writer.finished_count()

    def spec(self, params: dict[str, Value] | None, *, backend_id: str | None = None,
             is_default: bool = False, worker: int | None = None) -> TrialSpec:
        """A new trial's description with the next store number (owned by this session)."""
        number = self.writer.allocate()
        return TrialSpec(number=number, params=params, backend_id=backend_id,
                         is_default=is_default, worker=self.worker if worker is None else worker,
                         keep_bar=self.writer.keep_bar(number))

    def trials_claimed(self) -> int:
        """Trials the run holds: ended, running anywhere, or interrupted (to be continued).

        This is what ``--trials`` counts, so a backend stops proposing at the total; count
        and allocate under one lock for exact totals across processes.
        """
        return self.store.count_trials()

    def take_interrupted(self, worker: int | None = None) -> TrialSpec | None:
        """The next interrupted trial to continue (same number and parameters, from its
        first unfinished fold), or None. Backends run these before proposing new ones."""
        if not self.interrupted:
            return None
        record = self.interrupted.pop(0)
        return TrialSpec(number=record.number, params=dict(record.params),
                         backend_id=record.backend_id, is_default=record.is_default,
                         worker=self.worker if worker is None else worker, resume=record)

    def stop_reason(self) -> str | None:
        """Why the run must stop now (``--max-failures`` failed trials in a row), or None."""
        w = self.writer
        if self.max_failures and w.consecutive_failures >= self.max_failures:
            reason, count = w.failure_reasons.most_common(1)[0]
            return (f"{w.consecutive_failures} trials failed in a row (--max-failures "
                    f"{self.max_failures}); the most common reason ({count}x): {reason}")
        return None

    def run_here(self, spec: TrialSpec, *, hp: HyperParameters | None = None,
                 report: Report | None = None) -> TrialResult:
        """Run a trial in this process; results go straight to the writer.

        Raises TrialPruned / TrialFailed like :func:`~search.trial.run_trial`.
        """
        return execute(self.plan, spec, sink=self.writer, report=report, hp=hp)

    def propose(self, hp: HyperParameters) -> dict[str, Value]:
        """Fix a define-by-run ``hp``'s values by building the space with it once.

        Samplers such as Optuna's learn the parameters only while ``build(hp)`` asks for
        them (conditionals are plain ``if``s). A trial that runs elsewhere needs them fixed
        up front, so the driver builds once (no training) and ships the values.

        Raises:
            TrialFailed: building fails for these values (the trial is then recorded failed).
        """
        import keras

        try:
            keras.backend.clear_session(free_memory=False)
            self.space.build(hp)
            self.space.fit_settings(hp)
            self.space.preprocessor(hp)
        except Exception as exc:
            raise TrialFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            keras.backend.clear_session(free_memory=False)
        return dict(hp.values)

    def record_failure(self, spec: TrialSpec, reason: str,
                       params: dict[str, Value] | None = None) -> TrialRecord:
        """Record a trial that failed before any fold ran (e.g. its build raised)."""
        import time

        record = TrialRecord(number=spec.number, status="failed",
                             params=dict(params or spec.params or {}),
                             n_folds=self.n_folds, seed=self.plan.seed,
                             backend=self.plan.backend, backend_id=spec.backend_id,
                             started=time.time(), finished=time.time(), seconds=0.0,
                             error=reason, is_default=spec.is_default, worker=spec.worker)
        self.writer.started(record)
        self.writer.finished(record)
        return record

    def collect_interrupted(self) -> list[TrialRecord]:
        """Own the trials an earlier session left ``running`` (Ctrl-C, kill -9, power
        loss) that no live process holds, to continue them; drop abandoned allocations.

        Only the driver does this, at the start of a session. A trial another live process
        is running (a second ``run --resume``, a ``search worker``) is left to it.
        """
        self.store.release_unused()
        taken = []
        for record in sorted(self.writer.records.values(), key=lambda r: r.number):
            if record.status != "running" or not self.writer.claim(record.number):
                continue
            taken.append(record)
            self.events.message(
                f"trial {record.number} was interrupted after {len(record.folds)} of "
                f"{self.n_folds} folds; continuing it from fold "
                f"{_first_missing(record, self.n_folds)}")
        self.interrupted = [r for r in taken if r.number != 0]
        self._zero = next((r for r in taken if r.number == 0), None)
        return taken

    def resume_here(self) -> None:
        """Continue every interrupted trial in this process (for backends that do not take
        them with :meth:`take_interrupted`); each is then an ended trial they are told of."""
        while (spec := self.take_interrupted()) is not None:
            try:
                self.run_here(spec)
            except (TrialFailed, TrialPruned):
                pass
            finally:
                self.events.progress(self.done())

    def run_default(self) -> TrialRecord | None:
        """Run trial 0, the space's default point, unless the run already has it (an
        interrupted trial 0 is continued from its first unfinished fold)."""
        zero = self.writer.records.get(0)
        resume = self._zero
        if zero is not None and resume is None:
            return None  # ended, or another live process is running it
        if zero is None:
            if not self.store.claim_number(0) or not self.writer.claim(0):
                return None  # another process took number 0 first
        spec = TrialSpec(number=0, params=dict(self.trace.defaults), is_default=True,
                         resume=resume)
        self._zero = None
        try:
            return self.run_here(spec, hp=FixedHP(self.trace.defaults)).record
        except TrialFailed:
            return self.writer.records.get(spec.number)
        finally:
            self.events.progress(self.done())


def _first_missing(record: TrialRecord, k: int) -> int:
    done = {f.fold for f in record.folds}
    return next((i for i in range(k) if i not in done), k)


class Backend(ABC):
    """Proposes parameters and stops trials until the run has ``n_trials`` finished trials.

    Subclasses declare ``name`` and their ``options`` (CLI flags, stored in run.json), take
    them as keyword arguments, and implement :meth:`optimize`.
    """

    name: ClassVar[str]
    options: ClassVar[dict[str, Option]] = {}
    #: Whether :meth:`optimize` continues interrupted trials itself (with
    #: :meth:`Driver.take_interrupted`, e.g. on its parallel workers). If not, the driver
    #: continues them in-process before :meth:`optimize` starts.
    resumes_interrupted: ClassVar[bool] = False
    #: The extra to install for this backend, for the "not installed" message.
    extra: ClassVar[str | None] = None

    @classmethod
    def check_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        """``given`` completed with defaults; unknown names or bad choices are usage errors."""
        unknown = given.keys() - cls.options.keys()
        if unknown:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(unknown))
            raise UsageError(f"{flags} is not an option of --backend {cls.name} (its options: "
                             f"{', '.join('--' + k.replace('_', '-') for k in cls.options)})")
        out = {k: given.get(k, o.default) for k, o in cls.options.items()}
        for key, opt in cls.options.items():
            value = out[key]
            if opt.choices is not None and value not in opt.choices:
                raise UsageError(f"--{key.replace('_', '-')} must be one of "
                                 f"{', '.join(map(str, opt.choices))}; got {value!r}")
            if opt.type in (int, float) and value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                        not math.isfinite(value) or value < 0:
                    raise UsageError(f"--{key.replace('_', '-')} must be a number >= 0; "
                                     f"got {value!r}")
        return out

    def prepare(self, driver: Driver) -> None:  # noqa: B027 - optional hook
        """Checks that need the space (e.g. a grid needs discrete parameters), before any
        trial runs; raise UsageError."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`prepare` acquired (a runtime, a connection); always called."""

    @abstractmethod
    def optimize(self, driver: Driver, *, n_trials: int, timeout: float | None) -> None:
        """Run trials until the store holds ``n_trials`` ended trials (trial 0 and earlier
        sessions counted) or ``timeout`` seconds have passed in this session.

        Tell the proposer about :meth:`Driver.finished` trials it has not seen (trial 0 at
        least), take store numbers from :meth:`Driver.spec`, send every result to
        ``driver.writer`` (directly, or via the executor's channel to the driver).
        """
