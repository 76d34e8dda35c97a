"""The space contract explains itself: the default point's output is checked against TASK.

Measured before the check: a 3-class task with 1 output unit failed every trial inside
TensorFlow and exited 0; a binary 2-unit softmax crashed scoring ("cannot reshape array of
size 426 into shape (213,)"); a 1-unit linear output on 3 classes "completed" at accuracy
0.33. Now the first two are exit 2 naming the file, the layer and the fix, and 2-unit
softmax is a first-class binary head whose predictions are the positive-class column.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import pytest

from search.errors import SpaceError
from search.metrics import METRICS, class_labels
from search.modelio import predict
from search.space import check_outputs
from search.store import RunStore

pytestmark = pytest.mark.timeout(600)


def _flat(text: str) -> str:
    """CLI output with Rich's line wrapping undone."""
    return re.sub(r"\s+", " ", text)


def _exit_2(run_cli: Any, space: Path, out: Path) -> str:
    res = run_cli("run", space, "--trials", "2", "--out", out)
    assert res.returncode == 2, res.stdout + res.stderr
    assert not out.exists() or not any(out.iterdir()), "no run directory may be created"
    message = _flat(res.stderr)
    assert str(space) in message
    return message


def test_three_classes_one_unit_is_exit_2_naming_file_and_layer(tmp_path: Path, run_cli,
                                                                 spaces_dir: Path) -> None:
    message = _exit_2(run_cli, spaces_dir / "out_multiclass_one_unit.py", tmp_path / "runs")
    assert "the last layer 'head' (Dense, 1 unit, sigmoid)" in message
    assert "3 classes" in message
    assert 'keras.layers.Dense(3, activation="softmax")' in message


def test_one_unit_linear_on_three_classes_is_exit_2(tmp_path: Path, run_cli,
                                                    spaces_dir: Path) -> None:
    message = _exit_2(run_cli, spaces_dir / "out_multiclass_linear.py", tmp_path / "runs")
    assert "(Dense, 1 unit, linear)" in message and "TASK 'multiclass'" in message


