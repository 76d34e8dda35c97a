"""``search.callbacks.book_callbacks``: the book's callbacks as switchable, tunable choices."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pytest

from search.callbacks import MONITOR, book_callbacks
from search.hp import DefaultHP, FixedHP, RecordingHP


def test_default_point_adds_no_callback_but_defines_both_switches() -> None:
    hp = RecordingHP()
    assert book_callbacks(hp) == []
    assert set(hp.specs) == {"early_stopping", "reduce_lr_on_plateau"}
    assert all(s.kind == "boolean" and s.default is False for s in hp.specs.values())


def test_switches_on_give_the_books_settings_watching_val_loss() -> None:
    hp = FixedHP({"early_stopping": True, "reduce_lr_on_plateau": True})
    stop, reduce = book_callbacks(hp)
    assert isinstance(stop, keras.callbacks.EarlyStopping)
    assert (stop.monitor, stop.patience, stop.restore_best_weights) == (MONITOR, 1, True)
    assert isinstance(reduce, keras.callbacks.ReduceLROnPlateau)
    assert (reduce.monitor, reduce.factor, reduce.patience) == ("val_loss", 0.1, 10)
    specs = hp.specs
    assert (specs["early_stopping_patience"].low, specs["early_stopping_patience"].high) == (1, 10)
    assert (specs["reduce_lr_factor"].low, specs["reduce_lr_factor"].high) == (0.1, 0.5)
    assert specs["reduce_lr_factor"].grid() == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_defaults_can_switch_them_on_and_values_are_searchable() -> None:
    assert len(book_callbacks(DefaultHP(), early_stopping_default=True)) == 1
    hp = FixedHP({"reduce_lr_on_plateau": True, "reduce_lr_factor": 0.5,
                  "reduce_lr_patience": 3})
    (reduce,) = book_callbacks(hp)
    assert (reduce.factor, reduce.patience) == (0.5, 3)


def test_each_call_gives_fresh_callbacks() -> None:
    hp = FixedHP({"early_stopping": True})
    assert book_callbacks(hp)[0] is not book_callbacks(hp)[0]


def test_import_stays_light() -> None:
    code = "import sys, search, search.callbacks; assert 'keras' not in sys.modules, 'keras'"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_early_stopping_runs_inside_a_real_trial(
    book_space: Callable[[str], Any], write_imdb: Callable[..., Path],
    run_default: Callable[..., Any],
) -> None:
    """val_loss exists in every fold fit, so both callbacks work through run_trial."""
    space = book_space("imdb")
    result = run_default(space, write_imdb(), epochs=2, batch_size=64, early_stopping=True,
                         reduce_lr_on_plateau=True, reduce_lr_patience=1)
    assert result.record.params["early_stopping"] is True
    assert all(f.val_loss is not None for f in result.record.folds)
