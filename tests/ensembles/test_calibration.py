"""Temperature scaling of classification members (ensembles.calibration) and its use before
weighting (search.ensembling): a label-smoothed strong member must not lose its weight to a
sharper, worse one."""

from __future__ import annotations

import numpy as np
import pytest

from ensembles import NelderMeadEnsemble
from ensembles.calibration import fit_temperature, scale_probabilities
from search.ensembling import calibrated, member_temperatures


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _calibrated_task(n: int = 6000, classes: int = 10, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is the true class distribution (labels drawn from it)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(n, classes))
    p = _softmax(z)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, y


def test_scaling_keeps_the_argmax_and_the_simplex() -> None:
    z, _ = _calibrated_task(500)
    p = _softmax(z)
    for t in (0.3, 1.0, 4.0):
        q = scale_probabilities(p, t)
        np.testing.assert_array_equal(q.argmax(axis=1), p.argmax(axis=1))
        np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(scale_probabilities(p, 2.0), _softmax(z / 2.0), atol=1e-9)
    b = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(scale_probabilities(b, 1e-6)[[0, 2]], [0.0, 1.0], atol=1e-6)
    assert scale_probabilities(b, 3.0)[1] == pytest.approx(0.5)


@pytest.mark.parametrize("true_t", [0.4, 2.5])
def test_the_fitted_temperature_undoes_a_known_one(true_t: float) -> None:
    z, y = _calibrated_task()
    # a member whose logits are z * (1 / true_t): dividing them by true_t calibrates it
    member = _softmax(z / true_t)
    assert fit_temperature(member, y) == pytest.approx(1 / true_t, rel=0.1)
    assert fit_temperature(_softmax(z), y) == pytest.approx(1.0, rel=0.1)
    onehot = np.eye(10)[y]
    assert fit_temperature(member, onehot) == pytest.approx(fit_temperature(member, y))


def test_binary_members_are_scaled_by_their_logit() -> None:
    rng = np.random.default_rng(1)
    logit = rng.normal(scale=2.0, size=8000)
    y = (rng.random(8000) < 1 / (1 + np.exp(-logit))).astype(int)
    soft = 1 / (1 + np.exp(-logit * 0.3))  # under-confident by 1/0.3
    assert fit_temperature(soft[:, None], y) == pytest.approx(0.3, rel=0.1)
    assert member_temperatures([soft[:, None]], y, "regression") == [1.0]


def test_a_smoothed_strong_member_keeps_its_weight() -> None:
    # full MNIST's case: a 98.7 % member trained with label smoothing (its log loss has a
    # floor of -log 0.91) against a sharp, calibrated 96-97 % one
    rng = np.random.default_rng(3)
    z = rng.normal(scale=30.0, size=(8000, 10))
    y = (_softmax(z).cumsum(axis=1) > rng.random((8000, 1))).argmax(axis=1)
    weak = _softmax(z)  # calibrated by construction
    strong = 0.9 * _softmax(z + 2.0 * np.eye(10)[y]) + 0.01  # knows more, smoothed by 0.1
    acc = [float((m.argmax(1) == y).mean()) for m in (strong, weak)]
    assert acc[0] > acc[1] + 0.02
    raw = [strong.astype(np.float32), weak.astype(np.float32)]
    temps = member_temperatures(raw, y, "multiclass")
    assert temps[0] < 0.6 and temps[1] == pytest.approx(1.0, abs=0.05)
    scaled = calibrated(raw, temps)
    assert scaled[0].dtype == np.float32
    w_raw = NelderMeadEnsemble(random_state=0).fit(raw, y).weights_
    w_cal = NelderMeadEnsemble(random_state=0).fit(scaled, y).weights_
    assert w_raw[0] < 0.2  # log loss on the raw members prefers the worse one ...
    assert w_cal[0] > 0.9  # ... and on the scaled ones the better one
