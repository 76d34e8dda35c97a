"""The space file: the user's contract, loaded by path and checked once.

A space file is a plain Python module. It declares, at module level:

==================  ========  ===============================================================
name                required  meaning
==================  ========  ===============================================================
``TASK``            yes       ``"binary"``, ``"multiclass"`` or ``"regression"``
``METRIC``          yes       a name from :data:`search.metrics.METRICS` (e.g. ``"mae"``)
``load_data``       yes       ``load_data(data_dir)`` → ``(x_train, y_train), (x_test, y_test)``
``build``           yes       ``build(hp)`` → a compiled ``keras.Model``
``fit_settings``    no        ``fit_settings(hp)`` → dict of ``epochs``, ``batch_size``,
                              ``callbacks`` (and other ``Model.fit`` keywords); may use ``hp``
``preprocessor``    no        ``preprocessor(hp)`` → an object with ``fit``/``transform``
                              (scikit-learn style), fitted on each fold's training part only
``FOLDS``           no        default K (5)
``DIRECTION``       no        ``"minimize"``/``"maximize"``; defaults to the metric's own
``REFERENCE``       no        a published figure to compare with, in the metric's units:
                              ``{"test": 2.55, "cv": 2.38, "source": "the book, 3.6"}``
                              (``test`` and/or ``cv``; ``source`` says where it comes from)
==================  ========  ===============================================================

Anything else in the module is the user's business. Breaking the contract raises
:class:`~search.errors.SpaceError` naming the file, the item and the fix.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from search.errors import SpaceError, UsageError
from search.hp import FixedHP, HyperParameters, ParamSpec, RecordingHP, Value
from search.metrics import METRICS, TASKS, Direction, Metric, Task

__all__ = ["FIT_KEYS", "Space", "SpaceTrace", "load_space", "trace_space"]

#: ``Model.fit`` keywords a space may set; x/y/validation are the trial's business.
FIT_KEYS = frozenset(
    {"epochs", "batch_size", "callbacks", "class_weight", "shuffle", "validation_freq",
     "steps_per_epoch", "sample_weight_fn"}
)
_FOLD_OWNED = frozenset({"x", "y", "validation_data", "validation_split", "verbose"})


@dataclass
class Space:
    """A loaded, validated space file."""

    path: Path
    module: ModuleType
    task: Task
    metric: Metric
    direction: Direction
    folds: int
    sha256: str
    name: str
    doc: str = ""
    reference: dict[str, Any] | None = None
    _fit_settings: Callable[[HyperParameters], dict[str, Any]] | None = field(default=None,
                                                                            repr=False)
    _preprocessor: Callable[[HyperParameters], Any] | None = field(default=None, repr=False)

    def load_data(self, data_dir: str | Path | None = None) -> tuple[Any, Any]:
        """Call the space's loader; user exceptions surface as SpaceError naming the file."""
        fn = self.module.load_data
        params = inspect.signature(fn).parameters
        try:
            result = fn(data_dir) if params else fn()
        except UsageError:
            raise  # DataNotFoundError & co. already say what to do
        except Exception as exc:
            raise SpaceError(
                f"{self.path}: load_data() raised {type(exc).__name__}: {exc}"
            ) from exc
        try:
            (x_train, y_train), (x_test, y_test) = result
        except (TypeError, ValueError):
            raise SpaceError(
                f"{self.path}: load_data() must return ((x_train, y_train), (x_test, y_test))"
            ) from None
        if len(x_train) != len(y_train) or len(x_test) != len(y_test):
            raise SpaceError(
                f"{self.path}: load_data() returned x and y of different lengths: "
                f"train {len(x_train)} vs {len(y_train)}, test {len(x_test)} vs {len(y_test)}"
            )
        return (x_train, y_train), (x_test, y_test)

    def build(self, hp: HyperParameters) -> Any:
        """Build the compiled model for ``hp``; checks the result is a compiled Keras model."""
        import keras

        model = self.module.build(hp)
        if not isinstance(model, keras.Model):
            raise SpaceError(
                f"{self.path}: build(hp) must return a keras.Model; got {type(model).__name__}"
            )
        if not getattr(model, "compiled", False) and getattr(model, "optimizer", None) is None:
            raise SpaceError(
                f"{self.path}: build(hp) returned a model that is not compiled; "
                "call model.compile(optimizer=..., loss=...) before returning it"
            )
        return model

    def fit_settings(self, hp: HyperParameters) -> dict[str, Any]:
        """The ``Model.fit`` keywords for ``hp`` (checked: epochs and batch size positive)."""
        settings: dict[str, Any] = {"epochs": 1, "batch_size": 32}
        if self._fit_settings is not None:
            given = self._fit_settings(hp)
            if not isinstance(given, dict):
                raise SpaceError(
                    f"{self.path}: fit_settings(hp) must return a dict; got {type(given).__name__}"
                )
            owned = _FOLD_OWNED & given.keys()
            if owned:
                raise SpaceError(
                    f"{self.path}: fit_settings(hp) sets {sorted(owned)}, which the K-fold trial "
                    "owns (it passes each fold's validation part itself); remove them"
                )
            unknown = given.keys() - FIT_KEYS
            if unknown:
                raise SpaceError(
                    f"{self.path}: fit_settings(hp) has unknown keys {sorted(unknown)}; "
                    f"allowed: {sorted(FIT_KEYS)}"
                )
            settings.update(given)
        for key in ("epochs", "batch_size"):
            value = settings[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpaceError(
                    f"{self.path}: fit_settings(hp)[{key!r}] must be a positive int; got {value!r}"
                )
        settings.setdefault("callbacks", [])
        return settings

    def preprocessor(self, hp: HyperParameters) -> Any | None:
        """A fresh, unfitted per-fold preprocessor, or None."""
        if self._preprocessor is None:
            return None
        pre = self._preprocessor(hp)
        if pre is not None and not (hasattr(pre, "fit") and hasattr(pre, "transform")):
            raise SpaceError(
                f"{self.path}: preprocessor(hp) must return an object with fit() and "
                f"transform() (e.g. sklearn's StandardScaler()); got {type(pre).__name__}"
            )
        return pre


@dataclass(frozen=True)
class SpaceTrace:
    """What building the default point revealed: parameter definitions and their defaults."""

    specs: tuple[ParamSpec, ...]
    defaults: dict[str, Value]
    fit: dict[str, Any]
    n_params: int

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.specs]


