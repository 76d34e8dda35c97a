"""Search backends, by name: Optuna (the embedded default), Ray Tune and Keras Tuner.

Backends are imported only when chosen (Ray takes a second and a half to import, and is an
optional extra): the registry maps a name to ``"module:Class"`` and an install hint.
"""

from __future__ import annotations

import importlib
import importlib.util

from search.backends.base import Backend, Driver, Option
from search.errors import UsageError

__all__ = ["BACKENDS", "Backend", "Driver", "Option", "backend_class", "register_backend"]

#: name -> (``module:Class``, modules it needs, the install command if they are missing)
BACKENDS: dict[str, tuple[str | type[Backend], tuple[str, ...], str]] = {
    "optuna": ("search.backends.optuna:OptunaBackend", ("optuna",), "pip install optuna"),
    "ray": ("search.backends.ray:RayBackend", ("ray", "ray.tune"),
            'pip install "search-ensembles[ray]"'),
    "keras-tuner": ("search.backends.keras_tuner:KerasTunerBackend",
                    ("keras_tuner", "tensorboard"), 'pip install "search-ensembles[keras-tuner]"'),
}


def register_backend(name: str, target: str, *, needs: tuple[str, ...] = (),
                     install: str = "") -> None:
    """Add a backend (``target`` = ``"module:Class"``); how tests plug in a fake one."""
    BACKENDS[name] = (target, needs, install)


def backend_class(name: str) -> type[Backend]:
    """The backend class called ``name``; a usage error naming the install command if its
    packages are missing."""
    if name not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    target, needs, install = BACKENDS[name]
    for module in needs:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise UsageError(f"--backend {name} needs the {module!r} package; install it with "
                             f"`{install}`")
    if not isinstance(target, str):
        return target
    module_name, cls_name = target.split(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), cls_name)
    return cls
