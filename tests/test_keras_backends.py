"""The Keras backend choice: JAX and TensorFlow (``--keras-backend``, a space's
``KERAS_BACKEND``) in every process that trains, and models that load across backends.

Keras fixes its backend at import, and this test process imported it with TensorFlow, so
each JAX run is a real ``python -m search`` process (its ``--jobs`` children and Ray
workers included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from search.errors import SpaceError, UsageError
from search.space import declared_backend
from search.store import RunStore
from search.tf_setup import select_backend

SPACES = Path(__file__).resolve().parent / "spaces"
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
ENV.pop("KERAS_BACKEND", None)
jax = pytest.importorskip("jax", reason="the JAX backend needs `pip install jax`")


def _cli(*args: str | Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "search", *map(str, args)], cwd=ROOT,
                          env={**ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=600)


def test_a_space_declares_its_backend_without_being_imported(tmp_path: Path) -> None:
    space = tmp_path / "s.py"
    space.write_text('import nothing_that_exists\nKERAS_BACKEND = "jax"\n')
    assert declared_backend(space) == "jax"  # read by parsing: the import would fail
    space.write_text("KERAS_BACKEND = 3\n")
    with pytest.raises(SpaceError, match="KERAS_BACKEND must be a string"):
        declared_backend(space)
    assert declared_backend(SPACES / "tiny_regression.py") is None


def test_a_backend_cannot_change_once_keras_is_imported() -> None:
    import keras

    used = keras.backend.backend()
    other = "jax" if used != "jax" else "tensorflow"
    with pytest.raises(UsageError, match=f"already imported in this process with backend "
                                         f"'{used}'"):
        select_backend(other)
    assert select_backend(used) == used
    with pytest.raises(UsageError, match="must be one of"):
        select_backend("theano")


def _best_fold_predicts_its_oof(store: RunStore, *, fold: int) -> None:
    """The best trial's ``fold`` model, saved by a run on another backend, loads in this
    process (TensorFlow) and predicts that fold's stored out-of-fold rows."""
    import keras

    from search.space import load_space
    from search.trial import Dataset

    assert keras.backend.backend() == "tensorflow"
    best = store.ranked("minimize")[0]
    model = keras.models.load_model(store.trial_dir(best.number) / f"fold_{fold}.keras")
    pre = joblib.load(store.trial_dir(best.number) / f"fold_{fold}.pre.joblib")
    data = Dataset.from_space(load_space(SPACES / "tiny_regression.py"), None)
    rows = store.load_array("folds.npy") == fold
    pred = model.predict(pre.transform(data.x_train[rows]), verbose=0)
    np.testing.assert_allclose(pred, store.load_oof(best.number)[rows], rtol=1e-4, atol=1e-4)


def test_jax_run_in_the_driver_and_jobs_children_and_models_load_on_tensorflow(
        tmp_path: Path) -> None:
    cache = tmp_path / "jax-cache"
    res = _cli("run", SPACES / "tiny_regression.py", "--keras-backend", "jax", "--trials", "4",
               "--jobs", "2", "--out", tmp_path, "--name", "j", "--sampler", "random",
               "--top", "2", env={"SEARCH_JAX_CACHE": str(cache)})
    assert res.returncode == 0, res.stderr
    assert len(list(cache.iterdir())) > 0  # compiled programs kept for later folds and runs
    store = RunStore(tmp_path / "j")
    assert store.read_run()["settings"]["keras_backend"] == "jax"
    trials = store.trials()
    assert {t.worker for t in trials} >= {0, 1} or {t.worker for t in trials} >= {0, 2}
    assert all(t.status == "complete" and t.keras_backend == "jax" for t in trials)
    # a fold model trained on JAX loads and predicts on TensorFlow (this process) exactly
    _best_fold_predicts_its_oof(store, fold=0)
    assert json.loads((store.root / "ensemble.json").read_text())["kinds"]


def test_the_spaces_backend_is_used_and_resume_keeps_it(tmp_path: Path) -> None:
    space = tmp_path / "jaxspace.py"
    space.write_text('KERAS_BACKEND = "jax"\n' + (SPACES / "contract.py").read_text())
    res = _cli("run", space, "--trials", "2", "--out", tmp_path, "--name", "s", "--top", "0")
    assert res.returncode == 0, res.stderr
    res = _cli("run", space, "--resume", tmp_path / "s", "--trials", "3", "--top", "0")
    assert res.returncode == 0, res.stderr
    trials = RunStore(tmp_path / "s").trials()
    assert [t.keras_backend for t in trials] == ["jax"] * 3