def _import_module(path: Path) -> ModuleType:
    name = f"_search_space_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpaceError(f"{path}: cannot be imported as a Python file (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise SpaceError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        line = _user_line(exc, path)
        raise SpaceError(
            f"{path}{line}: importing the space file raised {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _user_line(exc: BaseException, path: Path) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() == path:
            return f":{frame.lineno}"
    return ""


def load_space(path: str | Path) -> Space:
    """Import a space file and check it against the contract (without building a model).

    Raises:
        SpaceError: naming the file, what is missing or invalid, and how to fix it.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise SpaceError(f"{path}: space file not found; pass the path of a .py space file")
    source = path.read_bytes()
    module = _import_module(path)

    def need(name: str, what: str) -> Any:
        if not hasattr(module, name):
            raise SpaceError(f"{path}: missing {name}: define {what}")
        return getattr(module, name)

    task = need("TASK", 'TASK = "binary" | "multiclass" | "regression"')
    if task not in TASKS:
        raise SpaceError(f"{path}: TASK must be one of {', '.join(TASKS)}; got {task!r}")
    metric_name = need("METRIC", f"METRIC = one of {', '.join(sorted(METRICS))}")
    if metric_name not in METRICS:
        raise SpaceError(
            f"{path}: METRIC {metric_name!r} is not a known metric; use one of "
            f"{', '.join(sorted(METRICS))}"
        )
    metric = METRICS[metric_name]
    if task not in metric.tasks:
        fits = sorted(n for n, m in METRICS.items() if task in m.tasks)
        raise SpaceError(
            f"{path}: METRIC {metric_name!r} does not apply to TASK {task!r}; use one of "
            f"{', '.join(fits)}"
        )
    for name, what in (("load_data", "def load_data(data_dir): ..."), ("build", "def build(hp)")):
        if not callable(need(name, what)):
            raise SpaceError(f"{path}: {name} must be a function ({what})")
    for name in ("fit_settings", "preprocessor"):
        if hasattr(module, name) and not callable(getattr(module, name)):
            raise SpaceError(f"{path}: {name} must be a function taking hp")
    folds = getattr(module, "FOLDS", 5)
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise SpaceError(f"{path}: FOLDS must be an int >= 2; got {folds!r}")
    direction = getattr(module, "DIRECTION", metric.direction)
    if direction not in ("minimize", "maximize"):
        raise SpaceError(f"{path}: DIRECTION must be 'minimize' or 'maximize'; got {direction!r}")
    if direction != metric.direction:
        raise SpaceError(
            f"{path}: DIRECTION {direction!r} contradicts METRIC {metric_name!r}, which is "
            f"{metric.direction}d; remove DIRECTION"
        )
    reference = _reference(path, getattr(module, "REFERENCE", None))
    return Space(
        path=path,
        module=module,
        task=cast(Task, task),
        metric=metric,
        direction=cast(Direction, direction),
        folds=folds,
        sha256=hashlib.sha256(source).hexdigest(),
        name=path.stem,
        doc=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "",
        reference=reference,
        _fit_settings=getattr(module, "fit_settings", None),
        _preprocessor=getattr(module, "preprocessor", None),
    )


def _reference(path: Path, ref: Any) -> dict[str, Any] | None:
    """Check ``REFERENCE``: numbers under ``test``/``cv``, a ``source`` string."""
    if ref is None:
        return None
    fix = 'REFERENCE = {"test": 2.55, "source": "where the figure comes from"}'
    if not isinstance(ref, dict) or not ({"test", "cv"} & ref.keys()):
        raise SpaceError(f"{path}: REFERENCE must be a dict with a 'test' or 'cv' number: {fix}")
    unknown = ref.keys() - {"test", "cv", "source"}
    if unknown:
        raise SpaceError(f"{path}: REFERENCE has unknown keys {sorted(unknown)}: {fix}")
    out: dict[str, Any] = {"source": str(ref.get("source", ""))}
    for key in ("test", "cv"):
        if key in ref:
            value = ref[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpaceError(f"{path}: REFERENCE[{key!r}] must be a number; got {value!r}")
            out[key] = float(value)
    return out


#: At most this many extra builds when exploring branches (VGG16-sized builds take seconds).
MAX_TRACE_BUILDS = 32


def _record(space: Space, hp: HyperParameters) -> dict[str, Any]:
    import keras

    keras.backend.clear_session(free_memory=False)
    space.build(hp)
    fit = space.fit_settings(hp)
    space.preprocessor(hp)
    return fit


def _alternatives(spec: ParamSpec) -> list[Value]:
    """Values worth building to uncover what a parameter switches on."""
    if spec.kind in ("choice", "boolean"):
        return [v for v in spec.values if v != spec.default]
    if spec.kind == "int" and spec.high is not None and spec.high != spec.default:
        return [int(spec.high)]  # e.g. the most layers: every per-layer parameter appears
    return []


def trace_space(space: Space) -> SpaceTrace:
    """Learn the space by building: the default point, then the branches it does not take.

    The default point is built with a recording ``hp`` (a broken ``build`` is caught here,
    before any trial). Then each Boolean/Choice alternative (and each Int's maximum) is
    built too, up to :data:`MAX_TRACE_BUILDS` builds, so parameters that live only in other
    branches are found and marked ``conditional``. Backends that need the space up front
    (grid search, Keras Tuner, Ray) and run.json get the whole space this way. A branch that
    fails to build is skipped here: a trial that lands there fails and is recorded.
    """
    import keras

    hp = RecordingHP()
    try:
        fit = _record(space, hp)
    except SpaceError:
        raise
    except Exception as exc:
        line = _user_line(exc, space.path)
        raise SpaceError(
            f"{space.path}{line}: building the default point raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        keras.backend.clear_session()
    defaults = dict(hp.values)
    specs: dict[str, ParamSpec] = dict(hp.specs)
    queue: list[dict[str, Value]] = [{s.name: v} for s in specs.values()
                                     for v in _alternatives(s)]
    builds = 0
    while queue and builds < MAX_TRACE_BUILDS:
        overrides = queue.pop(0)
        branch = FixedHP(overrides)
        builds += 1
        try:
            _record(space, branch)
        except Exception:  # a broken branch fails its trials, not the run
            continue
        finally:
            keras.backend.clear_session(free_memory=False)
        for name, spec in branch.specs.items():
            if name not in specs:
                specs[name] = replace(spec, conditional=True)
                queue += [{**overrides, name: v} for v in _alternatives(spec)]
    fit_json = {k: v for k, v in fit.items() if k != "callbacks"}
    fit_json["callbacks"] = [type(c).__name__ for c in fit.get("callbacks", [])]
    return SpaceTrace(specs=tuple(specs.values()), defaults=defaults, fit=fit_json,
                      n_params=len(specs))
