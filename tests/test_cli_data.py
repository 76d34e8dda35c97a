"""`python -m search data list|build|fetch` through the real entry point."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def test_data_list_build_and_offline_fetch(tmp_path: Path, run_cli) -> None:
    res = run_cli("data", "list", "--data-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    assert "boston_housing" in res.stdout and "no" in res.stdout

    res = run_cli("data", "fetch", "mnist", "--data-dir", tmp_path,
                  env={"SEARCH_OFFLINE": "1"})
    assert res.returncode == 2
    assert "mnist" in res.stderr and str(tmp_path) in res.stderr and "Traceback" not in res.stderr

    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("mlxtend not installed: pip install --no-deps mlxtend")
    res = run_cli("data", "build", "boston_housing", "--data-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "boston_housing.npz") as f:
        assert f["x"].shape == (506, 13)
    listed = run_cli("data", "list", "--data-dir", tmp_path)
    line = next(ln for ln in listed.stdout.splitlines() if "boston_housing" in ln)
    assert "yes" in line


def test_boston_space_on_real_data(tmp_path: Path) -> None:
    """The book's Boston space reads the real Keras-layout file: 404/102, default = book."""
    if importlib.util.find_spec("mlxtend") is None:
        pytest.skip("mlxtend not installed: pip install --no-deps mlxtend")
    import keras

    from search.datasets.offline import build_boston_from_mlxtend
    from search.hp import DefaultHP
    from search.space import load_space

    build_boston_from_mlxtend(tmp_path)
    space = load_space(Path(__file__).resolve().parents[1] / "spaces" / "boston_housing.py")
    (x, y), (xt, _) = space.load_data(tmp_path)
    assert (x.shape, xt.shape) == ((404, 13), (102, 13))
    np.testing.assert_allclose(y[:5], [15.2, 42.3, 50.0, 21.1, 17.7])
    model = space.build(DefaultHP())
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [64, 64, 1]
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "Activation", "Dense", "Activation", "Dense"]
    assert type(model.optimizer).__name__ == "RMSprop" and space.folds == 4
    assert space.fit_settings(DefaultHP()) == {"epochs": 80, "batch_size": 16, "callbacks": [],
                                               "early_stopping": 0}  # off: the book's
