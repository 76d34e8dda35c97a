"""Plotly figures from the report's plain data (no store access here).

Every user string that reaches a figure (parameter names and values, labels) goes through
:func:`html.escape` first: Plotly draws text as its own small HTML dialect, so an escaped
string is shown literally and can never become markup. Figures use a minimal layout
instead of Plotly's default template, which would add ~6 KB of JSON to every plot of a
report that must stay under ~5 MB with plotly.js embedded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.ensemble import KindSection
from reports.importance import Importance
from reports.leaderboard import Row
from reports.series import Curve, History, Parallel

__all__ = ["ensemble_weights", "focus_range", "fold_spread", "history_figure",
           "importance_figure", "learning_curves_figure", "leave_one_out", "parallel_figure"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
_AXIS = {"gridcolor": "#e5e5e5", "zerolinecolor": "#cccccc", "linecolor": "#999999",
         "showline": True, "automargin": True}


def _layout(fig: go.Figure, *, title: str, height: int = 360, **kwargs: Any) -> go.Figure:
    fig.update_layout(template="none", title={"text": title, "x": 0.01, "font": {"size": 15}},
                      height=height, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      font={"family": "system-ui, sans-serif", "size": 12},
                      plot_bgcolor="white", paper_bgcolor="white",
                      legend={"orientation": "h", "y": -0.2}, **kwargs)
    fig.update_xaxes(**_AXIS)
    fig.update_yaxes(**_AXIS)
    return fig


def focus_range(values: Sequence[float], direction: str) -> tuple[float, float] | None:
    """A y range that leaves out far-off bad scores, or None when every score fits well.

    One diverged trial (a CV MAE of 18 beside a cluster at 2.5) would squash the scores that
    matter into a flat line. The range keeps every value within 6 robust standard deviations
    (1.4826 × the median absolute deviation, which a quarter of diverged trials cannot move)
    of the median on the bad side, and every good-side value; what lies beyond is counted in
    a note on the figure instead of being drawn.
    """
    vals = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if vals.size < 5:
        return None
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) * 1.4826
    reach = 6 * max(mad, 1e-9 * max(1.0, abs(med)))
    worse = vals > med + reach if direction == "minimize" else vals < med - reach
    if not worse.any():
        return None
    kept = vals[~worse]
    lo, hi = float(kept.min()), float(kept.max())
    pad = 0.08 * (hi - lo or abs(med) or 1.0)
    return lo - pad, hi + pad


def _focus(fig: go.Figure, values: Sequence[float], direction: str, what: str) -> None:
    """Apply :func:`focus_range` and say on the figure how many values it leaves out."""
    rng = focus_range(values, direction)
    if rng is None:
        return
    out = sum(1 for v in values if math.isfinite(v) and not rng[0] <= v <= rng[1])
    fig.update_yaxes(range=list(rng))
    fig.add_annotation(text=f"{out} {what} off the chart (far worse; see the leaderboard)",
                       xref="paper", yref="paper", x=1, y=1.02, xanchor="right",
                       yanchor="bottom", showarrow=False, font={"size": 11, "color": "#8a5300"})


def history_figure(h: History, metric: str, direction: str = "minimize") -> go.Figure:
    """CV score per completed trial and the running best (the optimisation history)."""
    m = escape(metric)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(h.trials), y=list(h.scores), mode="markers",
                             name=f"trial CV {m}", marker={"color": PALETTE[0], "size": 7},
                             hovertemplate="trial %{x}<br>" + m + " %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=list(h.trials), y=list(h.best_so_far), mode="lines",
                             line={"shape": "hv", "color": PALETTE[3], "width": 2},
                             name="best so far", hoverinfo="skip"))
    if h.default is not None and h.default in h.trials:
        i = h.trials.index(h.default)
        fig.add_trace(go.Scatter(x=[h.default], y=[h.scores[i]], mode="markers",
                                 name="default point",
                                 marker={"symbol": "star", "size": 14, "color": PALETTE[1]}))
    fig = _layout(fig, title="Optimisation history", xaxis_title="trial",
                  yaxis_title=f"CV {m}")
    _focus(fig, h.scores, direction, "trials")
    return fig


def importance_figure(imp: Importance) -> go.Figure:
    """Horizontal bars, most important parameter on top."""
    names = [escape(n) for n in imp.values][::-1]
    vals = list(imp.values.values())[::-1]
    fig = go.Figure(go.Bar(x=vals, y=names, orientation="h", marker={"color": PALETTE[0]},
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    return _layout(fig, title="Parameter importance (fANOVA)", xaxis_title="share of variance",
                   height=max(240, 60 + 28 * len(names)))


def parallel_figure(p: Parallel, metric: str, direction: str) -> go.Figure:
    """One line per completed trial across its parameters, coloured by CV score."""
    dims: list[dict[str, Any]] = []
    for axis in p.axes:
        label = escape(axis.name)
        if axis.labels:
            dims.append({"label": label, "values": list(axis.values),
                         "tickvals": list(range(len(axis.labels))),
                         "ticktext": [escape(t) for t in axis.labels]})
        elif axis.log:
            dims.append({"label": f"log10 {label}",
                         "values": [math.log10(v) for v in axis.values]})
        else:
            dims.append({"label": label, "values": list(axis.values)})
    dims.append({"label": f"CV {escape(metric)}", "values": list(p.scores)})
    line: dict[str, Any] = {"color": list(p.scores), "colorscale": "Viridis", "showscale": True,
                            "reversescale": direction == "minimize"}
    focus = focus_range(p.scores, direction)
    if focus is not None:  # far-off trials take the end colour instead of flattening the rest
        line["cmin"], line["cmax"] = focus
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line))
    fig = _layout(fig, title="Parallel coordinates (completed trials; yellow = better)",
                  height=420)
    fig.update_layout(margin={"l": 70, "r": 70, "t": 90, "b": 40})
    return fig


def fold_spread(rows: Sequence[Row], metric: str, direction: str = "minimize") -> go.Figure:
    """Per-fold scores of the top trials: is the best trial's lead larger than its noise?"""
    fig = go.Figure()
    for i, r in enumerate(rows):
        name = f"#{r.rank} trial {r.number}"
        fig.add_trace(go.Box(y=list(r.fold_scores), name=name, boxpoints="all", jitter=0.3,
                             pointpos=0, marker={"color": PALETTE[i % len(PALETTE)]},
                             boxmean=True, showlegend=False,
                             hovertemplate=name + "<br>%{y:.4g}<extra></extra>"))
    fig = _layout(fig, title=f"Per-fold CV {escape(metric)} of the top trials",
                  yaxis_title=f"fold {escape(metric)}")
    _focus(fig, [v for r in rows for v in r.fold_scores], direction, "fold scores")
    return fig


