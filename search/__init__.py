"""search-ensembles: K-fold hyperparameter search for Keras, with out-of-fold predictions.

Importing ``search`` is cheap: TensorFlow, Keras and Optuna load only when a name that
needs them is first used (PEP 562 lazy attributes), so ``python -m search --help`` and the
``ensembles`` package stay fast.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_LAZY = {
    "HyperParameters": "search.hp",
    "DefaultHP": "search.hp",
    "FixedHP": "search.hp",
    "ParamSpec": "search.hp",
    "Space": "search.space",
    "load_space": "search.space",
    "trace_space": "search.space",
    "RunSettings": "search.runner",
    "start_run": "search.runner",
    "resume_run": "search.runner",
    "start_evaluate": "search.nested",
    "resume_evaluate": "search.nested",
    "RowSubset": "search.rows",
    "RunStore": "search.store",
    "TrialRecord": "search.store",
    "run_trial": "search.trial",
    "RunPlan": "search.plan",
    "TrialSpec": "search.plan",
    "Backend": "search.backends",
    "Driver": "search.backends",
    "register_backend": "search.backends",
    "Dataset": "search.trial",
    "SearchEvents": "search.events",
    "METRICS": "search.metrics",
    "load_experiment": "search.experiment",
    "Experiment": "search.experiment",
    "EnsembleModel": "search.experiment",
    "ensemble_run": "search.ensembling",
    "retrain": "search.ensembling",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
