"""One contract, every backend: same tiny space, same store, same statuses.

Parametrised over a fake in-process backend (the smallest backend the seam allows), Optuna
Ray Tune (a real local Ray runtime, shared by this module's tests and shut down after
them) and Keras Tuner (its random oracle and ``Tuner.search`` loop).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.backends import register_backend
from search.runner import RunSettings, resume_run, start_run
from search.store import RunStore

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "contract.py"
BACKENDS = ["fake", "optuna", "ray", "keras-tuner"]
#: Each backend's own state in the run directory: allowed to differ between backends.
OWN_STATE = ("optuna.journal", ".claim.lock", "ray/", "keras_tuner/")
GOOD = {"bad": False, "boom": False}


def _load_fake() -> type:
    spec = importlib.util.spec_from_file_location("fake_backend", Path(__file__).with_name(
        "fake.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeBackend  # type: ignore[no-any-return]


register_backend("fake", _load_fake())


@pytest.fixture(scope="module")
def ray_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local Ray runtime for the module's Ray runs (each run would start its own)."""
    ray = pytest.importorskip("ray", reason="Ray Tune is an extra: pip install '.[ray]'")
    import os
    import tempfile

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    tmp = tempfile.mkdtemp(prefix="ray-ct-")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=tmp,
             logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_runtime")
    if request.param == "keras-tuner":
        pytest.importorskip("keras_tuner", reason="pip install '.[keras-tuner]'")
    return str(request.param)


def _settings(backend: str, trials: int, **options: Any) -> RunSettings:
    defaults: dict[str, dict[str, Any]] = {
        "fake": {}, "optuna": {"sampler": "random"}, "ray": {"algorithm": "random"},
        "keras-tuner": {"algorithm": "random"}}
    return RunSettings(trials=trials, folds=2, seed=3, keep_models=10, backend=backend,
                       options={**defaults[backend], **options})


def _files(store: RunStore) -> set[str]:
    out = set()
    for p in store.root.rglob("*"):
        rel = p.relative_to(store.root).as_posix()
        if p.is_file() and not rel.startswith(OWN_STATE) and "/." not in f"/{rel}":
            out.add(rel)
    return out


def _statuses(store: RunStore) -> list[tuple[int, str]]:
    return [(t.number, t.status) for t in store.trials()]


def test_same_store_layout(backend: str, tmp_path: Path) -> None:
    store = start_run(SPACE, _settings(backend, 3), out=tmp_path, name=backend,
                      enqueue=[GOOD, GOOD])
    assert _statuses(store) == [(0, "complete"), (1, "complete"), (2, "complete")]
    expected = {"run.json", "space.py", "folds.npy", "y_train.npy", "y_test.npy"}
    for n in range(3):
        expected |= {f"trials/{n:04d}/{f}" for f in
                     ("trial.json", "oof.npy", "test.npy", "fold_0.keras", "fold_1.keras")}
    assert _files(store) == expected
    assert (store.root / "space.py").read_bytes() == SPACE.read_bytes()
    run = store.read_run()
    assert run["settings"]["backend"] == backend
    for t in store.trials():
        oof = store.load_oof(t.number)
        assert oof.shape == (40, 1) and np.isfinite(oof).all()
        assert store.load_test(t.number).shape == (20, 1)
        assert len(t.folds) == 2 and t.backend == backend
        assert t.is_default == (t.number == 0)
        assert t.params["bad"] is False and t.params["boom"] is False
    if backend != "fake":
        assert all(t.backend_id for t in store.trials()[1:])  # the backend's own id, kept
    zero = store.read_trial(0)
    assert zero.params == run["default_params"]
    import builtins

    assert builtins.print.__module__ == "builtins"  # no backend leaves print patched


def test_bad_trial_is_pruned(backend: str, tmp_path: Path) -> None:
    options = {"fake": {}, "optuna": {"pruner": "median"}, "ray": {"scheduler": "asha"},
               "keras-tuner": {"pruner": "median"}}
    store = start_run(SPACE, _settings(backend, 4, **options[backend]), out=tmp_path,
                      name=backend, enqueue=[GOOD, GOOD, {"bad": True, "boom": False}])
    bad = store.read_trial(3)
    assert bad.params["bad"] is True
    assert bad.status == "pruned" and len(bad.folds) == 1, (bad.status, bad.error)
    assert "after fold 0" in (bad.error or "")
    oof = store.load_oof(3)
    fold_of = store.load_array("folds.npy")
    assert np.isfinite(oof[fold_of == 0]).all() and np.isnan(oof[fold_of == 1]).all()
    assert store.read_trial(0).status == "complete"


def test_failing_trial_is_recorded_and_the_run_goes_on(backend: str, tmp_path: Path) -> None:
    store = start_run(SPACE, _settings(backend, 3), out=tmp_path, name=backend,
                      enqueue=[{"boom": True}, GOOD])
    statuses = dict(_statuses(store))
    assert statuses == {0: "complete", 1: "failed", 2: "complete"}
    failed = store.read_trial(1)
    assert "boom: this space is broken" in (failed.error or "")
    assert failed.params.get("boom") is True


def test_resume_reaches_the_requested_total(backend: str, tmp_path: Path) -> None:
    store = start_run(SPACE, _settings(backend, 2), out=tmp_path, name=backend,
                      enqueue=[GOOD, GOOD, GOOD])
    assert [n for n, _ in _statuses(store)] == [0, 1]
    first = json.loads((store.trial_dir(1) / "trial.json").read_text())
    resume_run(store.root, overrides={"trials": 4})
    assert [n for n, _ in _statuses(store)] == [0, 1, 2, 3]
    assert json.loads((store.trial_dir(1) / "trial.json").read_text()) == first  # not rerun
    assert len(store.read_run()["invocations"]) == 2
