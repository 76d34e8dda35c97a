"""The one exception tree of search-ensembles.

Library code raises these; only the CLI turns them into messages and exit codes.
``UsageError`` subclasses mean "the user gave us something wrong" (exit 2: a broken space
file, a bad flag value, a missing data file); other ``SearchError`` subclasses are runtime
failures (exit 1). Inside the search loop, ``TrialFailed`` and ``TrialPruned`` steer the loop
(record the trial, go on) the way Keras Tuner separates a failed trial from a fatal error.
"""

from __future__ import annotations


class SearchError(Exception):
    """Base of every error this project raises on purpose."""


class UsageError(SearchError):
    """The user's input is wrong; the message names what and how to fix it (exit code 2)."""


class SpaceError(UsageError):
    """A space file breaks the space contract (missing/invalid item, import failure)."""


class DataNotFoundError(UsageError):
    """A dataset is neither in the data directory nor downloadable; names the file to add."""


class RunNotFoundError(UsageError):
    """A path given as a run directory holds no run.json."""


class StoreError(SearchError):
    """An experiment directory is missing, incomplete or inconsistent."""


class RunFailed(SearchError):
    """The search ended without a usable result (no complete trial, or ``--max-failures``
    failed trials in a row); the message names the most common reason (exit code 1)."""


class TrialFailed(SearchError):
    """One trial failed (NaN loss, out of memory, exception in user code): record it, go on."""


class TrialPruned(SearchError):
    """The pruner stopped a trial after a fold; its finished folds are kept."""


class EnsembleError(UsageError, ValueError):
    """Prediction arrays handed to an ensemble are invalid (shapes, NaN, too few members).

    Also a ``ValueError``: scikit-learn code (and its estimator checks) expects invalid
    input to an estimator to raise one."""


class NotFittedError(SearchError):
    """An estimator was used before ``fit``."""


__all__ = [
    "DataNotFoundError",
    "EnsembleError",
    "NotFittedError",
    "RunFailed",
    "RunNotFoundError",
    "SearchError",
    "SpaceError",
    "StoreError",
    "TrialFailed",
    "TrialPruned",
    "UsageError",
]
