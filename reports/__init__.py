"""Reports: pure functions from an experiment store to data, then rendering.

For now the data half (leaderboard rows, run summary), used by ``python -m search show``;
the HTML report renders the same rows.
"""

from reports.leaderboard import Row, RunSummary, leaderboard, summarize

__all__ = ["Row", "RunSummary", "leaderboard", "summarize"]
