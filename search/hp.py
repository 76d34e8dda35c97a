"""The ``hp`` object a space's ``build(hp)`` receives, in Keras Tuner's names and signatures.

Keras Tuner users already write ``hp.Int("units", 32, 512, step=32)``; we keep exactly that
vocabulary so a space file reads the same whatever backend runs it. Each backend gets a
subclass that decides the *value* (Optuna asks its trial, Keras Tuner its own
``HyperParameters``, Ray a fixed dict); the definitions are captured the same way by all.

Conditionals are plain Python: a parameter defined only inside ``if hp.Boolean("bn"):`` is
simply not asked for when the branch is not taken, which is how Optuna's define-by-run
spaces work too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from search.errors import SpaceError

Value = int | float | str | bool | None
Kind = Literal["int", "float", "choice", "boolean", "fixed"]
Sampling = Literal["linear", "log", "reverse_log"]

__all__ = [
    "DefaultHP",
    "FixedHP",
    "HyperParameters",
    "ParamSpec",
    "RecordingHP",
    "Value",
]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter definition, as written in the space file.

    Attributes:
        name: Unique name within the space.
        kind: Which ``hp`` method defined it.
        default: The value of the space's default point (the book's model).
        low / high / step / sampling: Range of ``Int``/``Float``.
        values: Candidates of ``Choice`` (also ``[False, True]`` for ``Boolean``).
        conditional: True when the parameter was not defined at the default point, i.e. it
            lives in a branch the default does not take (found while tracing).
    """

    name: str
    kind: Kind
    default: Value
    low: float | None = None
    high: float | None = None
    step: float | None = None
    sampling: Sampling = "linear"
    values: tuple[Value, ...] = ()
    conditional: bool = False

    def is_discrete(self) -> bool:
        """Whether the parameter has finitely many values (what a grid search needs)."""
        if self.kind in ("choice", "boolean", "fixed"):
            return True
        if self.kind == "int":
            return self.sampling == "linear"
        return self.step is not None and self.sampling == "linear"

    def grid(self) -> list[Value]:
        """All values of a discrete parameter, in order."""
        if self.kind in ("choice", "boolean"):
            return list(self.values)
        if self.kind == "fixed":
            return [self.default]
        if not self.is_discrete():
            raise SpaceError(f"parameter {self.name!r} is continuous and has no grid")
        assert self.low is not None and self.high is not None
        step = self.step or 1
        n = math.floor((self.high - self.low) / step + 1e-9) + 1
        raw = [self.low + i * step for i in range(n)]
        return [int(v) if self.kind == "int" else float(v) for v in raw]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this parameter (used to check defaults)."""
        if self.kind == "fixed":
            return bool(value == self.default)
        if self.kind in ("choice", "boolean"):
            return value in self.values
        assert self.low is not None and self.high is not None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return self.low - 1e-12 <= value <= self.high + 1e-12

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description, stored in run.json so a run documents its space."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "default": self.default}
        if self.kind in ("int", "float"):
            out.update(low=self.low, high=self.high, step=self.step, sampling=self.sampling)
        if self.kind == "choice":
            out["values"] = list(self.values)
        if self.conditional:
            out["conditional"] = True
        return out


class HyperParameters:
    """Base ``hp``: defines parameters and asks :meth:`_value` for their value.

    Subclasses override only ``_value``. Every definition is checked (a bad range is a
    space-file bug, reported as :class:`SpaceError`) and remembered in ``specs``; the
    values handed out are remembered in ``values`` so the trial record has the exact
    parameters of the model that was built.
    """

    def __init__(self) -> None:
        self.specs: dict[str, ParamSpec] = {}
        self.values: dict[str, Value] = {}

    # -- Keras Tuner's API -------------------------------------------------------------
    def Int(  # noqa: N802 - Keras Tuner's name
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: Sampling = "linear",
        default: int | None = None,
        **_: Any,
    ) -> int:
        """An integer in ``[min_value, max_value]``; ``step`` spaces linear values."""
        if not (isinstance(min_value, int) and isinstance(max_value, int)):
            raise SpaceError(f"hp.Int({name!r}): min_value and max_value must be integers")
        self._check_range(name, min_value, max_value, sampling)
        if step is not None and step <= 0:
            raise SpaceError(f"hp.Int({name!r}): `step` must be positive; got {step}")
        default = min_value if default is None else default
        spec = ParamSpec(name, "int", default, min_value, max_value, step, sampling)
        return int(self._define(spec))  # type: ignore[arg-type]

    def Float(  # noqa: N802
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: Sampling = "linear",
        default: float | None = None,
        **_: Any,
    ) -> float:
        """A float in ``[min_value, max_value]``; ``sampling="log"`` for learning rates."""
        self._check_range(name, min_value, max_value, sampling)
        default = float(min_value if default is None else default)
        spec = ParamSpec(name, "float", default, float(min_value), float(max_value), step, sampling)
        return float(self._define(spec))  # type: ignore[arg-type]

    def Choice(  # noqa: N802
        self,
        name: str,
        values: Sequence[Value],
        ordered: bool | None = None,
        default: Value = None,
        **_: Any,
    ) -> Any:
        """One of ``values`` (ints, floats, strings or bools)."""
        values = list(values)
        if not values:
            raise SpaceError(f"hp.Choice({name!r}): `values` must not be empty")
        for v in values:
            if not isinstance(v, (int, float, str, bool)):
                raise SpaceError(
                    f"hp.Choice({name!r}): values must be int, float, str or bool; "
                    f"got {type(v).__name__}"
                )
        default = values[0] if default is None else default
        if default not in values:
            raise SpaceError(f"hp.Choice({name!r}): default {default!r} is not in {values!r}")
        return self._define(ParamSpec(name, "choice", default, values=tuple(values)))

    def Boolean(self, name: str, default: bool = False, **_: Any) -> bool:  # noqa: N802
        """True or False."""
        return bool(self._define(ParamSpec(name, "boolean", bool(default), values=(False, True))))

    def Fixed(self, name: str, value: Value, **_: Any) -> Any:  # noqa: N802
        """A constant, recorded with the trial so the record documents it."""
        return self._define(ParamSpec(name, "fixed", value))

    # -- machinery -----------------------------------------------------------------------
    @staticmethod
    def _check_range(name: str, low: float, high: float, sampling: str) -> None:
        if sampling not in ("linear", "log", "reverse_log"):
            raise SpaceError(
                f"hp parameter {name!r}: `sampling` must be linear, log or reverse_log; "
                f"got {sampling!r}"
            )
        if not low <= high:
            raise SpaceError(f"hp parameter {name!r}: min_value {low} > max_value {high}")
        if sampling != "linear" and low <= 0:
            raise SpaceError(f"hp parameter {name!r}: log sampling needs min_value > 0; got {low}")

    def _define(self, spec: ParamSpec) -> Value:
        if not isinstance(spec.name, str) or not spec.name:
            raise SpaceError("hp parameter names must be non-empty strings")
        if not spec.contains(spec.default):
            raise SpaceError(
                f"hp parameter {spec.name!r}: default {spec.default!r} is outside its range"
            )
        known = self.specs.get(spec.name)
        if known is not None and _signature(known) != _signature(spec):
            raise SpaceError(
                f"hp parameter {spec.name!r} is defined twice with different ranges; "
                "give each definition its own name"
            )
        self.specs[spec.name] = spec
        if spec.name in self.values:
            return self.values[spec.name]
        value = spec.default if spec.kind == "fixed" else self._value(spec)
        self.values[spec.name] = value
        return value

    def _value(self, spec: ParamSpec) -> Value:
        """The value for this trial; subclasses decide."""
        raise NotImplementedError


def _signature(spec: ParamSpec) -> tuple[Any, ...]:
    return (spec.kind, spec.low, spec.high, spec.step, spec.sampling, spec.values, spec.default)


class DefaultHP(HyperParameters):
    """Every parameter at its default: the space's default point (the book's model)."""

    def _value(self, spec: ParamSpec) -> Value:
        return spec.default


class RecordingHP(DefaultHP):
    """Defaults plus a record of every definition: how a space is traced up front."""


class FixedHP(HyperParameters):
    """Values from a mapping (a stored trial, a Ray/Keras-Tuner config); defaults otherwise.

    Rebuilding a stored trial for retraining uses this: the params in trial.json give back
    the very same model.
    """

    def __init__(self, params: Mapping[str, Value]) -> None:
        super().__init__()
        self.params = dict(params)

    def _value(self, spec: ParamSpec) -> Value:
        if spec.name not in self.params:
            return spec.default
        value = self.params[spec.name]
        if not spec.contains(value):
            raise SpaceError(
                f"value {value!r} for parameter {spec.name!r} is outside the space's range"
            )
        return value
