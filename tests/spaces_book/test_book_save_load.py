"""Every book space's model survives ``.keras`` save/load (trials keep fold models).

This caught Keras 3.15's ``RandomShear(x_factor=s)``, which saves ``(-s, s)`` and then
refuses to load it; the spaces pass ``(0, s)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from search.hp import DefaultHP, FixedHP

CASES = {
    "boston_housing": ({"loss": "huber", "optimizer": "sgd", "l2": 1e-3},
                       lambda rng: rng.normal(size=(3, 13)).astype(np.float32)),
    "mnist_dense": ({"label_smoothing": 0.1, "optimizer": "adamw", "input_dropout": 0.2,
                     "batchnorm": True}, lambda rng: rng.random((3, 784), dtype=np.float32)),
    "mnist_cnn": ({}, lambda rng: rng.random((3, 28, 28, 1), dtype=np.float32)),
    "imdb": ({}, lambda rng: rng.integers(0, 2, (3, 10_000)).astype(np.float32)),
    "imdb_conv1d": ({}, lambda rng: rng.integers(0, 2000, (3, 500)).astype(np.int32)),
    "reuters": ({}, lambda rng: rng.integers(0, 2, (3, 10_000)).astype(np.float32)),
    "cats_vs_dogs": ({}, lambda rng: rng.integers(0, 256, (3, 150, 150, 3)).astype(np.float32)),
    "cats_vs_dogs_vgg16": ({"mode": "fine_tune", "augment": True},
                           lambda rng: rng.integers(0, 256, (3, 64, 64, 3)).astype(np.float32)),
}


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.parametrize("name", sorted(CASES))
def test_default_model_round_trips(name: str, book_space: Callable[[str], Any], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_VGG16_WEIGHTS", "none")
    space = book_space(name)
    if name == "cats_vs_dogs_vgg16":
        space.module.IMAGE_SIZE = (64, 64)
    params, make_x = CASES[name]
    model = space.build(FixedHP(params) if params else DefaultHP())
    x = make_x(np.random.default_rng(0))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
