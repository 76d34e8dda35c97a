"""TrialRecord.to_json: exactly what ``dataclasses.asdict`` gives (built without its
per-element walk), independent of the record, and read back to an equal record."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from search.store import FoldRecord, TrialRecord, _jsonable, write_json


def _record() -> TrialRecord:
    folds = [FoldRecord(fold=k, score=2.0 + k, best_epoch=3, epochs_run=5, seed=10 + k,
                        fit_seconds=0.5, seconds=0.7, batch_size=16, train_loss=1.5,
                        val_loss=float("nan") if k == 1 else 2.5,
                        history={"loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.5]},
                        seeds=2, seed_best_epochs=[3, 4], stacked=k % 2 == 0)
             for k in range(3)]
    return TrialRecord(number=7, status="complete",
                       params={"units": 64, "schedule": [1, [2, 3]], "name": "x"},
                       score=3.0, score_std=0.8, folds=folds, n_folds=3, seed=1,
                       backend_id="7", started=1.0, finished=2.0, seconds=1.0,
                       error=None, models_kept=True, worker=1, node="n", resumed=1,
                       keras_backend="jax")


def _text(record: TrialRecord) -> str:
    """The record as written (NaN compares unequal to itself; its JSON null does not)."""
    return json.dumps(_jsonable(record.to_json()))


def test_to_json_is_asdict() -> None:
    record = _record()
    assert record.to_json() == dataclasses.asdict(record)
    assert list(record.to_json()) == list(dataclasses.asdict(record))  # same key order
    assert list(record.to_json()["folds"][0]) == list(dataclasses.asdict(record.folds[0]))


def test_to_json_shares_nothing_mutable_with_the_record() -> None:
    record = _record()
    data = record.to_json()
    data["params"]["schedule"][1].append(4)
    data["folds"][0]["history"]["loss"].append(0.0)
    data["folds"][0]["seed_best_epochs"].append(9)
    data["folds"].pop()
    assert _text(record) == _text(_record())


def test_written_and_read_back_is_the_same_record() -> None:
    record = _record()
    back = TrialRecord.from_json(json.loads(json.dumps(_jsonable(record.to_json()))))
    assert back.folds[1].val_loss is None  # NaN is written as null
    assert _text(back) == _text(record)


def test_written_json_is_the_same_json_curves_on_one_line(tmp_path: Path) -> None:
    data = {"a": 1, "empty": {}, "none": [], "nested": [[1, 2], {"x": [0.5, None]}],
            "text": "é \"q\"", "record": _record().to_json(), "flag": True, "n": None}
    path = tmp_path / "r.json"
    write_json(path, data)
    text = path.read_text()
    assert json.loads(text) == json.loads(json.dumps(_jsonable(data), indent=2))
    assert text.endswith("}\n") and '\n  "a": 1,\n' in text  # indented objects
    assert '"loss": [3.0, 2.0, 1.5]' in text  # a learning curve on one line
