"""search.results.model_bytes: a fold model's ``.keras`` bytes, made without Keras
rebuilding its attribute skip sets on every save — and the same file as Keras' own save."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from search import results


def _model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0)  # optimizer and metric state exist
    return model


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_model_bytes_is_keras_own_file_and_round_trips(tmp_path: Path) -> None:
    model = _model()
    ours = results.model_bytes(model)
    model.save(tmp_path / "plain.keras")
    keras.backend.clear_session()  # Keras' global state empty again: its own save
    plain = _members((tmp_path / "plain.keras").read_bytes())
    mine = _members(ours)
    assert mine.keys() == plain.keys()
    assert mine["config.json"] == plain["config.json"]  # the same objects were walked
    path = tmp_path / "ours.keras"
    path.write_bytes(ours)
    loaded = keras.models.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value))


def test_a_save_after_clear_session_constructs_no_reference_objects(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras makes a reference Layer/Optimizer per save to learn which attributes to skip;
    with the skip sets put where it looks, a save constructs none (each fold's save follows
    a clear_session, which empties Keras' global state)."""
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    model = _model()
    results.model_bytes(model)  # the process's skip sets are computed once
    made: list[str] = []
    real = BaseOptimizer.__init__

    def counting(self: object, *a: object, **k: object) -> None:
        made.append(type(self).__name__)
        real(self, *a, **k)

    monkeypatch.setattr(BaseOptimizer, "__init__", counting)
    keras.backend.clear_session()
    results.model_bytes(model)
    assert made == []
    monkeypatch.setattr(results, "_seed_skipsets", lambda: None)  # Keras alone
    keras.backend.clear_session()
    results.model_bytes(model)
    assert made == ["Optimizer"]  # what the test would see without the seeding
