"""A fake backend for the contract suite: the smallest thing the seam lets one write.

Random proposals drawn from the traced space, queued points first, a median pruner on the
fold running means, all in this process. If this needs more than ~60 lines, the seam is
wrong.
"""

from __future__ import annotations

import random
import statistics
from typing import Any, ClassVar

from search.backends import Backend, Driver, Option
from search.errors import TrialFailed, TrialPruned
from search.hp import FixedHP, ParamSpec, Value


def _draw(spec: ParamSpec, rng: random.Random) -> Value:
    if spec.kind in ("choice", "boolean"):
        return rng.choice(list(spec.values))
    if spec.kind == "fixed":
        return spec.default
    grid = spec.grid() if spec.is_discrete() else None
    if grid:
        return rng.choice(grid)
    assert spec.low is not None and spec.high is not None
    return rng.uniform(spec.low, spec.high)


class FakeBackend(Backend):
    name = "fake"
    options: ClassVar[dict[str, Option]] = {
        "startup": Option(3, "Completed trials before pruning starts.", type=int)}

    def __init__(self, *, study_name: str, startup: int = 3) -> None:
        self.startup = startup

    def optimize(self, driver: Driver, *, n_trials: int, timeout: float | None) -> None:
        rng = random.Random(driver.plan.seed + driver.done())
        queued = list(driver.queued) if driver.done() <= 1 else []
        driver.events.search_started(run_dir=driver.store.root, total=n_trials,
                                     done=driver.done(), folds=driver.n_folds,
                                     metric=driver.space.metric.name)
        sign = 1.0 if driver.direction == "minimize" else -1.0
        while driver.done() < n_trials and driver.stop_reason() is None:
            params: dict[str, Any] = {s.name: _draw(s, rng) for s in driver.trace.specs
                                      if s.name in driver.trace.defaults}
            params.update(queued.pop(0) if queued else {})
            finished = [r for r in driver.finished() if r.status == "complete"]

            def report(fold: int, value: float, finished: list[Any] = finished) -> None:
                if len(finished) < self.startup:
                    return
                means = [statistics.mean(r.fold_scores[: fold + 1]) for r in finished]
                if sign * value > sign * statistics.median(means):
                    raise TrialPruned(f"pruned after fold {fold}")

            try:
                driver.run_here(driver.spec(params), hp=FixedHP(params), report=report)
            except (TrialPruned, TrialFailed):
                pass
            driver.events.progress(driver.done())
