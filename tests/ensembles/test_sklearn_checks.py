"""scikit-learn's own estimator checks, and construction with defaults (loss inferred)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from ensembles import AverageEnsemble, BaseEnsemble, BestSingle, GreedyEnsemble, NelderMeadEnsemble
from search.errors import NotFittedError

LAYOUT = (
    "our X is member predictions (n_members, n_rows), so sklearn's (n_samples, "
    "n_features) X with n_samples targets does not fit y"
)

#: Checks that cannot pass, and why. Everything else sklearn runs must pass.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    **{
        name: LAYOUT
        for name in (
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_pipeline_consistency",
            "check_estimators_nan_inf",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit2d_predict1d",
        )
    },
    "check_positive_only_tag_during_fit": LAYOUT + " (it fails on the layout, not the sign)",
    "check_complex_data": LAYOUT + " (the row check fires before the complex check)",
    "check_fit2d_1sample": "1 sample is 1 member to us: refused as 'at least 2 members', "
    "not in sklearn's words",
    "check_fit2d_1feature": "1 feature is 1 row to us; the row-count message differs",
    "check_estimators_empty_data_messages": "an empty X is refused for its members/rows, "
    "not in sklearn's words for features",
}

ESTIMATORS = [
    NelderMeadEnsemble(restarts=2),
    GreedyEnsemble(max_iter=5),
    BestSingle(),
    AverageEnsemble(),
]


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=lambda _: EXPECTED_FAILED_CHECKS, xfail_strict=True
)  # a listed check that starts passing fails here
def test_sklearn_estimator_checks(estimator: BaseEnsemble, check: object) -> None:
    check(estimator)  # type: ignore[operator]


@pytest.mark.parametrize("cls", [NelderMeadEnsemble, GreedyEnsemble, BestSingle, AverageEnsemble])
def test_defaults_infer_the_loss_and_round_trip(cls: type[BaseEnsemble]) -> None:
    rng = np.random.default_rng(0)
    y_reg = rng.normal(size=40)
    regression = y_reg + rng.normal(size=(3, 40))
    y_bin = rng.integers(0, 2, size=40)
    binary = np.clip(0.5 + (y_bin - 0.5) * rng.uniform(0, 0.8, size=(3, 40)), 0, 1)
    y_multi = rng.integers(0, 3, size=40)
    raw = rng.uniform(size=(3, 40, 3)) + 2 * np.eye(3)[y_multi]
    multiclass = raw / raw.sum(axis=-1, keepdims=True)

    estimator = cls()
    with pytest.raises(NotFittedError):
        estimator.predict(regression)
    with pytest.raises(SklearnNotFittedError):
        estimator.predict(regression)
    for predictions, y, loss in [
        (regression, y_reg, "mse"),
        (binary, y_bin, "log_loss"),
        (multiclass, y_multi, "log_loss"),
        (multiclass, np.eye(3)[y_multi], "log_loss"),
    ]:
        fitted = clone(estimator)
        assert fitted.fit(predictions, y) is fitted
        assert fitted.loss_used_ == loss and fitted.loss is None
        assert fitted.loss_ == pytest.approx(fitted.score(predictions, y))
    assert clone(estimator).get_params() == estimator.get_params()


def test_explicit_task_and_loss_win_over_the_inference() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=30).astype(float)  # 0/1: could be either task
    predictions = rng.uniform(size=(2, 30))

    assert BestSingle().fit(predictions, y).loss_used_ == "log_loss"
    assert BestSingle(task="regression").fit(predictions, y).loss_used_ == "mse"
    assert BestSingle(task="classification", loss="mae").fit(predictions, y).task_ == (
        "regression"
    )  # the loss implies its task
    assert BestSingle().fit(predictions * 3, y).loss_used_ == "mse"  # not probabilities
