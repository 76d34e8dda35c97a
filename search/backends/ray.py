"""Ray Tune backend: its searchers and schedulers, trial resources, local or cluster runtimes.

How a trial's results reach the store without a shared disk: the trainable runs the shared
trial code (:func:`search.plan.execute`) with a sink that puts each fold's plain result
(record, OOF rows, test predictions, model bytes) into a Ray queue actor pinned to the
driver's node; the driver drains that queue into its :class:`~search.writer.StoreWriter`
from a Tune callback and from the searcher. Ray's own checkpoints (which need NFS or cloud
storage on multi-node clusters, ray-project/ray#37177) are not used: resume reads our store
and tells the searcher every finished trial, instead of ``Tuner.restore``.

Proposals: :class:`StoreSearcher`, a Ray ``Searcher`` over an Optuna sampler (TPE or random),
define-by-run from the space (the driver builds the space once with Optuna's ``hp`` to fix
a trial's parameters, conditionals included), which also hands out the store's trial
numbers. Stopping: FIFO, or ASHA on fold-level reports (``training_iteration`` = folds done).
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import tempfile
import threading
import time
from typing import Any, ClassVar

from ray import tune
from ray.tune.search import Searcher

from search.backends.base import Backend, Driver, Option
from search.errors import TrialFailed, TrialPruned, UsageError
from search.plan import RunPlan, TrialSpec, execute
from search.results import FoldResult
from search.store import TrialRecord

__all__ = ["RayBackend", "StoreSearcher"]

ALGORITHMS = ("tpe", "random")
SCHEDULERS = ("fifo", "asha")
#: The metric our trainable reports: the running mean of the fold scores.
METRIC = "score"


# -- worker side ---------------------------------------------------------------------------
class _QueueSink:
    """A trial's sink on a Ray worker: puts its results into the driver-node queue."""

    def __init__(self, queue: Any, node: str) -> None:
        self.queue = queue
        self.node = node

    def started(self, record: TrialRecord) -> None:
        record.node = self.node
        self.queue.put(("started", record))

    def fold(self, result: FoldResult) -> None:
        result.record.node = self.node
        self.queue.put(("fold", result))

    def finished(self, record: TrialRecord) -> None:
        record.node = self.node
        self.queue.put(("finished", record))


def trainable(config: dict[str, Any], plan: RunPlan, queue: Any) -> None:
    """Ray Tune function trainable: one K-fold trial from ``config`` = number + params.

    Gets no path into the run directory: results leave through ``queue`` (the object
    store), and a fold-level ``tune.report`` lets the scheduler stop the trial.
    """
    import ray

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        trial_id = tune.get_context().get_trial_id()
    except Exception:  # outside a Tune session (direct calls in tests)
        trial_id = None
    spec = TrialSpec(number=int(config["number"]), params=dict(config["params"]),
                     backend_id=trial_id, worker=os.getpid(), resume=config.get("resume"),
                     keep_bar=config.get("keep_bar"))
    sink = _QueueSink(queue, ray.get_runtime_context().get_node_id())

    def report(fold: int, value: float) -> None:
        tune.report({METRIC: value, "folds_done": fold + 1})

    try:
        result = execute(plan, spec, sink=sink, report=report)
    except (TrialFailed, TrialPruned):
        return  # recorded by the sink; raising would make Ray retry a deterministic failure
    tune.report({METRIC: result.record.score, "folds_done": plan.n_folds})


