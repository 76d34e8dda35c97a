"""``--jobs N`` on one machine: N child processes that run trials and send results back.

Each slot is a long-lived child process (``spawn``, so TensorFlow starts clean) that loads
the space and data once and then runs one trial at a time from a
:class:`~search.plan.TrialSpec`. Its sink is the pipe to the driver: the record at the
start, a :class:`~search.results.FoldResult` after each fold (the driver writes the store),
and after each fold but the last a question "prune?" that the driver answers from the
backend's pruner. A child that dies takes only its running trial with it: the driver records
that trial as failed and starts a fresh child for the next one. On Ctrl-C the driver ends
the children and their trials stay ``running``: the next session continues them.

Why not ``concurrent.futures``: a trial talks with the driver *while* it runs (pruning after
each fold), which a future cannot do.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from search.errors import TrialFailed, TrialPruned
from search.plan import RunPlan, TrialSpec, execute
from search.results import FoldResult, TrialSink
from search.store import TrialRecord

__all__ = ["ProcessSlot"]

Report = Callable[[int, float], None]


class _PipeSink:
    """The child's sink: every call is a message to the driver."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def started(self, record: TrialRecord) -> None:
        self.conn.send(("started", record))

    def fold(self, result: FoldResult) -> None:
        self.conn.send(("fold", result))

    def finished(self, record: TrialRecord) -> None:
        self.conn.send(("finished", record))


def _child(conn: Connection, plan: RunPlan, log: str | None) -> None:
    """The slot's process: run specs until told to stop (its output goes to ``log``)."""
    import os
    import signal

    # Ctrl-C is the driver's to handle: it ends the children itself (and records their
    # trials as interrupted); a child that died of the same SIGINT would look like a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if log is not None:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    sink = _PipeSink(conn)

    def report(fold: int, value: float) -> None:
        conn.send(("report", fold, value))
        if conn.recv() == "prune":
            raise TrialPruned(f"pruned after fold {fold}")

    while True:
        try:
            msg = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if msg == "stop":
            return
        spec: TrialSpec = msg
        try:
            execute(plan, spec, sink=sink, report=report)
            conn.send(("done", "complete"))
        except TrialPruned:
            conn.send(("done", "pruned"))
        except TrialFailed as exc:
            conn.send(("done", f"failed: {exc}"))
        except KeyboardInterrupt:
            return


class ProcessSlot:
    """One child process running trials for the driver; see the module docstring."""

    def __init__(self, plan: RunPlan, index: int, *, log: Path | None = None) -> None:
        self.plan = plan
        self.index = index
        self.log = log
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self.closing = False

    def _start(self) -> Connection:
        if self.closing:
            raise KeyboardInterrupt("the run is stopping")
        if self._proc is None or not self._proc.is_alive():
            parent, child = self._ctx.Pipe()
            log = str(self.log) if self.log else None
            self._proc = self._ctx.Process(target=_child, args=(child, self.plan, log),
                                           name=f"search-slot-{self.index}", daemon=True)
            self._proc.start()
            child.close()
            self._conn = parent
        assert self._conn is not None
        return self._conn

    def run(self, spec: TrialSpec, sink: TrialSink, report: Report | None) -> TrialRecord:
        """Run ``spec`` in the child; forward its results to ``sink``; answer its prune
        questions with ``report`` (which raises TrialPruned to prune).

        Returns the final record. Raises TrialPruned / TrialFailed as an in-process trial
        would; a child that dies fails its trial (recorded) and is replaced next time.
        """
        conn = self._start()
        conn.send(spec)
        last: TrialRecord | None = None
        while True:
            try:
                msg = conn.recv()
            except (EOFError, ConnectionError, OSError):
                code = None
                proc, self._proc = self._proc, None
                if proc is not None:
                    proc.join(timeout=10)
                    code = proc.exitcode
                if self.closing:  # Ctrl-C: the trial stays running, continued next session
                    raise KeyboardInterrupt("the run is stopping") from None
                reason = (f"the worker process died (exit code {code}) during the trial"
                          + (f"; see {self.log}" if self.log else ""))
                if last is None:
                    last = TrialRecord(number=spec.number, status="running",
                                       params=dict(spec.params or {}), started=time.time(),
                                       backend=self.plan.backend, backend_id=spec.backend_id,
                                       worker=self.index, n_folds=self.plan.n_folds)
                    sink.started(last)
                last.status, last.error = "failed", reason
                last.params = last.params or dict(spec.params or {})
                last.finished = time.time()
                last.seconds = last.finished - last.started
                sink.finished(last)
                raise TrialFailed(reason) from None
            kind = msg[0]
            if kind == "started":
                last = msg[1]
                sink.started(msg[1])
            elif kind == "fold":
                last = msg[1].record
                sink.fold(msg[1])
            elif kind == "report":
                try:
                    if report is not None:
                        report(msg[1], msg[2])
                    conn.send("go")
                except TrialPruned:
                    conn.send("prune")
            elif kind == "finished":
                last = msg[1]
                sink.finished(msg[1])
            elif kind == "done":
                assert last is not None
                if msg[1] == "pruned":
                    raise TrialPruned(last.error or "pruned")
                if msg[1].startswith("failed"):
                    raise TrialFailed(last.error or msg[1])
                return last

    def close(self, *, kill: bool = False) -> None:
        """Stop the child (politely, or at once with ``kill``: its trial stays interrupted,
        to be continued by the next session)."""
        self.closing = True
        proc = self._proc
        if proc is None:
            return
        try:
            if kill:
                proc.terminate()
            elif self._conn is not None:
                self._conn.send("stop")
        except (BrokenPipeError, OSError):
            pass
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
        self._proc = None
