"""``spaces/boston_housing.py``: the book's model at the default point; the options beyond it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from search.hp import DefaultHP, FixedHP
from search.space import trace_space

BOOK = [("Dense", 64, "linear"), ("Activation",), ("Dense", 64, "linear"), ("Activation",),
        ("Dense", 1, "linear")]


@pytest.fixture
def space(book_space: Callable[[str], Any]) -> Any:
    return book_space("boston_housing")


@pytest.fixture
def boston_dir(data_dir: Path) -> Path:
    """40 rows in ``boston_housing.npz``'s layout (x, y before the loader's seed-113 split)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 13))
    np.savez(data_dir / "boston_housing.npz", x=x, y=22 + 5 * x[:, 0] + rng.normal(size=40))
    return data_dir


def test_default_point_is_the_books_model(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    assert layers_of(model) == BOOK
    assert [layer.activation.__name__ for layer in model.layers
            if isinstance(layer, keras.layers.Activation)] == ["relu", "relu"]
    assert model.count_params() == 14 * 64 + 65 * 64 + 65  # 5,121
    assert all(layer.kernel_regularizer is None for layer in model.layers
               if isinstance(layer, keras.layers.Dense))
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)  # on torch: a subclass
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.optimizer.clipnorm is None and not model.optimizer.weight_decay
    assert model.loss == "mse"
    settings = space.fit_settings(DefaultHP())
    assert (settings["epochs"], settings["batch_size"], settings["callbacks"]) == (80, 16, [])
    assert not settings["early_stopping"]  # the book trains its 80 epochs
    assert space.folds == 4


def test_trace_names_ranges_and_defaults(space: Any) -> None:
    specs = {s.name: s for s in trace_space(space).specs}
    assert specs["optimizer"].values == ("rmsprop", "adam", "adamw", "sgd")
    assert (specs["layers"].low, specs["layers"].high) == (1, 5)
    assert specs["units_0"].high == 512 and specs["units_4"].conditional
    assert specs["loss"].values == ("mse", "huber") and specs["huber_delta"].conditional
    assert specs["l2"].default == 0.0
    for name in ("adam_learning_rate", "adamw_learning_rate", "sgd_learning_rate"):
        assert specs[name].conditional and specs[name].sampling == "log"
    assert specs["sgd_learning_rate"].high <= 1e-2  # bounded: SGD diverged above
    assert 0.0 not in specs["sgd_clipnorm"].values  # SGD is always clipped
    assert specs["early_stopping"].default == 0 and specs["early_stopping_epochs"].conditional


def test_early_stopping_caps_the_epochs(space: Any) -> None:
    hp = FixedHP({"early_stopping": 20, "early_stopping_epochs": 400})
    settings = space.fit_settings(hp)
    assert (settings["early_stopping"], settings["epochs"]) == (20, 400)
    assert "epochs" not in hp.values


def test_sgd_clipping_huber_and_weight_decay_build(space: Any) -> None:
    hp = FixedHP({"optimizer": "sgd", "sgd_learning_rate": 5e-3, "loss": "huber",
                  "huber_delta": 5.0, "l2": 1e-3, "layers": 3, "units_2": 512})
    model = space.build(hp)
    assert isinstance(model.optimizer, keras.optimizers.SGD)  # on torch: a subclass
    assert model.optimizer.clipnorm == 1.0 and model.optimizer.momentum == 0.9
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-3)
    assert isinstance(model.loss, keras.losses.Huber) and model.loss.fn.__name__ == "huber"
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [64, 64, 512, 1]
    assert all(d.kernel_regularizer is not None for d in dense[:-1])
    adamw = space.build(FixedHP({"optimizer": "adamw", "adamw_weight_decay": 0.01}))
    assert isinstance(adamw.optimizer, keras.optimizers.AdamW)  # on torch: a subclass
    assert adamw.optimizer.weight_decay == pytest.approx(0.01)


@pytest.mark.parametrize("params", [
    {"optimizer": "sgd", "sgd_learning_rate": 1e-2, "sgd_clipnorm": 0.5, "loss": "huber",
     "l2": 1e-2, "batchnorm": True, "dropout": 0.2},
    {"optimizer": "adamw", "adamw_learning_rate": 3e-3, "adamw_weight_decay": 0.1},
])
def test_short_trial_on_tiny_data(space: Any, boston_dir: Path, params: dict[str, Any],
                                      run_default: Callable[..., Any]) -> None:
    result = run_default(space, boston_dir, epochs=20, batch_size=8, **params)  # the least
    assert result.oof.shape == (32, 1)


def test_early_stopping_stops_a_fold(space: Any, boston_dir: Path) -> None:
    from search.folds import make_folds
    from search.trial import Dataset, run_trial

    (x, y), (xt, yt) = space.load_data(boston_dir)
    data = Dataset(x, np.asarray(y), xt, np.asarray(yt))
    hp = FixedHP({"early_stopping": 10, "early_stopping_epochs": 500, "units_0": 16,
                  "units_1": 16, "optimizer": "adam", "adam_learning_rate": 1e-2})
    result = run_trial(space, hp, data, fold_of=make_folds(data.y_train, space.task, 2, 0),
                       number=0, seed=0)
    assert result.record.status == "complete", result.record.error
    assert all(f.epochs_run < 500 for f in result.record.folds)  # 16 rows per fold overfit