# -- driver side ---------------------------------------------------------------------------
class _Inbox:
    """Drains the queue actor into the writer; closes trials Ray ended without a word."""

    def __init__(self, driver: Driver, queue: Any) -> None:
        self.driver = driver
        self.queue = queue
        self.closed: set[int] = set()
        self._lock = threading.Lock()

    def drain(self) -> None:
        from ray.util.queue import Empty

        with self._lock:
            while True:
                n = self.queue.qsize()
                if not n:
                    return
                try:
                    items = self.queue.get_nowait_batch(n)
                except Empty:
                    return
                for kind, payload in items:
                    self._deliver(kind, payload)

    def _deliver(self, kind: str, payload: Any) -> None:
        writer = self.driver.writer
        record = payload.record if kind == "fold" else payload
        if record.number in self.closed:
            return  # late words of a trial Ray already stopped
        if kind == "started":
            writer.started(record)
        elif kind == "fold":
            writer.fold(payload)
        else:
            self.closed.add(record.number)
            writer.finished(record)

    def close(self, number: int, status: str, reason: str) -> TrialRecord | None:
        """End a trial whose worker said nothing more (stopped by the scheduler, crashed)."""
        self.drain()
        if number in self.closed:
            return self.driver.writer.records.get(number)
        record = self.driver.writer.records.get(number)
        self.closed.add(number)
        if record is None:
            return None
        record.status = status  # type: ignore[assignment]
        record.error = reason
        record.finished = time.time()
        record.seconds = record.finished - record.started
        scores = record.fold_scores
        record.score = sum(scores) / len(scores) if scores else None
        self.driver.writer.finished(record)
        return record


class StoreSearcher(Searcher):
    """A Ray ``Searcher`` proposing with an Optuna sampler, define-by-run from our space.

    Also the bridge to the store: it hands out store trial numbers with each config, learns
    finished trials from the store (trial 0, earlier sessions) and, when Tune says a trial
    ended, reads its outcome from the store (complete / pruned / failed) and tells Optuna.
    """

    def __init__(self, driver: Driver, inbox: _Inbox, *, algorithm: str, seed: int,
                 scheduler: str) -> None:
        import optuna

        mode = "min" if driver.direction == "minimize" else "max"
        super().__init__(metric=METRIC, mode=mode)
        self.driver = driver
        self.inbox = inbox
        self.scheduler = scheduler
        sampler = (optuna.samplers.TPESampler(seed=seed) if algorithm == "tpe"
                   else optuna.samplers.RandomSampler(seed=seed))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction=driver.space.direction, sampler=sampler)
        self.trials: dict[str, Any] = {}
        self.numbers: dict[str, int] = {}

    # Tune pickles its searcher and callbacks for ``Tuner.restore``, which this project does
    # not use (resume reads the store): the driver-side state stays out of the pickle.
    def __getstate__(self) -> dict[str, Any]:
        return {}

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        return None

    def tell_finished(self, records: list[TrialRecord]) -> None:
        """Finished store trials as evaluated points (Ray's ``add_evaluated_point``)."""
        from search.backends.optuna import frozen_trial

        for record in records:
            self.study.add_trial(frozen_trial(record, self.driver.trace))

    def add_evaluated_point(self, parameters: dict[str, Any], value: float,
                            error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        record = TrialRecord(number=-1, status="failed" if error else
                             "pruned" if pruned else "complete", params=dict(parameters),
                             score=value)
        self.tell_finished([record])

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any],
                              **spec: Any) -> bool:
        return True  # the space comes from the space file, not Tune's param_space

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        from search.backends.optuna import OptunaHP

        if self.driver.stop_reason() is not None:
            return Searcher.FINISHED  # type: ignore[return-value]
        resumed = self.driver.take_interrupted()
        if resumed is not None:  # continued from its first unfinished fold; told when it ends
            self.trials[trial_id] = None
            self.numbers[trial_id] = resumed.number
            return {"number": resumed.number, "params": resumed.params,
                    "resume": resumed.resume}
        trial = self.study.ask()
        hp = OptunaHP(trial)
        try:
            params = self.driver.propose(hp)
        except TrialFailed:
            params = dict(hp.values)  # the trial fails in the worker the same way: recorded
        number = self.driver.writer.allocate()
        self.trials[trial_id] = trial
        self.numbers[trial_id] = number
        return {"number": number, "params": params,
                "keep_bar": self.driver.writer.keep_bar(number)}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        from optuna.trial import TrialState

        self.inbox.drain()
        if trial_id not in self.trials:
            return
        trial, number = self.trials.pop(trial_id), self.numbers.get(trial_id)
        if number is None:
            return
        record = self.driver.writer.records.get(number)
        if record is None or record.status == "running":
            if error:
                record = self.inbox.close(number, "failed", "the Ray worker running this "
                                          "trial failed (after FailureConfig's retries); see "
                                          "the run's ray/ directory")
            else:
                done = len(record.folds) if record is not None else 0
                record = self.inbox.close(number, "pruned", f"stopped by the {self.scheduler} "
                                          f"scheduler after fold {max(done - 1, 0)}")
        if trial is None:  # a continued trial: the study learns it as a finished one
            if record is not None and record.ended:
                self.tell_finished([record])
        elif record is None:
            self.study.tell(trial, state=TrialState.FAIL)
        elif record.status == "complete":
            self.study.tell(trial, record.score)
        elif record.status == "pruned":
            for i in range(len(record.fold_scores)):
                trial.report(sum(record.fold_scores[: i + 1]) / (i + 1), step=i)
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        self.driver.events.progress(self.driver.done())


