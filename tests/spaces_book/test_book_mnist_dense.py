"""``spaces/mnist_dense.py``: the book's 512-unit net at the default point; the wider options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from search.hp import DefaultHP, FixedHP
from search.space import trace_space


@pytest.fixture
def space(book_space: Callable[[str], Any]) -> Any:
    return book_space("mnist_dense")


def test_default_point_is_the_books_model(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    assert layers_of(model) == [("Dense", 512, "linear"), ("Activation",),
                                ("Dense", 10, "softmax")]
    assert model.layers[1].activation.__name__ == "relu"
    assert model.count_params() == 407_050  # the book's summary
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)  # on torch: a subclass
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.optimizer.clipnorm is None and not model.optimizer.weight_decay
    assert model.loss == "sparse_categorical_crossentropy"
    settings = space.fit_settings(DefaultHP())
    assert (settings["epochs"], settings["batch_size"], settings["callbacks"]) == (5, 128, [])
    assert not settings["early_stopping"]


def test_trace_offers_the_wide_regularised_options(space: Any) -> None:
    specs = {s.name: s for s in trace_space(space).specs}
    assert specs["units_0"].high >= 1024 and specs["layers"].high == 4
    assert specs["optimizer"].values == ("rmsprop", "adam", "adamw", "sgd")
    assert specs["label_smoothing"].values == (0.0, 0.05, 0.1)
    assert specs["lr_schedule"].values == ("constant", "cosine")
    assert specs["epochs"].high >= 30 and specs["dropout"].high >= 0.5
    assert specs["input_dropout"].default == 0.0
    assert specs["early_stopping"].default == 0 and specs["early_stopping_epochs"].conditional


STRONG = {"layers": 2, "units_0": 1024, "units_1": 1024, "dropout": 0.3, "input_dropout": 0.2,
          "batchnorm": True, "optimizer": "adamw", "adamw_learning_rate": 1e-3,
          "label_smoothing": 0.1, "lr_schedule": "cosine"}


def test_strong_point_builds(space: Any, layers_of: Callable) -> None:
    model = space.build(FixedHP(STRONG))
    kinds = [row[0] for row in layers_of(model)]
    assert kinds == ["Dropout", "Dense", "BatchNormalization", "Activation", "Dropout",
                     "Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]
    assert isinstance(model.optimizer, keras.optimizers.AdamW)  # on torch: a subclass
    y = np.array([3, 1])
    loss = float(model.loss(y, keras.ops.one_hot(y, 10) * 0.9 + 0.01))
    expected = float(keras.ops.mean(keras.losses.categorical_crossentropy(
        keras.ops.one_hot(y, 10), keras.ops.one_hot(y, 10) * 0.9 + 0.01,
        label_smoothing=0.1)))
    assert loss == pytest.approx(expected, rel=1e-5)
    sgd = space.build(FixedHP({"optimizer": "sgd", "sgd_learning_rate": 0.1}))
    assert sgd.optimizer.clipnorm == 1.0


class LearningRates(keras.callbacks.Callback):
    def on_train_begin(self, logs: Any = None) -> None:
        self.seen: list[float] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def test_cosine_schedule_anneals_over_the_fits_epochs(space: Any) -> None:
    hp = FixedHP({**STRONG, "epochs": 4})
    model = space.build(hp)
    settings = space.fit_settings(hp)
    rates = LearningRates()
    x = np.random.default_rng(0).random((16, 784), dtype=np.float32)
    model.fit(x, np.arange(16) % 10, epochs=settings["epochs"], batch_size=8, verbose=0,
              callbacks=[*settings["callbacks"], rates])
    assert rates.seen == pytest.approx([1e-3 * (1 + np.cos(np.pi * e / 4)) / 2
                                        for e in range(4)], rel=1e-5)


@pytest.mark.parametrize("params", [{}, STRONG])
def test_one_epoch_trial_on_tiny_data(space: Any, write_mnist: Callable[..., Path],
                                      run_default: Callable[..., Any],
                                      params: dict[str, Any]) -> None:
    data_dir = write_mnist()
    result = run_default(space, data_dir, epochs=1, batch_size=32, **params)
    assert result.oof.shape == (40, 10)
