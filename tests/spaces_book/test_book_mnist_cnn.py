"""``spaces/mnist_cnn.py``: the book's convnet at the default point, the tutorial's as a choice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from search.hp import DefaultHP, FixedHP
from search.space import trace_space

BOOK = [
    ("Conv2D", 32, (3, 3), "relu"), ("MaxPooling2D", (2, 2)),
    ("Conv2D", 64, (3, 3), "relu"), ("MaxPooling2D", (2, 2)),
    ("Conv2D", 64, (3, 3), "relu"), ("Flatten",),
    ("Dense", 64, "relu"), ("Dense", 10, "softmax"),
]


@pytest.fixture
def space(book_space: Callable[[str], Any]) -> Any:
    return book_space("mnist_cnn")


def test_trace_names_ranges_and_defaults(space: Any) -> None:
    trace = trace_space(space)
    specs = {s.name: s for s in trace.specs}
    unconditional = {n for n, s in specs.items() if not s.conditional}
    assert {"architecture", "activation", "batchnorm", "kernel_size", "padding", "conv_blocks",
            "filters_0", "filters_1", "filters_2", "dense_units", "dropout", "optimizer",
            "learning_rate", "epochs", "batch_size", "early_stopping",
            "reduce_lr_on_plateau"} == unconditional
    conditional = {n for n, s in specs.items() if s.conditional}
    assert {"early_stopping_patience", "reduce_lr_factor", "reduce_lr_patience"} <= conditional
    assert specs["learning_rate"].sampling == "log"
    assert (specs["conv_blocks"].low, specs["conv_blocks"].high) == (1, 3)
    assert specs["architecture"].values == ("search", "adadelta_tutorial")
    assert trace.fit == {"epochs": 5, "batch_size": 64, "callbacks": []}


def test_default_point_is_the_books_convnet(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    assert layers_of(model) == BOOK
    assert model.count_params() == 93_322  # the book's summary
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert model.loss == "sparse_categorical_crossentropy"


def test_tutorial_convnet_is_a_choice(space: Any, layers_of: Callable) -> None:
    hp = FixedHP({"architecture": "adadelta_tutorial"})
    model = space.build(hp)
    assert layers_of(model) == [
        ("Conv2D", 32, (3, 3), "relu"), ("Conv2D", 64, (3, 3), "relu"),
        ("MaxPooling2D", (2, 2)), ("Dropout", 0.25), ("Flatten",), ("Dense", 128, "relu"),
        ("Dropout", 0.5), ("Dense", 10, "softmax"),
    ]
    assert model.count_params() == 1_199_882
    assert isinstance(model.optimizer, keras.optimizers.Adadelta)
    assert float(model.optimizer.learning_rate) == pytest.approx(1.0)
    settings = space.fit_settings(hp)
    assert (settings["epochs"], settings["batch_size"]) == (6, 128)
    assert "conv_blocks" not in hp.values  # the searched family's parameters are not asked


def test_conditionals_and_large_kernels_still_fit(space: Any, layers_of: Callable) -> None:
    hp = FixedHP({"kernel_size": 5, "batchnorm": True, "dropout": 0.3, "early_stopping": True})
    model = space.build(hp)
    space.fit_settings(hp)
    kinds = [row[0] for row in layers_of(model)]
    assert kinds.count("BatchNormalization") == 3 and "Dropout" in kinds
    assert "early_stopping_patience" in hp.values
    conv = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.padding for c in conv] == ["valid", "valid", "same"]  # 4x4 input < 5x5 kernel
    for blocks in (1, 2):
        assert len(space.build(FixedHP({"conv_blocks": blocks})).layers) == 2 * blocks + 2


def test_load_data_and_one_epoch_trial(space: Any, write_mnist: Callable[..., Path],
                                       run_default: Callable[..., Any]) -> None:
    data_dir = write_mnist()
    (x, y), (xt, _) = space.load_data(data_dir)
    assert x.shape == (40, 28, 28, 1) and x.dtype == np.float32 and float(x.max()) <= 1.0
    assert y.dtype == np.int64 and xt.shape == (20, 28, 28, 1)
    result = run_default(space, data_dir, epochs=1, batch_size=32)
    assert result.oof.shape == (40, 10)
