"""``spaces/cats_vs_dogs_vgg16.py``: frozen VGG16 base + the book's classifier; weights lookup.

Weights here are random (``SEARCH_VGG16_WEIGHTS=none``): no ImageNet file exists offline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from search.datasets import VGG16_NOTOP
from search.errors import DataNotFoundError
from search.hp import DefaultHP, FixedHP
from search.space import trace_space

TOP = [("Flatten",), ("Dense", 256, "relu"), ("Dropout", 0.5), ("Dense", 1, "sigmoid")]


@pytest.fixture
def space(book_space: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SEARCH_VGG16_WEIGHTS", "none")
    return book_space("cats_vs_dogs_vgg16")


def _trainable(model: Any) -> int:
    return sum(int(w.numpy().size) for w in model.trainable_weights)


def test_default_point_is_the_books_feature_extraction(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    rows = layers_of(model)
    assert rows == [("Rescaling",), ("Functional",), *TOP]
    base = model.layers[1]
    assert base.name == "vgg16" and base.output_shape == (None, 4, 4, 512)
    assert model.count_params() == 16_812_353  # the book's summary
    assert _trainable(model) == 2_097_665  # only the classifier learns
    assert float(model.optimizer.learning_rate) == pytest.approx(2e-5)


def test_fine_tune_unfreezes_block5_only(space: Any) -> None:
    hp = FixedHP({"mode": "fine_tune", "augment": True})
    model = space.build(hp)
    base = model.layers[6]  # after Rescaling and the five augmentation layers
    assert {layer.name for layer in base.layers if layer.trainable_weights} == {
        "block5_conv1", "block5_conv2", "block5_conv3"}
    assert _trainable(model) == 2_097_665 + 3 * 2_359_808
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)
    assert "fine_tune_learning_rate" in hp.values and "learning_rate" not in hp.values


def test_trace_names_ranges_and_defaults(space: Any) -> None:
    trace = trace_space(space)
    specs = {s.name: s for s in trace.specs}
    unconditional = {n for n, s in specs.items() if not s.conditional}
    assert {"mode", "learning_rate", "augment", "dense_units", "dropout", "optimizer",
            "epochs", "batch_size", "early_stopping", "reduce_lr_on_plateau"} == unconditional
    conditional = {n for n, s in specs.items() if s.conditional}
    assert {"early_stopping_patience", "reduce_lr_factor", "reduce_lr_patience"} <= conditional
    assert specs["mode"].values == ("feature_extraction", "fine_tune")
    assert specs["learning_rate"].sampling == "log"
    assert trace.fit == {"epochs": 30, "batch_size": 20, "callbacks": []}


def test_without_weights_loading_fails_early_and_clearly(
    book_space: Callable[[str], Any], write_pets: Callable[..., Path]
) -> None:
    space = book_space("cats_vs_dogs_vgg16")  # no SEARCH_VGG16_WEIGHTS, offline, empty cache
    with pytest.raises(DataNotFoundError, match=VGG16_NOTOP):
        space.load_data(write_pets())
    with pytest.raises(DataNotFoundError, match=VGG16_NOTOP):
        space.module.build(DefaultHP())


def test_weights_file_in_the_data_dir_is_used(
    book_space: Callable[[str], Any], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = book_space("cats_vs_dogs_vgg16")
    (data_dir / VGG16_NOTOP).write_bytes(b"not really weights")
    space.module._data_dir = data_dir
    assert space.module.weights() == str(data_dir / VGG16_NOTOP)
    monkeypatch.setenv("SEARCH_VGG16_WEIGHTS", str(data_dir / VGG16_NOTOP))
    assert space.module.weights() == str(data_dir / VGG16_NOTOP)
    monkeypatch.setenv("SEARCH_VGG16_WEIGHTS", str(data_dir / "missing.h5"))
    with pytest.raises(DataNotFoundError, match=r"missing\.h5"):
        space.module.weights()


def test_one_epoch_trial(space: Any, write_pets: Callable[..., Path],
                         run_default: Callable[..., Any]) -> None:
    space.module.SPLIT = (8, 4, 4)
    space.module.IMAGE_SIZE = (64, 64)  # 150x150: 30 s instead of 5 s here, same code path
    result = run_default(space, write_pets(n_good=8), epochs=1, batch_size=16)
    assert result.oof.shape == (12, 1)
