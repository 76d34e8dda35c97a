"""Parameter importance from the store, for a run of any backend.

Method: Optuna's fANOVA evaluator (a random forest fitted on parameters -> CV score, then
the share of the score's variance each parameter explains) run on an **in-memory study
rebuilt from the trial records** with ``optuna.trial.create_trial``. The run's own backend
is never asked (Ray or Keras Tuner runs have no Optuna study), so every run gets the same
analysis.

Distributions come from the traced space in ``run.json`` (``params``: kind, range, step,
log sampling, choices); a parameter the trace does not describe falls back to the range of
values the trials actually took. As fANOVA does, only parameters present in every
completed trial are analysed (a conditional one such as ``units_1`` when ``layers=2`` is
left out and named in the note); parameters that never varied are left out too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from search.store import TrialRecord

__all__ = ["MIN_TRIALS", "Importance", "param_importance"]

#: Fewer completed trials than this give a forest nothing to learn from: no plot, a reason.
MIN_TRIALS = 5


@dataclass(frozen=True)
class Importance:
    """Importances (summing to 1, largest first) or the reason there are none."""

    values: dict[str, float]
    method: str
    reason: str = ""
    left_out: tuple[str, ...] = ()


def _distribution(spec: dict[str, Any] | None, values: list[Any]) -> Any:
    """An Optuna distribution for one parameter: from the traced space, else from values."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    spec = spec or {}
    kind = spec.get("kind")
    log = spec.get("sampling") == "log"
    try:
        if kind == "int":
            return IntDistribution(int(spec["low"]), int(spec["high"]),
                                   step=int(spec.get("step") or 1), log=log)
        if kind == "float":
            step = spec.get("step")
            return FloatDistribution(float(spec["low"]), float(spec["high"]),
                                     step=None if log or not step else float(step), log=log)
        if kind in ("choice", "boolean"):
            return CategoricalDistribution(list(spec.get("values") or [False, True]))
    except (KeyError, TypeError, ValueError):
        pass
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and len(set(values)) > 2:
        return FloatDistribution(float(min(values)), float(max(values)))
    return CategoricalDistribution(sorted(set(values), key=repr))


def param_importance(trials: Sequence[TrialRecord], space: Sequence[dict[str, Any]],
                     direction: str, *, seed: int = 0) -> Importance:
    """fANOVA importances of the parameters on the completed trials' CV scores."""
    method = "fANOVA (Optuna's evaluator on a study rebuilt from the store)"
    done = [t for t in trials if t.status == "complete" and t.score is not None
            and math.isfinite(t.score)]
    if len(done) < MIN_TRIALS:
        return Importance({}, method, f"needs at least {MIN_TRIALS} completed trials; this "
                                      f"run has {len(done)}")
    specs = {str(p.get("name")): p for p in space if isinstance(p, dict)}
    names = [n for n in dict.fromkeys(k for t in done for k in t.params)]
    common = [n for n in names if all(n in t.params for t in done)]
    varied = [n for n in common if len({repr(t.params[n]) for t in done}) > 1]
    left_out = tuple(n for n in names if n not in varied)
    if not varied:
        return Importance({}, method, "no parameter took more than one value across "
                                      "completed trials", left_out)
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    dists = {n: _distribution(specs.get(n), [t.params[n] for t in done]) for n in varied}
    frozen = []
    for t in done:
        try:
            frozen.append(optuna.trial.create_trial(
                params={n: t.params[n] for n in varied}, distributions=dists,
                value=float(t.score)))  # type: ignore[arg-type]
        except ValueError:  # a value outside the traced range (space edited since)
            continue
    if len(frozen) < MIN_TRIALS:
        return Importance({}, method, f"only {len(frozen)} trials fit the traced space's "
                                      f"ranges (needs {MIN_TRIALS})", left_out)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.create_study(
            direction="minimize" if direction == "minimize" else "maximize")
        study.add_trials(frozen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=seed))
    finally:
        optuna.logging.set_verbosity(verbosity)
    ordered = dict(sorted(((k, float(v)) for k, v in values.items()),
                          key=lambda kv: -kv[1]))
    return Importance(ordered, method, "", left_out)
