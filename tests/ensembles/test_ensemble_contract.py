"""One contract suite, run against every ensemble: the scikit-learn conventions and the
simplex guarantees hold whatever the estimator and the task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone

from ensembles import AverageEnsemble, BaseEnsemble, BestSingle, GreedyEnsemble, NelderMeadEnsemble
from search.errors import EnsembleError, NotFittedError

Factory = Callable[[str], BaseEnsemble]

FACTORIES: dict[str, Factory] = {
    "average": lambda loss: AverageEnsemble(loss=loss),
    "best_single": lambda loss: BestSingle(loss=loss),
    "greedy": lambda loss: GreedyEnsemble(loss=loss, max_iter=10),
    "nelder_mead": lambda loss: NelderMeadEnsemble(loss=loss, restarts=3, random_state=0),
}

LOSS_OF_TASK = {"binary": "log_loss", "multiclass": "log_loss", "regression": "mse"}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Factory:
    return FACTORIES[request.param]


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def make_task(
    task: str, rng: np.random.Generator, n_members: int = 4, n_rows: int = 60, n_classes: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Member predictions of differing quality and their targets, for one task."""
    quality = rng.uniform(0.2, 2.0, size=n_members)
    if task == "regression":
        y = rng.normal(size=n_rows)
        noise = rng.normal(size=(n_members, n_rows)) / quality[:, None]
        return y + noise, y
    if task == "binary":
        y = rng.integers(0, 2, size=n_rows)
        logits = (2 * y - 1) * quality[:, None] + rng.normal(size=(n_members, n_rows))
        return 1.0 / (1.0 + np.exp(-logits)), y
    y = rng.integers(0, n_classes, size=n_rows)
    logits = rng.normal(size=(n_members, n_rows, n_classes))
    logits[:, np.arange(n_rows), y] += quality[:, None]
    return softmax(logits), y


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_weights_are_on_the_simplex_for_random_inputs(make: Factory, task: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        n_members = int(rng.integers(2, 7))
        predictions, y = make_task(task, rng, n_members=n_members, n_rows=int(rng.integers(5, 80)))
        ensemble = make(LOSS_OF_TASK[task]).fit(predictions, y)
        assert ensemble.weights_.dtype == np.float64
        assert ensemble.weights_.shape == (n_members,)
        assert np.all(ensemble.weights_ >= 0.0)
        assert ensemble.weights_.sum() == pytest.approx(1.0, abs=1e-12)
        assert ensemble.n_members_ == n_members


@pytest.mark.parametrize(
    ("task", "member_shape"),
    [("binary", (30,)), ("binary", (30, 1)), ("multiclass", (30, 3)), ("regression", (30,))],
)
def test_predict_is_the_weighted_average_in_the_members_shape(
    make: Factory, task: str, member_shape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(1)
    predictions, y = make_task(task, rng, n_rows=30)
    predictions = predictions.reshape(predictions.shape[0], *member_shape)
    ensemble = make(LOSS_OF_TASK[task]).fit(predictions, y)
    new_predictions, _ = make_task(task, rng, n_rows=30)
    new_predictions = new_predictions.reshape(predictions.shape)

    predicted = ensemble.predict(new_predictions)

    assert predicted.shape == member_shape
    expected = sum(w * member for w, member in zip(ensemble.weights_, new_predictions, strict=True))
    np.testing.assert_allclose(predicted, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_list_input_equals_stacked_input(make: Factory, task: str) -> None:
    predictions, y = make_task(task, np.random.default_rng(2))

    from_array = make(LOSS_OF_TASK[task]).fit(predictions, y)
    from_list = make(LOSS_OF_TASK[task]).fit(list(predictions), y)

    np.testing.assert_array_equal(from_array.weights_, from_list.weights_)
    np.testing.assert_array_equal(
        from_array.predict(predictions), from_list.predict(list(predictions))
    )


def test_fit_returns_self_and_score_repeats_loss(make: Factory) -> None:
    predictions, y = make_task("multiclass", np.random.default_rng(3))
    ensemble = make("log_loss")

    assert ensemble.fit(predictions, y) is ensemble
    assert ensemble.score(predictions, y) == pytest.approx(ensemble.loss_, rel=1e-12)


def test_predict_and_score_before_fit_raise_not_fitted(make: Factory) -> None:
    predictions, y = make_task("regression", np.random.default_rng(4))
    ensemble = make("mse")

    with pytest.raises(NotFittedError, match="not fitted"):
        ensemble.predict(predictions)
    with pytest.raises(NotFittedError, match="not fitted"):
        ensemble.score(predictions, y)


def test_wrong_member_count_at_predict_names_both_counts(make: Factory) -> None:
    rng = np.random.default_rng(5)
    predictions, y = make_task("regression", rng, n_members=3)
    ensemble = make("mse").fit(predictions, y)
    more, _ = make_task("regression", rng, n_members=4)

    with pytest.raises(EnsembleError, match=r"predictions has 4 members .* fitted on 3"):
        ensemble.predict(more)


def test_wrong_output_shape_at_predict_is_refused(make: Factory) -> None:
    rng = np.random.default_rng(6)
    predictions, y = make_task("multiclass", rng, n_classes=3)
    ensemble = make("log_loss").fit(predictions, y)
    four_classes, _ = make_task("multiclass", rng, n_classes=4)

    with pytest.raises(EnsembleError, match=r"\(4,\) but fit got \(3,\)"):
        ensemble.predict(four_classes)


def test_params_round_trip_and_clone(make: Factory) -> None:
    ensemble = make("mse")
    params: dict[str, Any] = ensemble.get_params()

    assert params["loss"] == "mse"
    assert ensemble.set_params(loss="mae") is ensemble
    assert ensemble.get_params()["loss"] == "mae"
    copy = clone(ensemble)
    assert copy.get_params() == ensemble.get_params()
    assert not hasattr(copy, "weights_")


def test_init_only_stores_and_fit_validates(make: Factory) -> None:
    predictions, y = make_task("regression", np.random.default_rng(7))
    ensemble = make("no_such_loss")  # accepted by __init__, as scikit-learn requires

    with pytest.raises(EnsembleError, match=r"`loss` must be one of .*got 'no_such_loss'"):
        ensemble.fit(predictions, y)


def test_float32_predictions_fit_like_float64_and_predict_float64(make: Factory) -> None:
    predictions, y = make_task("multiclass", np.random.default_rng(8))
    single = predictions.astype(np.float32)
    single /= single.sum(axis=-1, keepdims=True)

    from_float32 = make("log_loss").fit(single, y)
    from_float64 = make("log_loss").fit(single.astype(np.float64), y)

    np.testing.assert_allclose(from_float32.weights_, from_float64.weights_, atol=1e-6)
    assert from_float32.predict(single).dtype == np.float64


def test_refit_replaces_everything_learned(make: Factory) -> None:
    rng = np.random.default_rng(9)
    first, y_first = make_task("regression", rng, n_members=3)
    second, y_second = make_task("regression", rng, n_members=5)
    ensemble = make("mse").fit(first, y_first)

    ensemble.fit(second, y_second)

    assert ensemble.n_members_ == 5 and ensemble.weights_.shape == (5,)
    assert ensemble.loss_ == pytest.approx(ensemble.score(second, y_second), rel=1e-12)
