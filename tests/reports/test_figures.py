"""Figure choices that decide what a reader can see: far-off scores, log-scaled losses."""

from __future__ import annotations

import pytest

from reports.figures import focus_range, history_figure, learning_curves_figure
from reports.series import Curve, History


def test_a_diverged_trial_does_not_flatten_the_history() -> None:
    scores = [2.6, 2.5, 2.7, 2.45, 18.4, 2.55, 14.0, 2.52]
    lo, hi = focus_range(scores, "minimize") or (0.0, 0.0)
    assert lo < 2.45 and 2.7 < hi < 14.0
    fig = history_figure(History(trials=tuple(range(8)), scores=tuple(scores),
                                 best_so_far=tuple(min(scores[: i + 1]) for i in range(8)),
                                 default=0, others={}), "mae", "minimize")
    assert tuple(fig.layout.yaxis.range) == (lo, hi)
    assert "2 trials off the chart" in fig.layout.annotations[0].text


@pytest.mark.parametrize("scores", [[2.6, 2.5, 2.7, 2.45, 2.55, 2.52], [1.0, 2.0], []])
def test_scores_without_far_outliers_keep_plotlys_range(scores: list[float]) -> None:
    assert focus_range(scores, "minimize") is None


def test_for_accuracy_the_bad_side_is_low() -> None:
    scores = [0.97, 0.975, 0.972, 0.968, 0.1, 0.971]
    lo, hi = focus_range(scores, "maximize") or (0.0, 0.0)
    assert 0.1 < lo < 0.968 and hi > 0.975
    assert focus_range(scores, "minimize") is None  # 0.1 is the best if lower is better


def test_losses_spanning_decades_get_a_log_axis() -> None:
    steep = Curve(trial=1, fold=0, best_epoch=3,
                  series={"loss": (500.0, 40.0, 9.0, 5.0), "val_loss": (400.0, 30.0, 10.0, 8.0)})
    flat = Curve(trial=1, fold=0, best_epoch=3,
                 series={"loss": (1.2, 1.0, 0.9), "val_loss": (1.3, 1.1, 1.0)})
    assert learning_curves_figure([steep]).layout.yaxis.type == "log"
    assert learning_curves_figure([flat]).layout.yaxis.type in (None, "linear", "-")
