"""``spaces/cats_vs_dogs.py``: a PetImages folder with junk files, the book's augmented convnet."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from search.errors import DataNotFoundError
from search.hp import DefaultHP, FixedHP
from search.space import trace_space

AUGMENTATION = ["RandomRotation", "RandomTranslation", "RandomShear", "RandomZoom",
                "RandomFlip"]
CONVNET = [
    ("Conv2D", 32, (3, 3), "relu"), ("MaxPooling2D", (2, 2)),
    ("Conv2D", 64, (3, 3), "relu"), ("MaxPooling2D", (2, 2)),
    ("Conv2D", 128, (3, 3), "relu"), ("MaxPooling2D", (2, 2)),
    ("Conv2D", 128, (3, 3), "relu"), ("MaxPooling2D", (2, 2)),
    ("Flatten",),
]


@pytest.fixture
def space(book_space: Callable[[str], Any]) -> Any:
    return book_space("cats_vs_dogs")


def test_default_point_is_the_books_augmented_convnet(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    rows = layers_of(model)
    assert rows[0] == ("Rescaling",) and [r[0] for r in rows[1:6]] == AUGMENTATION
    assert rows[6:] == [*CONVNET, ("Dropout", 0.5), ("Dense", 512, "relu"),
                        ("Dense", 1, "sigmoid")]
    assert model.count_params() == 3_453_121  # the book's summary
    rotation = model.layers[1]
    assert rotation.factor == pytest.approx((-40 / 360, 40 / 360))
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-4)


def test_plain_book_model_is_a_point_of_the_space(space: Any, layers_of: Callable) -> None:
    hp = FixedHP({"augment": False, "dropout": 0.0, "epochs": 30, "batch_size": 20})
    rows = layers_of(space.build(hp))
    assert rows == [("Rescaling",), *CONVNET, ("Dense", 512, "relu"), ("Dense", 1, "sigmoid")]
    assert space.fit_settings(hp)["epochs"] == 30
    assert "rotation_degrees" not in hp.values  # augmentation settings are conditional


def test_trace_names_ranges_and_defaults(space: Any) -> None:
    trace = trace_space(space)
    specs = {s.name: s for s in trace.specs}
    unconditional = {n for n, s in specs.items() if not s.conditional}
    assert {"augment", "rotation_degrees", "width_shift", "height_shift", "shear", "zoom",
            "horizontal_flip", "activation", "batchnorm", "conv_blocks", "filters_0",
            "filters_1", "filters_2", "filters_3", "dropout", "dense_units", "optimizer",
            "learning_rate", "epochs", "batch_size", "early_stopping",
            "reduce_lr_on_plateau"} == unconditional
    conditional = {n for n, s in specs.items() if s.conditional}
    assert {"early_stopping_patience", "reduce_lr_factor", "reduce_lr_patience"} <= conditional
    assert specs["learning_rate"].sampling == "log"
    assert trace.fit == {"epochs": 100, "batch_size": 32, "callbacks": []}


def test_augmentation_is_training_only(space: Any) -> None:
    model = space.build(DefaultHP())
    x = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3)).astype("float32")
    augmented = keras.Sequential(model.layers[:6])
    np.testing.assert_allclose(augmented(x, training=False), x / 255, rtol=1e-6, atol=1e-6)
    assert not np.allclose(augmented(x, training=True), x / 255, atol=1e-3)


def test_missing_folder_names_the_fix(space: Any, data_dir: Path) -> None:
    with pytest.raises(DataNotFoundError, match="PetImages"):
        space.load_data(data_dir)
    with pytest.raises(DataNotFoundError, match="SEARCH_CATS_DOGS_DIR"):
        space.load_data(None)


def test_junk_files_are_skipped_and_counted(
    space: Any, write_pets: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = write_pets(n_good=8)
    with pytest.raises(DataNotFoundError, match="too few readable images"):
        space.load_data(data_dir)  # the book's 2,000/1,000/1,000 needs more than 8 per class
    space.module.SCALE_DOWN = True
    with caplog.at_level(logging.WARNING):
        (x, y), (xt, _) = space.load_data(data_dir)
    assert len(space.module.SKIPPED) == 6  # per class: empty, truncated, Thumbs.db
    assert "skipped 6 unusable image files" in caplog.text
    assert x.shape == (12, 150, 150, 3) and x.dtype == np.uint8  # train + validation
    assert xt.shape == (4, 150, 150, 3) and sorted(np.bincount(y)) == [6, 6]


def test_one_epoch_trial(space: Any, write_pets: Callable[..., Path],
                         run_default: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
                         ) -> None:
    monkeypatch.setenv("SEARCH_CATS_DOGS_DIR", str(write_pets(n_good=8) / "PetImages"))
    space.module.SPLIT = (8, 4, 4)
    result = run_default(space, None, epochs=1, batch_size=16)
    assert result.oof.shape == (12, 1)
