"""The ensemble section: members, weights per method, leave-one-out effects, per member kind.

Read from ``ensemble.json`` (written by :func:`search.ensembling.ensemble_run`); when both
fold and refit members were ensembled, both kinds come back so they can be shown side by
side (the design notes why: refits of good trials can collapse on the test set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.answer import METHOD_LABELS, read_ensemble

__all__ = ["EnsembleSection", "KindSection", "MemberRow", "MethodRow", "ensemble_section"]


@dataclass(frozen=True)
class MemberRow:
    """One member: CV score, OOF score, test score of its fold models and of its refit.

    ``loo_gain`` > 0: dropping the member makes the Nelder-Mead ensemble's OOF score worse,
    i.e. the member contributes.
    """

    trial: int
    params: dict[str, Any]
    cv: float | None
    cv_std: float | None
    oof: float | None
    fold_test: float | None
    refit_test: float | None
    loo_without: float | None
    loo_gain: float | None


@dataclass(frozen=True)
class MethodRow:
    """One method's weights (aligned with the members) and scores."""

    name: str
    label: str
    oof: float | None
    test: float | None
    weights: tuple[float, ...]


@dataclass(frozen=True)
class KindSection:
    """Ensembles of one member kind (``folds`` or ``refit``)."""

    kind: str
    members: tuple[MemberRow, ...]
    methods: tuple[MethodRow, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class EnsembleSection:
    """Everything ``ensemble.json`` says, as rows; ``kinds`` in the order folds, refit."""

    metric: str
    objective: str
    top: int | None
    fitted_on: str
    kinds: tuple[KindSection, ...]

    @property
    def side_by_side(self) -> bool:
        """True when fold and refit members both have fitted ensembles."""
        return sum(bool(k.methods) for k in self.kinds) >= 2


def _kind(kind: str, entry: dict[str, Any]) -> KindSection:
    members = tuple(
        MemberRow(trial=int(m["trial"]), params=dict(m.get("params") or {}),
                  cv=m.get("cv_score"), cv_std=m.get("cv_std"), oof=m.get("oof_score"),
                  fold_test=m.get("fold_test_score"), refit_test=m.get("refit_test_score"),
                  loo_without=(m.get("leave_one_out") or {}).get("oof_score_without"),
                  loo_gain=(m.get("leave_one_out") or {}).get("gain"))
        for m in entry.get("members", []))
    methods = tuple(
        MethodRow(name=name, label=METHOD_LABELS.get(name, name), oof=v.get("oof_score"),
                  test=v.get("test_score"), weights=tuple(float(w) for w in v.get("weights", [])))
        for name, v in entry.get("methods", {}).items())
    return KindSection(kind=kind, members=members, methods=methods,
                       notes=tuple(str(n) for n in entry.get("notes", [])))


def ensemble_section(run_dir: str | Path) -> EnsembleSection | None:
    """The run's ensembles as rows, or None if ``ensemble.json`` does not exist yet."""
    ens = read_ensemble(run_dir)
    if ens is None:
        return None
    kinds = ens.get("kinds", {})
    order = [k for k in ("folds", "refit") if k in kinds] + [
        k for k in kinds if k not in ("folds", "refit")]
    return EnsembleSection(metric=str(ens.get("metric", "")),
                           objective=str(ens.get("objective", "")), top=ens.get("top"),
                           fitted_on=str(ens.get("fitted_on", "")),
                           kinds=tuple(_kind(k, kinds[k]) for k in order))
