"""NelderMeadEnsemble finds known optima on the simplex and never loses to the equal average."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from ensembles import AverageEnsemble, NelderMeadEnsemble
from ensembles.nelder_mead import angles_to_weights, weights_to_angles


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def noisy_classifiers(
    rng: np.random.Generator, n_members: int, n_rows: int = 200, n_classes: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, n_classes, size=n_rows)
    logits = rng.normal(size=(n_members, n_rows, n_classes)) * 1.5
    logits[:, np.arange(n_rows), y] += rng.uniform(0.0, 2.0, size=(n_members, 1))
    return softmax(logits), y


def test_angles_map_onto_the_simplex_and_back() -> None:
    rng = np.random.default_rng(0)
    for n_members in (2, 3, 7):
        for angles in rng.normal(scale=3.0, size=(20, n_members - 1)):
            weights = angles_to_weights(angles)
            assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0, abs=1e-15)
        for weights in [*rng.dirichlet(np.ones(n_members), size=5), *np.eye(n_members)]:
            np.testing.assert_allclose(
                angles_to_weights(weights_to_angles(weights)), weights, atol=1e-14
            )


def test_zero_weight_is_reached_at_a_finite_angle() -> None:
    weights = angles_to_weights(np.array([np.pi / 2, 0.3]))

    assert weights[0] < 1e-30
    assert weights[1:].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("perfect", [0, 2])
def test_a_perfect_classifier_gets_all_the_weight(perfect: int) -> None:
    rng = np.random.default_rng(1)
    predictions, y = noisy_classifiers(rng, n_members=4)
    predictions[perfect] = np.eye(4)[y]

    ensemble = NelderMeadEnsemble(loss="log_loss", random_state=0).fit(predictions, y)

    assert ensemble.weights_[perfect] == pytest.approx(1.0, abs=1e-3)
    assert ensemble.loss_ < 1e-2


def test_recovers_the_weights_that_generated_the_target() -> None:
    rng = np.random.default_rng(2)
    members = rng.normal(size=(3, 300))
    y = 0.3 * members[0] + 0.7 * members[1]  # member 2 is noise

    ensemble = NelderMeadEnsemble(loss="mse", random_state=0).fit(members, y)

    np.testing.assert_allclose(ensemble.weights_, [0.3, 0.7, 0.0], atol=2e-3)


def test_identical_members_share_what_one_copy_would_get() -> None:
    rng = np.random.default_rng(3)
    predictions, y = noisy_classifiers(rng, n_members=2)
    single = NelderMeadEnsemble(loss="log_loss", random_state=0).fit(predictions, y)
    doubled = NelderMeadEnsemble(loss="log_loss", random_state=0).fit(
        np.stack([predictions[0], predictions[0], predictions[1]]), y
    )

    assert doubled.weights_[0] + doubled.weights_[1] == pytest.approx(single.weights_[0], abs=0.01)
    assert doubled.loss_ == pytest.approx(single.loss_, abs=1e-6)


@pytest.mark.parametrize("loss", ["log_loss", "accuracy"])
def test_never_worse_than_the_equal_average_on_its_fitting_data(loss: str) -> None:
    rng = np.random.default_rng(4)
    for _ in range(8):
        predictions, y = noisy_classifiers(rng, int(rng.integers(2, 6)), n_rows=60)
        average = AverageEnsemble(loss=loss).fit(predictions, y)

        ensemble = NelderMeadEnsemble(loss=loss, restarts=2, random_state=0).fit(predictions, y)

        assert ensemble.loss_ <= average.loss_


def test_is_reproducible_with_a_seed_and_records_each_restart() -> None:
    predictions, y = noisy_classifiers(np.random.default_rng(5), n_members=5)

    first = NelderMeadEnsemble(loss="log_loss", restarts=4, random_state=7).fit(predictions, y)
    second = NelderMeadEnsemble(loss="log_loss", restarts=4, random_state=7).fit(predictions, y)

    np.testing.assert_array_equal(first.weights_, second.weights_)
    assert first.restart_losses_.shape == (4,)
    assert first.loss_ == pytest.approx(first.restart_losses_.min(), rel=1e-12)
    assert isinstance(first.n_iter_, int) and first.n_iter_ > 0


def test_regression_beats_every_member_when_errors_cancel() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=400)
    common = rng.normal(size=400)
    members = np.stack([y + common, y - common, y + rng.normal(size=400) * 3])

    ensemble = NelderMeadEnsemble(loss="mae", random_state=0).fit(members, y)

    assert ensemble.weights_[0] == pytest.approx(ensemble.weights_[1], abs=0.02)
    assert ensemble.loss_ < min(np.mean(np.abs(member - y)) for member in members) / 2


def test_stopping_early_warns() -> None:
    predictions, y = noisy_classifiers(np.random.default_rng(7), n_members=5)

    with pytest.warns(ConvergenceWarning, match="max_iter"):
        NelderMeadEnsemble(loss="log_loss", max_iter=2, restarts=1).fit(predictions, y)
