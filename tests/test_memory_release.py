"""After a trial, glibc's malloc_trim runs on a background thread (search.trial): the next
trial does not wait for it, requests made meanwhile are merged, and a real trim runs."""

from __future__ import annotations

import threading
import time
import weakref

import pytest

from search import trial


@pytest.fixture
def fresh_trimmer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trial, "_trimmer", None)
    monkeypatch.setattr(trial, "_trim_wanted", threading.Event())
    idle = threading.Event()
    idle.set()
    monkeypatch.setattr(trial, "trim_idle", idle)


def test_trim_runs_on_its_own_thread_without_blocking_the_caller(
        monkeypatch: pytest.MonkeyPatch, fresh_trimmer: None) -> None:
    gate, calls = threading.Event(), []

    def trim(pad: int) -> int:  # stands in for glibc's: it records where and how it ran
        calls.append((threading.current_thread().name, gate.wait(10)))
        return 1

    monkeypatch.setattr(trial, "_libc_malloc_trim", lambda: trim)
    trial._malloc_trim()  # returns while the trim waits on the gate (inline: 10 s, False)
    trial._malloc_trim()  # both asked while one runs or waits: merged
    trial._malloc_trim()
    assert not trial.trim_idle.is_set()  # a trim asked for and not yet done
    gate.set()
    assert trial.trim_idle.wait(10)  # all asked for are done
    time.sleep(0.1)  # a stray extra trim would land here
    assert calls[0] == ("search-malloc-trim", True)
    assert 1 <= len(calls) <= 2  # the first, and at most one for the requests it merged
    assert all(name == "search-malloc-trim" for name, _ in calls)


def test_real_trim_runs(monkeypatch: pytest.MonkeyPatch, fresh_trimmer: None) -> None:
    real = trial._libc_malloc_trim()
    if real is None:
        pytest.skip("not glibc: no malloc_trim to run")
    results: list[int] = []

    def recorded(pad: int) -> int:  # glibc's own trim, its result kept
        results.append(real(pad))
        return results[-1]

    monkeypatch.setattr(trial, "_libc_malloc_trim", lambda: recorded)
    trial._malloc_trim()
    assert trial.trim_idle.wait(10), "the background trim never ran"
    assert len(results) == 1 and results[0] in (0, 1)  # glibc: 1 if memory went back


def test_first_trial_of_a_process_freezes_what_is_alive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After the process's first trial, full collections no longer traverse what was alive
    then (imports, caches); later trials freeze nothing more."""
    import gc

    gc.unfreeze()
    try:
        monkeypatch.setattr(trial, "_trials_run", 0)
        trial._release_memory()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # this process's modules at least
        class Node:
            pass

        node = Node()
        node.self = node  # type: ignore[attr-defined]  # a cycle made after the freeze
        alive = weakref.ref(node)
        del node
        trial._release_memory()
        assert gc.get_freeze_count() <= frozen  # nothing more frozen (some frozen freed)
        assert alive() is None  # the second trial's collection took the cycle
    finally:
        gc.unfreeze()
