"""GreedyEnsemble follows Caruana et al.'s selection step by step."""

from __future__ import annotations

import numpy as np
import pytest

from ensembles import GreedyEnsemble

# y = 0 on two rows. Member MSEs: A = 4, B = 1, C = 9. By hand (n_init=1):
#   init         {B}        mean [-1, -1]        mse 1
#   step 1 adds A {A, B}    mean [0.5, 0.5]      mse 0.25   (B+B: 1, B+C: 2.5)
#   step 2 adds B {A, 2B}   mean [0, 0]          mse 0      (+A: 1, +C: 10/9)
#   step 3 adds B {A, 3B}   mean [-0.25, -0.25]  mse 0.0625 (+A: 0.25, +C: 0.5625)
# The best iteration is step 2: weights A 1/3, B 2/3, C 0.
Y = np.zeros(2)
MEMBERS = np.array([[2.0, 2.0], [-1.0, -1.0], [3.0, -3.0]])


def test_matches_the_hand_computed_selection() -> None:
    ensemble = GreedyEnsemble(loss="mse", max_iter=3).fit(MEMBERS, Y)

    np.testing.assert_allclose(ensemble.loss_curve_, [1.0, 0.25, 0.0, 0.0625])
    np.testing.assert_array_equal(ensemble.counts_, [1, 2, 0])
    np.testing.assert_allclose(ensemble.weights_, [1 / 3, 2 / 3, 0.0])
    assert ensemble.loss_ == 0.0


def test_sorted_initialisation_starts_from_the_n_init_best() -> None:
    ensemble = GreedyEnsemble(loss="mse", max_iter=0, n_init=2).fit(MEMBERS, Y)

    np.testing.assert_array_equal(ensemble.counts_, [1, 1, 0])  # B (mse 1) and A (mse 4)
    np.testing.assert_allclose(ensemble.loss_curve_, [0.25])


def test_keeps_the_best_iteration_not_the_last() -> None:
    ensemble = GreedyEnsemble(loss="mse", max_iter=20).fit(MEMBERS, Y)

    assert ensemble.loss_ == ensemble.loss_curve_.min()
    assert ensemble.loss_curve_[-1] >= ensemble.loss_
    assert ensemble.counts_.sum() == 3


def test_ties_go_to_the_first_member() -> None:
    members = np.array([[1.0, 1.0], [1.0, 1.0], [5.0, 5.0]])

    ensemble = GreedyEnsemble(loss="mse", max_iter=5).fit(members, np.zeros(2))

    np.testing.assert_array_equal(ensemble.counts_, [1, 0, 0])


def test_weights_are_rational_with_the_selection_count() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.normal(size=50)
        members = y + rng.normal(size=(5, 50)) * rng.uniform(0.5, 2, size=(5, 1))

        ensemble = GreedyEnsemble(loss="rmse", max_iter=15, n_init=2).fit(members, y)

        total = ensemble.counts_.sum()
        np.testing.assert_allclose(ensemble.weights_ * total, ensemble.counts_, atol=1e-12)
        assert ensemble.loss_ <= ensemble.loss_curve_[0]


@pytest.mark.parametrize("loss", ["log_loss", "accuracy"])
def test_classification_losses_never_get_worse_than_the_start(loss: str) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=80)
    raw = rng.uniform(0.05, 1, size=(4, 80, 3))
    raw[:, np.arange(80), y] += rng.uniform(0, 1, size=(4, 1))
    predictions = raw / raw.sum(axis=-1, keepdims=True)

    ensemble = GreedyEnsemble(loss=loss, max_iter=10).fit(predictions, y)

    assert ensemble.loss_ == ensemble.loss_curve_.min()
    assert ensemble.loss_ <= ensemble.loss_curve_[0]


def test_max_members_caps_distinct_members_and_records_the_selection_order() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=300)
    # independent errors of similar size: every member helps, so without a cap all join
    predictions = y + rng.uniform(0.8, 1.2, size=(6, 1)) * rng.normal(size=(6, 300))

    free = GreedyEnsemble(loss="mse", max_iter=40).fit(predictions, y)
    capped = GreedyEnsemble(loss="mse", max_iter=40, max_members=3).fit(predictions, y)

    assert np.count_nonzero(free.counts_) > 3
    assert np.count_nonzero(capped.counts_) == 3
    assert set(capped.selection_order_) == set(np.flatnonzero(capped.counts_))
    assert capped.selection_order_[0] == int(np.argmin(((predictions - y) ** 2).mean(axis=1)))
    assert capped.loss_ >= free.loss_ - 1e-12
