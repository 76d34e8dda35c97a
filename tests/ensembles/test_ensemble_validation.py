"""Invalid input is refused with an ``EnsembleError`` that names what was expected and got."""

from __future__ import annotations

import numpy as np
import pytest

from ensembles import (
    AverageEnsemble,
    BaseEnsemble,
    BestSingle,
    GreedyEnsemble,
    NelderMeadEnsemble,
)
from search.errors import EnsembleError, UsageError


def probabilities(n_members: int = 3, n_rows: int = 8, n_classes: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.1, 1.0, size=(n_members, n_rows, n_classes))
    return raw / raw.sum(axis=-1, keepdims=True)


LABELS = np.array([0, 1, 2, 3, 0, 1, 2, 3])


def test_ensemble_error_is_a_usage_error() -> None:
    assert issubclass(EnsembleError, UsageError)


def test_one_member_is_refused() -> None:
    with pytest.raises(EnsembleError, match="Number of members must be at least 2; got 1"):
        BestSingle(loss="log_loss").fit(probabilities(n_members=1), LABELS)


def test_members_of_different_shapes_are_named() -> None:
    members = list(probabilities())
    members[2] = members[2][:-1]

    with pytest.raises(EnsembleError, match=r"member 2 has shape \(7, 4\) but member 0 .*\(8, 4\)"):
        BestSingle(loss="log_loss").fit(members, LABELS)


def test_predictions_of_wrong_rank_are_refused() -> None:
    with pytest.raises(EnsembleError, match=r"got shape \(3, 8, 4, 1\)"):
        BestSingle(loss="log_loss").fit(probabilities()[..., None], LABELS)


def test_non_numeric_predictions_are_refused() -> None:
    with pytest.raises(EnsembleError, match="numeric"):
        AverageEnsemble().fit([["a", "b"], ["c", "d"]])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_predictions_are_located(bad: float) -> None:
    predictions = np.random.default_rng(0).normal(size=(3, 10))
    predictions[1, 7] = bad

    with pytest.raises(EnsembleError, match=r"1 NaN or infinite .*member 1, row 7"):
        NelderMeadEnsemble(loss="mse").fit(predictions, np.zeros(10))


def test_rows_not_summing_to_one_are_refused() -> None:
    predictions = probabilities()
    predictions[2, 5] *= 0.9

    with pytest.raises(EnsembleError, match=r"member 2, row 5 sum to 0\.9; expected 1"):
        GreedyEnsemble(loss="log_loss").fit(predictions, LABELS)


def test_probabilities_outside_unit_interval_are_refused() -> None:
    predictions = np.full((2, 4), 0.5)
    predictions[0, 1] = 1.5

    with pytest.raises(EnsembleError, match=r"probabilities in \[0, 1\]; got values .* to 1\.5"):
        BestSingle(loss="log_loss").fit(predictions, np.array([0, 1, 0, 1]))


def test_regression_predictions_need_not_be_probabilities() -> None:
    predictions = np.full((2, 4), 7.5)

    BestSingle(loss="mse").fit(predictions, np.zeros(4))


def test_y_with_wrong_row_count_is_refused() -> None:
    with pytest.raises(EnsembleError, match="y has 7 rows but predictions have 8 rows"):
        BestSingle(loss="log_loss").fit(probabilities(), LABELS[:7])


def test_label_outside_classes_is_refused() -> None:
    labels = LABELS.copy()
    labels[3] = 4

    with pytest.raises(EnsembleError, match=r"label 4 at row 3; expected integer labels 0\.\.3"):
        BestSingle(loss="log_loss").fit(probabilities(), labels)


def test_binary_labels_must_be_zero_or_one() -> None:
    with pytest.raises(EnsembleError, match=r"label 2 .*labels 0\.\.1"):
        BestSingle(loss="log_loss").fit(np.full((2, 3), 0.5), np.array([0, 1, 2]))


def test_bad_one_hot_row_is_refused() -> None:
    one_hot = np.eye(4)[LABELS]
    one_hot[6] = [1, 1, 0, 0]

    with pytest.raises(EnsembleError, match=r"row 6 .*expected exactly one 1"):
        BestSingle(loss="log_loss").fit(probabilities(), one_hot)


def test_regression_target_shape_must_match_outputs() -> None:
    predictions = np.zeros((2, 5, 3))

    with pytest.raises(EnsembleError, match=r"y has shape \(5,\) .*expected y of shape \(5, 3\)"):
        BestSingle(loss="mse").fit(predictions, np.zeros(5))


def test_without_a_loss_y_is_required_to_infer_it_except_for_the_average() -> None:
    with pytest.raises(EnsembleError, match="`y` is required to infer the loss"):
        NelderMeadEnsemble().fit(probabilities())
    AverageEnsemble().fit(probabilities())  # the average needs no loss


def test_y_is_required_with_a_loss() -> None:
    with pytest.raises(EnsembleError, match="`y` is required"):
        BestSingle(loss="log_loss").fit(probabilities())


def test_r2_of_constant_target_is_refused() -> None:
    with pytest.raises(EnsembleError, match=r"r2.*constant y"):
        BestSingle(loss="r2").fit(np.random.default_rng(0).normal(size=(2, 6)), np.ones(6))


@pytest.mark.parametrize(
    ("ensemble", "message"),
    [
        (NelderMeadEnsemble(loss="mse", restarts=0), "`restarts` must be an integer >= 1; got 0"),
        (NelderMeadEnsemble(loss="mse", max_iter=0), "`max_iter` must be an integer >= 1; got 0"),
        (NelderMeadEnsemble(loss="mse", tol=-1.0), "`tol` must be a positive number; got -1.0"),
        (GreedyEnsemble(loss="mse", max_iter=-1), "`max_iter` must be an integer >= 0; got -1"),
        (GreedyEnsemble(loss="mse", n_init=4), r"`n_init` must be at most .*\(3\); got 4"),
        (GreedyEnsemble(loss="mse", n_init=True), "`n_init` must be an integer >= 1; got True"),
        (
            GreedyEnsemble(loss="mse", n_init=2, max_members=1),
            r"`n_init` must be at most `max_members` \(1\); got 2",
        ),
        (GreedyEnsemble(loss="mse", max_members=0), "`max_members` must be an integer >= 1"),
    ],
)
def test_bad_parameters_are_named_at_fit(ensemble: BaseEnsemble, message: str) -> None:
    predictions = np.random.default_rng(0).normal(size=(3, 6))

    with pytest.raises(EnsembleError, match=message):
        ensemble.fit(predictions, np.zeros(6))


def test_non_finite_target_is_located() -> None:
    y = np.zeros(6)
    y[4] = np.nan

    with pytest.raises(EnsembleError, match=r"y has 1 rows with NaN .*first at row 4"):
        BestSingle(loss="mse").fit(np.random.default_rng(0).normal(size=(2, 6)), y)