class _Drain(tune.Callback):
    """Writes results into the store as they arrive (progress bar included)."""

    def __init__(self, inbox: _Inbox) -> None:
        self.inbox: _Inbox | None = inbox

    def __getstate__(self) -> dict[str, Any]:
        return {"inbox": None}  # see StoreSearcher.__getstate__

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.inbox is not None:
            self.inbox.drain()

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:
        if self.inbox is not None:
            self.inbox.drain()


class RayBackend(Backend):
    """Ray Tune: searchers (TPE, random), schedulers (FIFO, ASHA), per-trial resources."""

    name = "ray"
    resumes_interrupted = True
    extra = "ray"
    options: ClassVar[dict[str, Option]] = {
        "algorithm": Option("tpe", "Searcher.", choices=ALGORITHMS),
        "scheduler": Option("fifo", "Trial scheduler (asha stops trials after a fold).",
                            choices=SCHEDULERS),
        "address": Option(None, "Ray cluster address ('auto': this node's cluster); default "
                          "a local runtime.", frozen=False),
        "cpus_per_trial": Option(1.0, "CPUs per trial.", type=float, frozen=False),
        "gpus_per_trial": Option(0.0, "GPUs per trial (fractions share a GPU).", type=float,
                                 frozen=False),
        "worker_retries": Option(2, "Retries of a trial whose Ray worker crashed (Ray's "
                                 "FailureConfig max_failures).", type=int, frozen=False),
    }

    def __init__(self, *, study_name: str, algorithm: str = "tpe", scheduler: str = "fifo",
                 address: str | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0, worker_retries: int = 2) -> None:
        self.study_name = study_name
        self.algorithm = algorithm
        self.scheduler = scheduler
        self.address = address
        self.cpus_per_trial = float(cpus_per_trial)
        self.gpus_per_trial = float(gpus_per_trial)
        self.worker_retries = int(worker_retries)
        self._started: str | None = None  # see _init

    def prepare(self, driver: Driver) -> None:
        """Check the flags and start (or join) Ray before the run directory is made: a
        cluster that cannot be reached is a usage error, not a failed run."""
        if driver.plan.tensorboard_dir is not None:
            raise UsageError("--tensorboard writes into the run directory, which Ray workers "
                             "on other machines cannot reach; drop it with --backend ray")
        if self.cpus_per_trial <= 0 and self.gpus_per_trial <= 0:
            raise UsageError("--cpus-per-trial and --gpus-per-trial cannot both be 0")
        try:
            self._started = self._init(driver)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"--address {self.address}" if self.address else "a local Ray runtime"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"{where} could not be started or reached: {first}. Start a "
                             "cluster with `ray start --head` (then --address auto), or drop "
                             "--address for a local runtime") from None

    def close(self) -> None:
        """Shut down the runtime this backend started (a caller's own runtime stays)."""
        import ray

        started, self._started = self._started, None
        if started is not None:
            ray.shutdown()
            if started:
                shutil.rmtree(started, ignore_errors=True)

    def _init(self, driver: Driver) -> str | None:
        """Start a local runtime or join ``address``.

        Returns None if Ray was already running in this process (the caller's runtime: left
        alone), else the temporary directory this call made ("" if none).
        """
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if ray.is_initialized():
            return None
        if self.address:
            _reachable(self.address)
            ray.init(address=self.address, log_to_driver=False,
                     logging_level=logging.ERROR)
            return ""
        tmp = tempfile.mkdtemp(prefix="search-ray-")  # short: Ray's socket paths are limited
        ray.init(num_cpus=max(driver.jobs, int(self.cpus_per_trial + 0.999)),
                 include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 _temp_dir=tmp)
        return tmp

    def optimize(self, driver: Driver, *, n_trials: int, timeout: float | None) -> None:
        remaining = n_trials - driver.done()
        driver.events.search_started(run_dir=driver.store.root, total=n_trials,
                                     done=driver.done(), folds=driver.n_folds,
                                     metric=driver.space.metric.name)
        if remaining <= 0:
            return
        import ray
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # A failed trial returns without a score (raising would make Ray retry it); our
        # searcher reads its outcome from the store. Tune's own console table: off.
        os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
        # Ctrl-C must stop the run as on every backend (Tune's own handler ends the run
        # quietly and returns, which would look like a finished search).
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        queue = None
        inbox: _Inbox | None = None
        try:
            here = ray.get_runtime_context().get_node_id()
            queue = Queue(actor_options={"num_cpus": 0, "scheduling_strategy":
                                         NodeAffinitySchedulingStrategy(here, soft=False)})
            inbox = _Inbox(driver, queue)
            searcher = StoreSearcher(driver, inbox, algorithm=self.algorithm,
                                     seed=driver.plan.seed + driver.done(),
                                     scheduler=self.scheduler)
            searcher.tell_finished(driver.finished())
            for params in driver.queued:
                searcher.study.enqueue_trial(params)
            mode = "min" if driver.direction == "minimize" else "max"
            scheduler: Any
            if self.scheduler == "asha":
                scheduler = tune.schedulers.ASHAScheduler(
                    time_attr="training_iteration", max_t=driver.n_folds, grace_period=1,
                    reduction_factor=2)
            else:
                scheduler = tune.schedulers.FIFOScheduler()
            threads = max(1, int(self.cpus_per_trial))
            plan = _replace_plan(driver.plan, threads=threads if driver.plan.threads == 0
                                 else driver.plan.threads)
            fn = tune.with_resources(tune.with_parameters(trainable, plan=plan, queue=queue),
                                     {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial})
            tuner = tune.Tuner(
                fn,
                tune_config=tune.TuneConfig(
                    search_alg=searcher, scheduler=scheduler, num_samples=remaining,
                    metric=METRIC, mode=mode, reuse_actors=True, time_budget_s=timeout),
                run_config=tune.RunConfig(
                    name=self.study_name, storage_path=str(driver.store.root / "ray"),
                    failure_config=tune.FailureConfig(max_failures=self.worker_retries),
                    callbacks=[_Drain(inbox)], verbose=0,
                    checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False)),
            )
            saved_print = builtins.print
            try:
                tuner.fit()
            finally:
                builtins.print = saved_print  # Tune's tqdm_ray patches it and leaves it
            inbox.drain()
            for trial_id, number in searcher.numbers.items():
                if trial_id in searcher.trials:  # Tune ended it without telling the searcher
                    inbox.close(number, "failed", "the Ray trial ended without a result")
        finally:
            if inbox is not None:
                try:
                    inbox.drain()  # keep every fold that reached the queue
                except Exception:
                    pass
            if queue is not None:
                try:
                    queue.shutdown()
                except Exception:
                    pass
            driver.store.release_unused()
        driver.events.progress(driver.done())


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nobody listens on (``ray.init`` retries for minutes)."""
    import socket

    if "://" in address or address == "auto" or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc})") from None


def _replace_plan(plan: RunPlan, **changes: Any) -> RunPlan:
    from dataclasses import replace

    return replace(plan, **changes)
