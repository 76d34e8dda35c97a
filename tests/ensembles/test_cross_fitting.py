"""Cross-fitted shrinkage: weights fitted on their own rows must beat the equal average on
rows they never saw, or be pulled back towards it (real numpy members, no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from ensembles import AverageEnsemble, BaseEnsemble, BestSingle, GreedyEnsemble, NelderMeadEnsemble
from search.errors import EnsembleError


def memorising_members(
    seed: int, n_fit: int = 60, n_test: int = 4000, n_groups: int = 3
) -> tuple[np.ndarray, ...]:
    """Three honest members (error sd 1 everywhere) and one that memorised the rows of group
    0 (error sd 0.05 there, 1 on the other fitting rows, 3 on new rows): its fitting-row
    loss flatters it, the way a trial overfit to its CV does."""
    rng = np.random.default_rng(seed)
    y, y_test = rng.normal(size=n_fit), rng.normal(size=n_test)
    groups = np.repeat(np.arange(n_groups), n_fit // n_groups)
    honest = y + rng.normal(size=(3, n_fit))
    honest_test = y_test + rng.normal(size=(3, n_test))
    memorised = np.where(groups == 0, 0.05, 1.0) * rng.normal(size=n_fit)
    overfit, overfit_test = y + memorised, y_test + 3.0 * rng.normal(size=n_test)
    return (np.vstack([honest, overfit]), y, groups, np.vstack([honest_test, overfit_test]), y_test)


def held_out_mse(weights: np.ndarray, predictions: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((weights @ predictions - y) ** 2))


LEARNERS = {
    "nelder_mead": lambda: NelderMeadEnsemble(random_state=0),
    "greedy": lambda: GreedyEnsemble(),
}


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_shrinkage_rescues_weights_that_overfit_the_fitting_rows(name: str) -> None:
    predictions, y, groups, test_predictions, y_test = memorising_members(seed=7)
    equal = np.full(4, 0.25)

    ensemble = LEARNERS[name]().fit(predictions, y, groups=groups)

    unshrunk = held_out_mse(ensemble.unshrunk_weights_, test_predictions, y_test)
    shrunk = held_out_mse(ensemble.weights_, test_predictions, y_test)
    assert ensemble.unshrunk_weights_[3] > 0.28  # the memorising member is favoured ...
    assert unshrunk > held_out_mse(equal, test_predictions, y_test) * 1.1  # ... and that loses
    assert ensemble.shrinkage_ == 1.0 and shrunk == pytest.approx(
        held_out_mse(equal, test_predictions, y_test)
    )
    assert ensemble.cv_loss_ == pytest.approx(ensemble.cv_loss_equal_)
    assert ensemble.cv_losses_[0] > ensemble.cv_loss_  # held-out rows saw through it
    assert ensemble.loss_ == pytest.approx(ensemble.score(predictions, y))


def test_shrinkage_helps_out_of_sample_on_average_over_seeds() -> None:
    """Not on every draw (where the learned weights happened to *under*-weight the memorising
    member, shrinking gives some weight back), but clearly on average."""
    shrunk, unshrunk, shrinkages = [], [], []
    for seed in range(8):
        predictions, y, groups, test_predictions, y_test = memorising_members(seed)
        ensemble = NelderMeadEnsemble(random_state=0, restarts=3).fit(predictions, y, groups=groups)
        shrinkages.append(ensemble.shrinkage_)
        shrunk.append(held_out_mse(ensemble.weights_, test_predictions, y_test))
        unshrunk.append(held_out_mse(ensemble.unshrunk_weights_, test_predictions, y_test))
    assert np.mean(shrunk) < 0.8 * np.mean(unshrunk)
    assert min(shrinkages) >= 0.25


def test_weights_that_generalise_are_kept() -> None:
    rng = np.random.default_rng(0)
    n_fit, n_test = 90, 4000
    y, y_test = rng.normal(size=n_fit), rng.normal(size=n_test)
    scale = np.array([1.0, 1.0, 1.0, 0.3])[:, None]  # member 3 is truly better, everywhere
    predictions = y + scale * rng.normal(size=(4, n_fit))
    test_predictions = y_test + scale * rng.normal(size=(4, n_test))

    ensemble = NelderMeadEnsemble(random_state=0).fit(predictions, y, groups=np.arange(n_fit) % 3)

    assert ensemble.shrinkage_ <= 0.25
    assert held_out_mse(ensemble.weights_, test_predictions, y_test) < 0.6 * held_out_mse(
        np.full(4, 0.25), test_predictions, y_test
    )


def test_without_groups_nothing_is_shrunk() -> None:
    predictions, y, *_ = memorising_members(seed=7)

    ensemble = NelderMeadEnsemble(random_state=0).fit(predictions, y)

    assert ensemble.shrinkage_ == 0.0 and ensemble.cv_loss_ is None
    np.testing.assert_array_equal(ensemble.weights_, ensemble.unshrunk_weights_)


def test_ties_go_to_more_shrinkage_and_the_average_is_its_own_cross_fit() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=30)
    same = np.tile(y + rng.normal(size=30), (3, 1))  # identical members: every weight ties
    groups = np.arange(30) % 3

    best = BestSingle().fit(same, y, groups=groups)
    average = AverageEnsemble(loss="mse").fit(same, y, groups=groups)

    assert best.shrinkage_ == 1.0
    np.testing.assert_allclose(best.weights_, np.full(3, 1 / 3))
    assert average.cv_loss_ == pytest.approx(average.cv_loss_equal_)
    assert average.cv_loss_equal_ == pytest.approx(average.loss_)


def test_cross_fitting_classification_with_log_loss() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=60)
    logits = (2 * y - 1) * np.array([[0.5], [1.0], [2.0]]) + rng.normal(size=(3, 60))
    probabilities = 1 / (1 + np.exp(-logits))

    ensemble = GreedyEnsemble().fit(probabilities, y, groups=np.arange(60) % 4)

    assert ensemble.loss_used_ == "log_loss" and ensemble.task_ == "classification"
    assert ensemble.shrinkage_ in {0.0, 0.25, 0.5, 0.75, 1.0}
    assert ensemble.cv_losses_.shape == (5,)
    assert ensemble.cv_loss_ == pytest.approx(ensemble.cv_losses_.min())


@pytest.mark.parametrize(
    ("ensemble", "groups", "message"),
    [
        (NelderMeadEnsemble(), np.zeros(12), "at least 2 distinct ids; got 1"),
        (NelderMeadEnsemble(), np.arange(5), r"shape \(12,\), one id per row; got shape \(5,\)"),
        (GreedyEnsemble(shrinkages=(0.5, 2.0)), np.arange(12) % 2, r"in \[0, 1\]"),
        (AverageEnsemble(), np.arange(12) % 2, "needs a loss"),
    ],
)
def test_bad_groups_and_grids_are_named(
    ensemble: BaseEnsemble, groups: np.ndarray, message: str
) -> None:
    predictions = np.random.default_rng(0).normal(size=(3, 12))
    y = None if isinstance(ensemble, AverageEnsemble) else np.zeros(12)

    with pytest.raises(EnsembleError, match=message):
        ensemble.fit(predictions, y, groups=groups)
