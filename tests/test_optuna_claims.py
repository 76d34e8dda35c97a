"""A session's driver closing stale Optuna trials must not close another process's live one.

The race this pins (it made ``test_worker_on_another_host_joins_the_study`` flaky): a worker
claims a trial in two steps under the run's claim lock, ``study.ask()`` and then the tag with
its store number. A driver reading the study between the two saw a RUNNING trial without a
tag, took it for one a killed session left behind and told it FAIL; the worker's next
``trial.report`` then raised Optuna's ``UpdateFinishedTrialError``. Here the worker's half is
done by hand, with the real study, store and claim lock of a real run (a real journal file):
the driver's :meth:`~search.backends.optuna.OptunaBackend.close_stale` has to wait for the
claim and then leave the trial running. Without the lock it fails at once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, cast

from optuna.trial import TrialState

from search.backends import Driver
from search.backends.optuna import STALE, OptunaBackend, _locked
from search.events import SearchEvents
from search.runner import RunSettings, _resume_settings, join_run, start_run
from search.store import RunStore

SPACE = Path(__file__).resolve().parent / "spaces" / "tiny_regression.py"


def _one_trial_run(tmp_path: Path) -> Path:
    """A finished one-trial run of the tiny space (its study in a real journal file)."""
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        settings = RunSettings(trials=1, folds=2, keep_models=0,
                               options={"sampler": "random"})
        return start_run(SPACE, settings, out=tmp_path, name="r").root
    finally:
        os.chdir(here)


def _session(run_dir: Path, worker: int) -> tuple[Driver, OptunaBackend, Any]:
    """A real session on ``run_dir`` as ``search worker`` makes one: driver, backend, study."""
    store = RunStore(run_dir).require()
    run = store.read_run()
    settings = _resume_settings(run, {"options": {}}).validate()
    driver, backend = join_run(store, run, settings, SearchEvents(), worker=worker)
    optuna_backend = cast(OptunaBackend, backend)
    return driver, optuna_backend, optuna_backend.open_study(driver)


def test_close_stale_waits_for_a_claim_in_progress_and_leaves_it(tmp_path: Path) -> None:
    run_dir = _one_trial_run(tmp_path)
    worker, worker_backend, worker_study = _session(run_dir, worker=os.getpid())
    driver, backend, driver_study = _session(run_dir, worker=0)
    try:
        closed = threading.Event()
        with _locked(run_dir / ".claim.lock"):  # the worker's claim, first half
            trial = worker_study.ask()

            def close() -> None:
                backend.close_stale(driver_study, driver)
                closed.set()

            closer = threading.Thread(target=close, daemon=True)
            closer.start()
            assert not closed.wait(1.0), "close_stale did not wait for the claim lock"
            spec = worker.spec(None, backend_id=str(trial.number))  # second half: the tag
            trial.set_user_attr("store_number", spec.number)
        assert closed.wait(30), "close_stale never ran after the claim"
        frozen = worker_study._storage.get_trial(trial._trial_id)
        assert frozen.state == TrialState.RUNNING
        assert not frozen.user_attrs.get(STALE)
        trial.report(1.0, step=0)  # what failed with UpdateFinishedTrialError
        worker_study.tell(trial, 1.0)
    finally:
        worker.writer.release_all()
        driver.writer.release_all()
        worker_backend.close()
        backend.close()


def test_close_stale_still_closes_a_trial_killed_before_its_tag(tmp_path: Path) -> None:
    """The other side: a trial asked and never tagged by a process that is gone (no claim
    lock held now) is still told FAIL and marked stale, so it does not count."""
    run_dir = _one_trial_run(tmp_path)
    driver, backend, study = _session(run_dir, worker=0)
    try:
        trial = study.ask()  # killed here: no tag, no claim lock held any more
        backend.close_stale(study, driver)
        frozen = study._storage.get_trial(trial._trial_id)
        assert frozen.state == TrialState.FAIL
        assert frozen.user_attrs.get(STALE) is True
    finally:
        driver.writer.release_all()
        backend.close()