def test_jax_on_ray_workers(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="--backend ray needs the [ray] extra")
    res = _cli("run", SPACES / "contract.py", "--backend", "ray", "--keras-backend", "jax",
               "--jobs", "2", "--trials", "3", "--out", tmp_path, "--name", "r", "--top", "0")
    assert res.returncode == 0, res.stderr
    trials = RunStore(tmp_path / "r").trials()
    assert len(trials) == 3 and all(t.keras_backend == "jax" for t in trials)
    assert any(t.node is not None for t in trials)  # trials 1-2 ran on Ray workers


def _pytest_on_jax(tests: str, timeout: float) -> str:
    """Run ``tests`` (a path under tests/) in a pytest process on JAX; its output."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / tests)], cwd=ROOT,
                         env={**ENV, "KERAS_BACKEND": "jax"}, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return res.stdout


def test_the_book_spaces_tests_pass_on_jax() -> None:
    """tests/spaces_book (every book space's default model on tiny data) under JAX."""
    out = _pytest_on_jax("spaces_book", 900)
    assert " passed" in out and " failed" not in out


def test_model_reuse_on_jax() -> None:
    """tests/test_reuse.py (later fold models train on the first one's program: the same
    numbers) under JAX, where reuse is on; under TensorFlow its tests skip."""
    out = _pytest_on_jax("test_reuse.py", 600)
    assert "3 passed" in out and "skipped" not in out


def test_jax_with_more_than_one_thread_runs(tmp_path: Path) -> None:
    # XLA has no N-thread flag; setting "intra_op_parallelism_threads=2" alone made XLA read
    # it as a flags *file* and abort the process (F-log, exit -6) before the first trial
    res = _cli("run", SPACES / "contract.py", "--keras-backend", "jax", "--threads", "2",
               "--trials", "1", "--out", tmp_path, "--name", "t2", "--top", "0")
    assert res.returncode == 0, res.stderr
    assert RunStore(tmp_path / "t2").trials()[0].status == "complete"


def test_a_jax_search_does_not_import_tensorflow_and_seeds_alike() -> None:
    # Keras' tf.available checks import TensorFlow (5 s, ~400 MB a process) unless patched
    res = subprocess.run([sys.executable, str(ROOT / "tests" / "jax_seeding_check.py")],
                         cwd=ROOT, env={**ENV, "KERAS_BACKEND": "jax"}, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("same"), res.stderr[-3000:]


def test_fold_stacking_on_jax() -> None:
    """tests/test_stacking.py (a trial's folds as one vectorised program: the same models as
    folds trained alone) under JAX, where stacking is on; under TensorFlow its tests skip."""
    out = _pytest_on_jax("test_stacking.py", 600)
    assert "10 passed" in out and "skipped" not in out


def test_fold_values_on_jax() -> None:
    """tests/test_fold_values.py (a stacked trial builds one model; the other folds' initial
    values from its taped build: each fold's own build's, to the bit, for every book space)
    under JAX; under TensorFlow its tests skip."""
    out = _pytest_on_jax("test_fold_values.py", 600)
    assert "32 passed" in out and "skipped" not in out


def test_initial_values_on_jax() -> None:
    """tests/test_initial_values.py (Keras' initial values drawn by size class: Keras' own
    values, no compilation per new width) under JAX; under TensorFlow its tests skip."""
    out = _pytest_on_jax("test_initial_values.py", 300)
    assert "16 passed" in out and "skipped" not in out


def test_run_stacks_folds_unless_told_not_to(tmp_path: Path) -> None:
    for flag, name in (("--stack-folds", "on"), ("--no-stack-folds", "off")):
        res = _cli("run", SPACES / "tiny_regression.py", "--keras-backend", "jax", flag,
                   "--trials", "2", "--out", tmp_path, "--name", name, "--top", "0")
        assert res.returncode == 0, res.stderr
        trials = RunStore(tmp_path / name).trials()
        assert all(t.status == "complete" for t in trials)
        assert {f.stacked for t in trials for f in t.folds} == {flag == "--stack-folds"}


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None,
                    reason="the torch backend needs `pip install torch` (CI does not install "
                           "it: a CPU build is not on every registry mirror)")
def test_torch_run_and_its_models_load_on_tensorflow(tmp_path: Path) -> None:
    # Keras' torch trainer refuses steps_per_execution > 1: a run must not set it there
    res = _cli("run", SPACES / "tiny_regression.py", "--keras-backend", "torch", "--trials",
               "3", "--out", tmp_path, "--name", "t", "--sampler", "random", "--top", "2")
    assert res.returncode == 0, res.stderr + res.stdout
    store = RunStore(tmp_path / "t")
    trials = store.trials()
    assert all(t.status == "complete" and t.keras_backend == "torch" for t in trials)
    assert not any(f.stacked for t in trials for f in t.folds)  # stacking is JAX's vmap
    _best_fold_predicts_its_oof(store, fold=1)