def test_regression_width_mismatch_is_exit_2(tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    message = _exit_2(run_cli, spaces_dir / "out_regression_width.py", tmp_path / "runs")
    assert "the last layer 'wide_head' (Dense, 2 units, linear)" in message
    assert "keras.layers.Dense(1)" in message


def test_binary_two_unit_softmax_runs_scores_and_ensembles(tmp_path: Path, run_cli,
                                                           spaces_dir: Path) -> None:
    res = run_cli("run", spaces_dir / "out_binary_softmax.py", "--trials", "3", "--out",
                  tmp_path, "--name", "sm", "--sampler", "random", "--top", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    store = RunStore(tmp_path / "sm")
    y = store.load_array("y_train.npy")
    fold_of = store.load_array("folds.npy")
    metric = METRICS["log_loss"]
    trials = store.trials()
    assert len(trials) == 3 and all(t.status == "complete" for t in trials), trials
    for t in trials:
        oof = store.load_oof(t.number)
        assert oof.shape == (len(y), 1)
        assert store.load_test(t.number).shape == (16, 1)
        for f in t.folds:
            rows = fold_of == f.fold
            assert metric(y[rows], oof[rows], "binary") == pytest.approx(f.score, rel=1e-4)
    # The stored column is the softmax's positive class, and scoring it equals scoring the
    # raw (n, 2) softmax rows: what a 1-column positive-class prediction gives.
    best = store.ranked("minimize")[0]
    space_x = _space_x(spaces_dir / "out_binary_softmax.py")
    paths = store.model_paths(best.number)
    assert len(paths) == 2
    for fold, path in enumerate(paths):
        rows = fold_of == fold
        model = keras.models.load_model(path, compile=False)
        raw = model.predict(space_x[rows], verbose=0)
        assert raw.shape == (int(rows.sum()), 2)
        np.testing.assert_allclose(store.load_oof(best.number)[rows, 0], raw[:, 1], atol=1e-6)
        assert metric(y[rows], raw, "binary") == pytest.approx(
            metric(y[rows], raw[:, 1:], "binary"), rel=1e-9)
    ensemble = json.loads((tmp_path / "sm" / "ensemble.json").read_text())
    assert ensemble and "final ensemble" in res.stdout  # fitted on the top 2's (n, 1) OOF
    from search import load_experiment

    model = load_experiment(tmp_path / "sm").ensemble(top=2)
    pred = model.predict(_space_x(spaces_dir / "out_binary_softmax.py", test=True))
    assert pred.shape == (16, 1) and np.all((pred >= 0) & (pred <= 1))


def _space_x(path: Path, *, test: bool = False) -> np.ndarray:
    from search.space import load_space

    (x_train, _), (x_test, _) = load_space(path).load_data(None)
    return np.asarray(x_test if test else x_train)


def test_binary_one_unit_sigmoid_runs(tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    res = run_cli("run", spaces_dir / "out_binary_sigmoid.py", "--trials", "2", "--out",
                  tmp_path, "--name", "sig", "--top", "0")
    assert res.returncode == 0, res.stdout + res.stderr
    store = RunStore(tmp_path / "sig")
    assert [t.status for t in store.trials()] == ["complete", "complete"]
    assert store.load_oof(0).shape == (48, 1)


# ---- the rules, in-process (no run): each head against each task -----------------------

def _space(task: str) -> Any:
    return SimpleNamespace(task=task, path=Path("/spaces/mine.py"), _preprocessor=None)


def _model(*layers: Any) -> Any:
    return keras.Sequential([keras.Input((4,)), *layers])


D = keras.layers.Dense
Y3 = np.arange(30) % 3
Y2 = np.arange(30) % 2


@pytest.mark.parametrize(("task", "layers", "y"), [
    ("binary", [D(1, activation="sigmoid")], Y2),
    ("binary", [D(2, activation="softmax")], Y2),
    ("binary", [D(2), keras.layers.Softmax()], Y2),
    ("binary", [D(1, activation="sigmoid")], Y2.reshape(-1, 1).astype("float32")),
    ("binary", [D(1, activation=lambda t: keras.ops.sigmoid(t))], Y2),  # custom: not judged
    ("multiclass", [D(3, activation="softmax")], Y3),
    ("multiclass", [D(3), keras.layers.Activation("softmax")], Y3),
    ("multiclass", [D(3, activation="softmax"), keras.layers.Dropout(0.2)], Y3),
    ("multiclass", [D(4, activation="softmax")], Y3),  # a class absent from the labels
    ("multiclass", [D(3, activation="softmax")], np.eye(3)[Y3]),
    ("regression", [D(1)], Y3.astype("float32")),
    ("regression", [D(2, activation="relu")], np.c_[Y3, Y3].astype("float32")),
])
def test_accepted_heads(task: str, layers: list[Any], y: np.ndarray) -> None:
    check_outputs(_space(task), _model(*layers), y, y[:6])


@pytest.mark.parametrize(("task", "layers", "y", "says"), [
    ("multiclass", [D(1, name="d")], Y3, "'d' (Dense, 1 unit, linear) gives 1 output"),
    ("multiclass", [D(3, name="d")], Y3, "has no softmax"),
    ("multiclass", [D(3), keras.layers.Activation("relu", name="a")], Y3,
     "'a' (Activation, 3 units, relu)"),
    ("multiclass", [D(3, name="d"), keras.layers.Dropout(0.1)], Y3,
     "the output layer 'd' (Dense, 3 units, linear), followed by Dropout"),
    ("multiclass", [D(4, activation="softmax")], np.eye(3)[Y3], "one-hot with 3 columns"),
    ("multiclass", [D(3, activation="softmax")], Y3 + 0.5, "int class labels"),
    ("binary", [D(1, name="d")], Y2, "'d' (Dense, 1 unit, linear) has no sigmoid"),
    ("binary", [D(1, activation="softmax")], Y2, "softmax over 1 unit is always 1"),
    ("binary", [D(2, activation="sigmoid")], Y2, "has no softmax"),
    ("binary", [D(3, activation="softmax")], Y2, "gives 3 outputs"),
    ("binary", [D(1, activation="sigmoid")], Y3, "needs 0/1 labels"),
    ("binary", [D(2, activation="softmax")], np.eye(2)[Y2], "y.argmax(axis=1)"),
    ("regression", [D(1)], np.c_[Y3, Y3].astype("float32"), "targets have 2 columns"),
])
def test_rejected_heads(task: str, layers: list[Any], y: np.ndarray, says: str) -> None:
    with pytest.raises(SpaceError) as err:
        check_outputs(_space(task), _model(*layers), y)
    assert str(err.value).startswith("/spaces/mine.py: ")
    assert says in str(err.value)


def test_test_labels_count_too() -> None:
    with pytest.raises(SpaceError, match="3 classes"):
        check_outputs(_space("multiclass"), _model(D(2, activation="softmax")), Y2, Y3)


def test_model_without_input_is_built_on_the_first_rows() -> None:
    model = keras.Sequential([D(1, name="late")])
    with pytest.raises(SpaceError, match="'late' \\(Dense, 1 unit, linear\\)"):
        check_outputs(_space("multiclass"), model, Y3, x_sample=np.zeros((30, 4), "float32"))


def test_predict_gives_the_positive_column_for_binary_softmax() -> None:
    model = _model(D(2, activation="softmax"))
    x = np.random.default_rng(0).normal(size=(7, 4)).astype("float32")
    raw = model.predict(x, verbose=0)
    np.testing.assert_allclose(predict(model, x, task="binary"), raw[:, 1:], atol=1e-7)
    assert predict(model, x).shape == (7, 2)  # other tasks: as Keras returns it
    assert predict(model, x, task="multiclass").shape == (7, 2)


def test_metrics_take_two_column_binary_predictions_and_one_hot_labels() -> None:
    p = np.linspace(0.05, 0.95, 30)
    two = np.c_[1 - p, p]
    for name in ("accuracy", "log_loss", "auc"):
        one = METRICS[name](Y2, p[:, None], "binary")
        assert METRICS[name](Y2, two, "binary") == pytest.approx(one)
        assert METRICS[name](np.eye(2)[Y2], p[:, None], "binary") == pytest.approx(one)
    np.testing.assert_array_equal(class_labels(np.eye(2)[Y2], "binary"), Y2)


def test_regression_metrics_score_a_multi_column_target() -> None:
    y = np.c_[np.arange(10.0), -np.arange(10.0)]
    assert METRICS["mae"](y, y + np.array([0.5, 1.5]), "regression") == pytest.approx(1.0)
    assert METRICS["mae"](y[:, 0], y[:, :1] + 0.5, "regression") == pytest.approx(0.5)
    assert METRICS["r2"](y, y, "regression") == pytest.approx(1.0)
