"""The precomputed objectives equal scikit-learn's metrics on the weighted average, and each
named loss goes the documented way (metrics where higher is better are negated)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn import metrics

from ensembles import NAMED_LOSSES, AverageEnsemble, BestSingle
from ensembles._losses import EPS, resolve_loss
from ensembles._objectives import Objective, make_objective
from ensembles._validation import check_predictions, check_target
from search.errors import EnsembleError

Metric = Callable[[np.ndarray, np.ndarray], float]


def objective_for(loss: str, predictions: np.ndarray, y: np.ndarray) -> Objective:
    spec = resolve_loss(loss)
    members = check_predictions(predictions, task=spec.task)
    return make_objective(spec, members, check_target(y, members, spec.task))


def weighted(weights: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, predictions, axes=1)


def random_weights(rng: np.random.Generator, n_members: int) -> list[np.ndarray]:
    """Interior points, vertices and a point on a face of the simplex."""
    face = rng.dirichlet(np.ones(n_members))
    face[0] = 0.0
    return [*rng.dirichlet(np.ones(n_members), size=4), *np.eye(n_members), face / face.sum()]


def multiclass(rng: np.random.Generator, n_rows: int, n_classes: int = 5) -> np.ndarray:
    raw = rng.exponential(size=(4, n_rows, n_classes)) ** 3
    return raw / raw.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("n_rows", [7, 20, 103])  # below, at and past one block of rows
def test_multiclass_log_loss_equals_sklearn(n_rows: int) -> None:
    rng = np.random.default_rng(n_rows)
    predictions = multiclass(rng, n_rows)
    y = rng.integers(0, 5, size=n_rows)
    objective = objective_for("log_loss", predictions, y)

    for weights in random_weights(rng, 4):
        expected = metrics.log_loss(y, weighted(weights, predictions), labels=range(5))
        assert objective(weights) == pytest.approx(expected, rel=1e-12)


def test_log_loss_clips_zero_and_one_probabilities() -> None:
    rng = np.random.default_rng(0)
    predictions = multiclass(rng, 60, n_classes=2)
    y = rng.integers(0, 2, size=60)
    predictions[0, :10] = np.eye(2)[1 - y[:10]]  # member 0 certain and wrong on 10 rows
    predictions[1, 10:20] = np.eye(2)[y[10:20]]  # member 1 certain and right on 10 rows
    objective = objective_for("log_loss", predictions, y)

    for weights in random_weights(rng, 4):
        p_true = np.clip(weighted(weights, predictions)[np.arange(60), y], EPS, 1 - EPS)
        assert objective(weights) == pytest.approx(-np.mean(np.log(p_true)), rel=1e-12)
    assert objective(np.array([1.0, 0, 0, 0])) < -np.log(EPS)  # large but finite


@pytest.mark.parametrize("shape", [(4, 50), (4, 50, 1)])
def test_binary_log_loss_uses_positive_class_probability(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    predictions = rng.uniform(0.01, 0.99, size=shape)
    y = rng.integers(0, 2, size=50)
    objective = objective_for("log_loss", predictions, y)

    for weights in random_weights(rng, 4):
        expected = metrics.log_loss(y, weighted(weights, predictions).reshape(50))
        assert objective(weights) == pytest.approx(expected, rel=1e-12)


def test_one_hot_and_label_targets_give_the_same_loss() -> None:
    rng = np.random.default_rng(2)
    predictions = multiclass(rng, 30)
    y = rng.integers(0, 5, size=30)
    weights = rng.dirichlet(np.ones(4))

    from_labels = objective_for("log_loss", predictions, y)(weights)
    from_one_hot = objective_for("log_loss", predictions, np.eye(5)[y])(weights)

    assert from_labels == pytest.approx(from_one_hot, rel=1e-15)


@pytest.mark.parametrize(
    ("loss", "metric", "sign"),
    [
        ("mse", metrics.mean_squared_error, 1.0),
        ("rmse", metrics.root_mean_squared_error, 1.0),
        ("mae", metrics.mean_absolute_error, 1.0),
        ("r2", metrics.r2_score, -1.0),
    ],
)
@pytest.mark.parametrize("n_outputs", [None, 3])
def test_regression_losses_equal_sklearn(
    loss: str, metric: Metric, sign: float, n_outputs: int | None
) -> None:
    rng = np.random.default_rng(3)
    shape = (40,) if n_outputs is None else (40, n_outputs)
    y = rng.normal(size=shape) * 10 + 5
    predictions = y + rng.normal(size=(4, *shape)) * rng.uniform(
        0.5, 3, size=(4,) + (1,) * len(shape)
    )
    objective = objective_for(loss, predictions, y)

    for weights in random_weights(rng, 4):
        expected = sign * metric(y, weighted(weights, predictions))
        assert objective(weights) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("shape", [(4, 50), (4, 50, 3)])
def test_accuracy_is_negated(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(4)
    raw = rng.uniform(0.05, 1, size=shape)
    predictions = raw / raw.sum(axis=-1, keepdims=True) if len(shape) == 3 else raw
    y = rng.integers(0, shape[-1] if len(shape) == 3 else 2, size=50)
    objective = objective_for("accuracy", predictions, y)

    for weights in random_weights(rng, 4):
        averaged = weighted(weights, predictions)
        labels = averaged.argmax(axis=-1) if len(shape) == 3 else (averaged > 0.5).astype(int)
        assert objective(weights) == pytest.approx(-metrics.accuracy_score(y, labels))


def test_named_losses_document_their_direction() -> None:
    higher_is_better = {name for name, spec in NAMED_LOSSES.items() if spec.greater_is_better}

    assert higher_is_better == {"accuracy", "r2"}


def test_best_single_by_accuracy_picks_the_most_accurate_member() -> None:
    y = np.array([0, 1, 1, 0, 1])
    predictions = np.array(
        [
            [0.9, 0.1, 0.2, 0.8, 0.3],  # 0 right
            [0.2, 0.7, 0.8, 0.1, 0.6],  # 5 right
            [0.4, 0.6, 0.4, 0.4, 0.4],  # 3 right
        ]
    )

    ensemble = BestSingle(loss="accuracy").fit(predictions, y)

    assert ensemble.best_index_ == 1
    assert ensemble.loss_ == -1.0


def test_callable_loss_receives_y_as_given_and_predictions_in_member_shape() -> None:
    rng = np.random.default_rng(5)
    y = np.eye(3)[rng.integers(0, 3, size=12)]  # one-hot, passed through untouched
    predictions = multiclass(rng, 12, n_classes=3)
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def brier(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        seen.append((y_true.shape, y_pred.shape))
        return float(np.mean((y_true - y_pred) ** 2))

    ensemble = AverageEnsemble(loss=brier).fit(predictions, y)

    assert seen == [((12, 3), (12, 3))]
    assert ensemble.loss_ == pytest.approx(brier(y, predictions.mean(axis=0)))


def test_search_objective_approximates_log_loss_closely() -> None:
    rng = np.random.default_rng(6)
    predictions = multiclass(rng, 500)
    y = rng.integers(0, 5, size=500)
    exact = objective_for("log_loss", predictions, y)
    search = exact.for_search()

    for weights in random_weights(rng, 4):
        assert search(weights) == pytest.approx(exact(weights), rel=1e-6)


def test_non_finite_callable_loss_is_refused() -> None:
    predictions = np.random.default_rng(7).normal(size=(3, 6))

    with pytest.raises(EnsembleError, match="nan at the fitted weights; expected a finite"):
        AverageEnsemble(loss=lambda y, p: float("nan")).fit(predictions, np.zeros(6))
