"""Search backends: Optuna (the embedded default); Keras Tuner and Ray Tune plug in here."""

from search.backends.base import Backend, TrialContext

__all__ = ["Backend", "TrialContext"]
