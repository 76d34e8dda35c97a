"""``spaces/imdb.py``: uint8 multi-hot vectors and the book's 16-16-1 network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.datasets import imdb
from search.hp import DefaultHP, FixedHP
from search.space import trace_space


@pytest.fixture
def space(book_space: Callable[[str], Any]) -> Any:
    return book_space("imdb")


def test_multi_hot_is_uint8_and_marks_exactly_the_words(
    space: Any, write_imdb: Callable[..., Path]
) -> None:
    data_dir = write_imdb()
    (x, y), (xt, _) = space.load_data(data_dir)
    assert x.dtype == np.uint8 and xt.dtype == np.uint8
    assert x.shape == (40, 10_000) and xt.shape == (20, 10_000)
    assert set(np.unique(x)) <= {0, 1}
    (seqs, _), (seqs_test, _) = imdb(data_dir, num_words=10_000)
    for row, seq in zip(np.concatenate([x, xt]), [*seqs, *seqs_test], strict=True):
        assert set(np.flatnonzero(row)) == set(seq)
    assert x[:, 2].any()  # ranks >= num_words became oov_char 2, as Keras does
    assert y.dtype == np.int64 and set(y) == {0, 1}


def test_trace_names_ranges_and_defaults(space: Any) -> None:
    trace = trace_space(space)
    specs = {s.name: s for s in trace.specs}
    unconditional = {n for n, s in specs.items() if not s.conditional}
    assert {"activation", "dropout", "batchnorm", "l2", "layers", "units_0", "units_1",
            "optimizer", "learning_rate", "loss", "epochs", "batch_size", "early_stopping",
            "reduce_lr_on_plateau"} == unconditional
    conditional = {n for n, s in specs.items() if s.conditional}
    assert {"early_stopping_patience", "reduce_lr_factor", "reduce_lr_patience"} <= conditional
    assert specs["learning_rate"].sampling == "log"
    assert specs["loss"].values == ("binary_crossentropy", "mse")
    assert trace.fit == {"epochs": 4, "batch_size": 512, "callbacks": []}


def test_default_point_is_the_books_network(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    assert layers_of(model) == [("Dense", 16, "relu"), ("Dense", 16, "relu"),
                                ("Dense", 1, "sigmoid")]
    assert model.count_params() == 160_305
    assert type(model.optimizer).__name__ == "RMSprop"
    assert model.loss == "binary_crossentropy"


def test_conditionals(space: Any, layers_of: Callable) -> None:
    hp = FixedHP({"layers": 3, "batchnorm": True, "dropout": 0.5, "l2": 1e-3})
    model = space.build(hp)
    kinds = [row[0] for row in layers_of(model)]
    assert kinds.count("Dense") == 4 and kinds.count("BatchNormalization") == 3
    assert kinds.count("Dropout") == 3 and "units_2" in hp.values
    assert model.layers[0].kernel_regularizer is not None


def test_one_epoch_trial(space: Any, write_imdb: Callable[..., Path],
                         run_default: Callable[..., Any]) -> None:
    result = run_default(space, write_imdb(), epochs=1, batch_size=64)
    assert result.oof.shape == (40, 1)


def test_one_epoch_trial_streamed(space: Any, write_imdb: Callable[..., Path],
                                  run_default: Callable[..., Any],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Real IMDB (1 GB as float32) is streamed in float32 batches: the model must take them."""
    from search import feeding

    monkeypatch.setattr(feeding, "STREAM_BYTES", 0)
    result = run_default(space, write_imdb(), epochs=1, batch_size=64)
    assert result.oof.shape == (40, 1)
