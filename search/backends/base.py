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

from search.errors import TrialFailed, UsageError
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
        """A new trial's description with the next store number."""
        return TrialSpec(number=self.store.allocate(), params=params, backend_id=backend_id,
                         is_default=is_default,
                         worker=self.worker if worker is None else worker)

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

    def close_stale(self) -> list[int]:
        """Records left ``running`` by a killed or interrupted session: mark them failed.

        Trial 0 is left to :meth:`run_default`, which runs it again (the baseline must not
        be lost to a kill). Only the driver does this, at the start of a session.
        """
        closed = []
        for record in list(self.writer.records.values()):
            if record.status != "running" or record.number == 0:
                continue
            record.status = "failed"
            record.error = "interrupted: the process ended before the trial finished"
            self.writer.finished(record)
            self.events.message(f"trial {record.number} was interrupted earlier; marked failed")
            closed.append(record.number)
        return closed

    def run_default(self) -> TrialRecord | None:
        """Run trial 0, the space's default point, unless the run already has it."""
        zero = self.writer.records.get(0)
        if zero is not None and zero.status != "running":
            return None
        spec = TrialSpec(number=0 if zero is not None else self.store.allocate(),
                         params=dict(self.trace.defaults), is_default=True)
        try:
            return self.run_here(spec, hp=FixedHP(self.trace.defaults)).record
        except TrialFailed:
            return self.writer.records.get(spec.number)
        finally:
            self.events.progress(self.done())


class Backend(ABC):
    """Proposes parameters and stops trials until the run has ``n_trials`` finished trials.

    Subclasses declare ``name`` and their ``options`` (CLI flags, stored in run.json), take
    them as keyword arguments, and implement :meth:`optimize`.
    """

    name: ClassVar[str]
    options: ClassVar[dict[str, Option]] = {}
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
