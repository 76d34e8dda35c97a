"""``spaces/reuters.py``: uint8 multi-hot vectors, classes from the data, the book's 64-64-46."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.datasets import reuters
from search.hp import DefaultHP, FixedHP
from search.space import trace_space


@pytest.fixture
def space(book_space: Callable[[str], Any]) -> Any:
    return book_space("reuters")


def test_default_point_is_the_books_network(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    assert layers_of(model) == [("Dense", 64, "relu"), ("Dense", 64, "relu"),
                                ("Dense", 46, "softmax")]
    assert model.count_params() == 647_214
    assert model.loss == "sparse_categorical_crossentropy"


def test_trace_names_ranges_and_defaults(space: Any) -> None:
    trace = trace_space(space)
    specs = {s.name: s for s in trace.specs}
    unconditional = {n for n, s in specs.items() if not s.conditional}
    assert {"classes", "activation", "dropout", "batchnorm", "layers", "units_0", "units_1",
            "optimizer", "learning_rate", "epochs", "batch_size", "early_stopping",
            "reduce_lr_on_plateau"} == unconditional
    conditional = {n for n, s in specs.items() if s.conditional}
    assert {"early_stopping_patience", "reduce_lr_factor", "reduce_lr_patience"} <= conditional
    assert specs["classes"].kind == "fixed" and specs["classes"].default == 46
    assert specs["learning_rate"].sampling == "log"
    assert trace.fit == {"epochs": 9, "batch_size": 512, "callbacks": []}


def test_multi_hot_uint8_and_classes_from_the_data(
    space: Any, write_reuters: Callable[..., Path], layers_of: Callable
) -> None:
    data_dir = write_reuters(classes=52)  # the R52 stand-in has 52 topics
    (x, y), (xt, _) = space.load_data(data_dir)
    assert x.dtype == np.uint8 and x.shape == (104, 10_000) and xt.shape == (26, 10_000)
    (seqs, _), _ = reuters(data_dir, num_words=10_000)
    assert all(set(np.flatnonzero(r)) == set(s) for r, s in zip(x, seqs, strict=True))
    assert y.dtype == np.int64
    assert space.module.NUM_CLASSES == 52
    hp = DefaultHP()
    assert layers_of(space.build(hp))[-1] == ("Dense", 52, "softmax")
    assert hp.values["classes"] == 52


def test_conditionals(space: Any, layers_of: Callable) -> None:
    hp = FixedHP({"layers": 1, "batchnorm": True, "dropout": 0.2, "units_0": 512})
    kinds = [row[0] for row in layers_of(space.build(hp))]
    assert kinds == ["Dense", "BatchNormalization", "Activation", "Dropout", "Dense"]


def test_one_epoch_trial(space: Any, write_reuters: Callable[..., Path],
                         run_default: Callable[..., Any]) -> None:
    result = run_default(space, write_reuters(classes=5), epochs=1, batch_size=64)
    assert result.oof.shape == (104, 5)
