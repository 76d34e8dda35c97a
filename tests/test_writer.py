"""The store writer's files are written on a thread of their own, in the order asked: a
fold's files before the record that commits them, a trial's lock released after its final
record; a failed write surfaces as StoreError and nothing after it lands. Real trials
(tiny generated data), real files, real ``flock``."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from search.errors import StoreError, TrialFailed
from search.folds import make_folds
from search.hp import DefaultHP
from search.space import load_space
from search.store import RunStore, TrialLock
from search.trial import Dataset, run_trial
from search.writer import StoreWriter


@pytest.fixture(scope="module")
def space_and_data():  # type: ignore[no-untyped-def]
    space = load_space(Path(__file__).parent / "spaces" / "tiny_regression.py")
    return space, Dataset.from_space(space, None)


def _run(space, data, store: RunStore, writer: StoreWriter, number: int = 0):  # type: ignore[no-untyped-def]
    fold_of = make_folds(data.y_train, "regression", 2, seed=0)
    return run_trial(space, DefaultHP(), data, fold_of=fold_of, number=number, seed=1,
                     sink=writer, stack_folds=False)


def _writer(store: RunStore, data: Dataset) -> StoreWriter:
    return StoreWriter(store, n_train=len(data.y_train), direction="minimize")


def test_files_are_synced_off_the_trials_thread_in_commit_order(
        tmp_path: Path, space_and_data, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fsync (the slow part) runs on the writer's thread, none on the trial's; each
    trial.json that lists a fold lands after that fold's files; the lock goes last."""
    space, data = space_and_data
    store = RunStore(tmp_path)
    events: list[tuple[str, str]] = []  # (thread, what)
    real_fsync, real_replace, real_release = os.fsync, os.replace, TrialLock.release

    def fsync(fd: int) -> None:
        events.append((threading.current_thread().name, "fsync"))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        name = Path(dst).name
        if name == "trial.json":
            record = store.read_trial(0)
            name = f"trial.json folds={[f.fold for f in record.folds]} {record.status}"
        events.append((threading.current_thread().name, name))

    def release(self: TrialLock) -> None:
        events.append((threading.current_thread().name, "lock released"))
        real_release(self)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(TrialLock, "release", release)
    writer = _writer(store, data)
    writer.allocate()
    main = threading.current_thread().name
    _run(space, data, store, writer)
    writer.flush()
    assert [e for e in events if e[0] == main] == []  # the trial's thread wrote nothing
    assert {t for t, _ in events} == {"search-store-writer"}
    names = [what for _, what in events if what != "fsync"]
    assert names == [
        "trial.json folds=[] running",
        "oof.npy", "test_fold_0.npy", "fold_0.keras", "fold_0.pre.joblib",
        "trial.json folds=[0] running",
        "oof.npy", "test_fold_1.npy", "fold_1.keras", "fold_1.pre.joblib",
        "trial.json folds=[0, 1] running",
        "test.npy", "trial.json folds=[0, 1] complete",
        "lock released",
    ]
    assert sum(what == "fsync" for _, what in events) == 13  # one a file, as before
    assert not list(store.trial_dir(0).glob("test_fold_*"))  # dropped after test.npy


def test_a_trial_stays_locked_until_its_final_record_is_written(
        tmp_path: Path, space_and_data, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the final record waits in the queue, the trial's lock is held: another
    session sees a live trial, never an interrupted one to take over."""
    space, data = space_and_data
    store = RunStore(tmp_path)
    writer = _writer(store, data)
    writer.allocate()
    gate = threading.Event()
    real_write = writer._write  # the hold-up goes in the queue, after what was asked

    def held(path: Path, payload: bytes) -> None:
        if path.name == "test.npy":
            writer._disk.put(gate.wait)
        real_write(path, payload)

    monkeypatch.setattr(writer, "_write", held)
    _run(space, data, store, writer)
    assert store.trial_alive(0)  # the final record is not on disk yet: still owned
    assert store.read_trial(0).status == "running"
    gate.set()
    writer.flush()
    assert store.read_trial(0).status == "complete" and not store.trial_alive(0)


def test_a_failed_write_is_raised_and_nothing_after_it_lands(
        tmp_path: Path, space_and_data, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails (here: oof.npy of fold 0) fails the trial with its cause; the
    record that would have committed fold 0 is not written (the store never lists a fold
    whose files did not land), and the writer goes on with the next trial."""
    import search.writer as writer_module

    space, data = space_and_data
    store = RunStore(tmp_path)
    writer = _writer(store, data)
    writer.allocate()
    real = writer_module.write_bytes
    failed: list[Path] = []

    def failing(path: Path, payload: bytes) -> None:
        if path.name == "oof.npy" and not failed:
            failed.append(path)
            raise OSError(28, "No space left on device")
        real(path, payload)

    monkeypatch.setattr(writer_module, "write_bytes", failing)
    put = writer._disk.put

    def in_step(*args):  # type: ignore[no-untyped-def]
        writer._disk._queue.join()  # each operation done before the next is asked: the
        put(*args)  # failure is raised at the next one (deterministic for the test)

    monkeypatch.setattr(writer._disk, "put", in_step)
    with pytest.raises(TrialFailed, match="No space left on device"):
        _run(space, data, store, writer)
    writer.flush()
    record = store.read_trial(0)
    assert record.status == "failed" and "StoreError" in (record.error or "")
    assert not (store.trial_dir(0) / "fold_0.keras").exists()  # dropped after the failure
    number = writer.allocate()  # the next trial writes as usual
    result = _run(space, data, store, writer, number=number)
    writer.flush()
    assert store.read_trial(number).status == result.record.status == "complete"


def test_flush_raises_a_failure_nothing_else_reported(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    writer = StoreWriter(store, n_train=4, direction="minimize")

    def broken() -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    writer._disk.put(broken)
    with pytest.raises(StoreError, match=r"PermissionError.*Permission denied"):
        writer.flush()
    writer.flush()  # raised once; the queue works again
    writer._disk.put(lambda: None)
    writer.flush()


def test_release_all_writes_everything_first(tmp_path: Path, space_and_data,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A session's end (release_all, also on Ctrl-C) waits for its queued files."""
    space, data = space_and_data
    store = RunStore(tmp_path)
    writer = _writer(store, data)
    writer.allocate()
    gate = threading.Event()
    writer._disk.put(gate.wait)  # everything of the trial queues behind this
    _run(space, data, store, writer)
    assert not (store.trial_dir(0) / "trial.json").exists()
    threading.Timer(0.2, gate.set).start()
    writer.release_all()
    assert store.read_trial(0).status == "complete" and not store.trial_alive(0)