def learning_curves_figure(curves: Sequence[Curve]) -> go.Figure:
    """Loss (solid) and val_loss (dashed) per epoch, one panel per trial, one colour per fold."""
    trials = list(dict.fromkeys(c.trial for c in curves))
    fig = make_subplots(rows=1, cols=len(trials), subplot_titles=[f"trial {n}" for n in trials],
                        horizontal_spacing=0.06)
    for c in curves:
        col = trials.index(c.trial) + 1
        color = PALETTE[c.fold % len(PALETTE)]
        for key, series in c.series.items():
            dash = "dash" if key.startswith("val_") else "solid"
            fig.add_trace(go.Scatter(
                x=list(range(1, len(series) + 1)), y=list(series), mode="lines",
                line={"color": color, "dash": dash, "width": 1.5},
                name=f"fold {c.fold + 1} {escape(key)}", legendgroup=f"fold{c.fold}",
                showlegend=col == 1,
                hovertemplate=f"trial {c.trial} fold {c.fold + 1} {escape(key)}"
                              "<br>epoch %{x}: %{y:.4g}<extra></extra>"), row=1, col=col)
    fig = _layout(fig, title="Learning curves of the top trials (solid: loss, dashed: val_loss)",
                  height=380)
    fig.update_xaxes(title_text="epoch")
    values = [v for c in curves for series in c.series.values() for v in series
              if math.isfinite(v)]
    if values and min(values) > 0 and max(values) / min(values) >= 20:
        # first epochs' loss is often 100x the rest: a log axis keeps the tail readable
        fig.update_yaxes(type="log")
        fig.update_layout(title_text="Learning curves of the top trials (solid: loss, dashed: "
                                     "val_loss; log scale)")
    return fig


def ensemble_weights(kind: KindSection) -> go.Figure:
    """Weights each method gave each member, as grouped bars."""
    members = [f"trial {m.trial}" for m in kind.members]
    fig = go.Figure()
    for i, method in enumerate(kind.methods):
        fig.add_trace(go.Bar(x=members, y=list(method.weights), name=escape(method.label),
                             marker={"color": PALETTE[i % len(PALETTE)]},
                             hovertemplate="%{x}: %{y:.3f}<extra>" + escape(method.label)
                                           + "</extra>"))
    return _layout(fig, title=f"Weights per method ({escape(kind.kind)} members)",
                   barmode="group", yaxis_title="weight", yaxis_range=[0, 1.05])


def leave_one_out(kind: KindSection, metric: str) -> go.Figure:
    """How much worse the Nelder-Mead ensemble's OOF score gets without each member."""
    members = [f"trial {m.trial}" for m in kind.members]
    gains = [m.loo_gain if m.loo_gain is not None else 0.0 for m in kind.members]
    colors = [PALETTE[2] if g > 0 else PALETTE[3] for g in gains]
    fig = go.Figure(go.Bar(x=members, y=gains, marker={"color": colors},
                           hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    return _layout(fig, title=f"Leave-one-out contribution ({escape(kind.kind)} members)",
                   yaxis_title=f"OOF {escape(metric)} lost without it")
