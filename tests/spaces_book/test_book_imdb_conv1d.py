"""``spaces/imdb_conv1d.py``: padded index sequences and the book's 1D convnet."""

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
    return book_space("imdb_conv1d")


def test_sequences_are_padded_and_cut_to_500(space: Any, write_imdb: Callable[..., Path]) -> None:
    data_dir = write_imdb(max_len=700)
    (x, _), (xt, _) = space.load_data(data_dir)
    assert x.shape == (40, 500) and xt.shape == (20, 500) and x.dtype == np.int32
    assert int(x.max()) < 2000
    (seqs, _), _ = imdb(data_dir, num_words=2000)
    for row, seq in zip(x, seqs, strict=True):  # Keras pads and truncates at the front
        kept = seq[-500:]
        assert list(row[500 - len(kept):]) == kept and not row[: 500 - len(kept)].any()


def test_trace_names_ranges_and_defaults(space: Any) -> None:
    trace = trace_space(space)
    specs = {s.name: s for s in trace.specs}
    unconditional = {n for n, s in specs.items() if not s.conditional}
    assert {"activation", "batchnorm", "kernel_size", "pool_size", "embedding_dim",
            "conv_blocks", "filters_0", "filters_1", "dropout", "optimizer", "learning_rate",
            "epochs", "batch_size", "early_stopping", "reduce_lr_on_plateau"} == unconditional
    conditional = {n for n, s in specs.items() if s.conditional}
    assert {"early_stopping_patience", "reduce_lr_factor", "reduce_lr_patience"} <= conditional
    assert specs["learning_rate"].sampling == "log" and specs["learning_rate"].contains(1e-4)
    assert trace.fit == {"epochs": 20, "batch_size": 128, "callbacks": []}
    assert space.folds == 5  # 80/20 per fold, as the book's validation_split=0.2


def test_default_point_is_the_books_convnet(space: Any, layers_of: Callable) -> None:
    model = space.build(DefaultHP())
    assert layers_of(model) == [
        ("Embedding", 2000, 128), ("Conv1D", 32, (7,), "relu"), ("MaxPooling1D", (5,)),
        ("Conv1D", 32, (7,), "relu"), ("GlobalMaxPooling1D",), ("Dense", 1, "sigmoid"),
    ]
    assert model.count_params() == 291_937  # the book's summary
    assert type(model.optimizer).__name__ == "RMSprop"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)


def test_deepest_widest_point_builds(space: Any) -> None:
    hp = FixedHP({"conv_blocks": 3, "kernel_size": 9, "pool_size": 5, "batchnorm": True,
                  "dropout": 0.5})
    model = space.build(hp)
    assert model.output_shape == (None, 1) and "filters_2" in hp.values


def test_one_epoch_trial(space: Any, write_imdb: Callable[..., Path],
                         run_default: Callable[..., Any]) -> None:
    result = run_default(space, write_imdb(), epochs=1, batch_size=32)
    assert result.oof.shape == (40, 1)
