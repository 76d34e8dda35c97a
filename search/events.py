"""Progress events from the search loop: library code reports, the CLI renders.

Only the CLI prints; the loop calls these hooks and the CLI's subclass draws a progress
bar. The base class does nothing, so library users can subclass just what they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.store import FoldRecord, TrialRecord

__all__ = ["EvaluateEvents", "SearchEvents"]


class SearchEvents:
    """Hooks the search loop calls; every method is a no-op here."""

    def search_started(self, *, run_dir: Path, total: int, done: int, folds: int,
                       metric: str) -> None:
        """Before the first new trial; ``done`` counts trials finished in earlier sessions."""

    def trial_started(self, number: int) -> None:
        """A trial is about to run its first fold."""

    def fold_finished(self, record: TrialRecord, fold: FoldRecord) -> None:
        """A fold has been scored and stored."""

    def trial_finished(self, record: TrialRecord, best: TrialRecord | None) -> None:
        """A trial ended (complete, pruned or failed); ``best`` is the best completed so far."""

    def progress(self, done: int) -> None:
        """The run now has ``done`` finished trials (all processes of the run counted)."""

    def message(self, text: str) -> None:
        """Something the user should know that is not an error (e.g. stale trials closed)."""


class EvaluateEvents:
    """Hooks ``evaluate`` (nested cross-validation, :mod:`search.nested`) calls; no-ops here."""

    def evaluation_started(self, *, root: Path, outer: int, done: int) -> None:
        """Before the first outer fold of this session; ``done`` finished in earlier ones."""

    def run_events(self, fold: int, run_dir: Path, resumed: bool) -> SearchEvents:
        """The search events for outer fold ``fold``'s run (its progress bar)."""
        return SearchEvents()

    def run_ended(self, fold: int) -> None:
        """Outer fold ``fold``'s search ended (normally or not): stop its progress bar."""

    def fold_finished(self, entry: dict[str, Any], summary: dict[str, Any]) -> None:
        """An outer fold is scored and stored; ``summary`` covers the folds finished so far."""
