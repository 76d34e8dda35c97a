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
                              ``callbacks`` (and other ``Model.fit`` keywords); may use ``hp``;
                              ``early_stopping``: a patience N (0/None: off) stops each fold
                              after N epochs without a better validation loss and restores
                              its best weights (refit members train the folds' best epochs)
``preprocessor``    no        ``preprocessor(hp)`` → an object with ``fit``/``transform``
                              (scikit-learn style), fitted on each fold's training part only
``FOLDS``           no        default K (5)
``DIRECTION``       no        ``"minimize"``/``"maximize"``; defaults to the metric's own
``KERAS_BACKEND``   no        ``"jax"``, ``"tensorflow"`` or ``"torch"``: the Keras backend its
                              trials train on (``--keras-backend`` overrides; read without
                              importing the file, so a plain string assignment)
``REFERENCE``       no        a published figure to compare with, in the metric's units:
                              ``{"test": 2.55, "cv": 2.38, "source": "the book, 3.6"}``
                              (``test`` and/or ``cv``; ``source`` says where it comes from)
==================  ========  ===============================================================

Anything else in the module is the user's business. Breaking the contract raises
:class:`~search.errors.SpaceError` naming the file, the item and the fix.

Before any trial, :func:`check_default_point` builds the default point once more and checks
its output against ``TASK`` and the loader's labels (:func:`check_outputs`): a 3-class task
built with 1 output unit otherwise fails every trial inside TensorFlow, and a linear output
on a classification task "completes" with meaningless scores, because the metrics read
predictions as probabilities.
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
from typing import Any, Literal, cast

import numpy as np

from search.errors import SpaceError, UsageError
from search.hp import FixedHP, HyperParameters, ParamSpec, RecordingHP, Value
from search.metrics import METRICS, TASKS, Direction, Metric, Task

__all__ = [
    "FIT_KEYS",
    "Space",
    "SpaceTrace",
    "check_default_point",
    "check_outputs",
    "declared_backend",
    "load_space",
    "trace_space",
]

#: ``Model.fit`` keywords a space may set; x/y/validation are the trial's business.
FIT_KEYS = frozenset(
    {"epochs", "batch_size", "callbacks", "class_weight", "shuffle", "validation_freq",
     "steps_per_epoch", "early_stopping"}
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
        patience = settings.get("early_stopping")
        if patience is not None and (not isinstance(patience, int) or isinstance(patience, bool)
                                     or patience < 0):
            raise SpaceError(
                f"{self.path}: fit_settings(hp)['early_stopping'] must be a patience in epochs "
                f"(an int >= 1; 0 or None: off); got {patience!r}"
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


def declared_backend(path: str | Path) -> str | None:
    """The space's ``KERAS_BACKEND = "jax"`` (a top-level string assignment), read without
    importing the file: the space imports Keras, and the backend must be chosen first."""
    import ast

    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None  # load_space reports a broken or missing file properly
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "KERAS_BACKEND" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
            raise SpaceError(f"{path}: KERAS_BACKEND must be a string literal "
                             "(\"jax\", \"tensorflow\" or \"torch\")")
    return None


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


#: Last-layer activations whose outputs a 1-unit binary head reads as P(positive class).
_SIGMOIDS = frozenset({"sigmoid", "hard_sigmoid"})
#: Activation layers without an ``activation`` attribute, by class name.
_ACTIVATION_LAYERS = {"Softmax": "softmax", "ReLU": "relu", "LeakyReLU": "leaky_relu",
                      "PReLU": "prelu", "ELU": "elu"}
#: Layers that leave values as they are at prediction time (or only reshape them): the
#: output's activation is that of the layer before them.
_PASSTHROUGH = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                          "GaussianNoise", "GaussianDropout", "AlphaDropout",
                          "ActivityRegularization", "Identity", "Flatten", "Reshape"})


@dataclass(frozen=True)
class _Head:
    """The model's output as the contract sees it: the layer that sets its activation."""

    name: str
    cls: str
    shape: tuple[int | None, ...]
    width: int | None  # columns ``predict`` returns; None where not fixed before data
    activation: str | None  # None: a custom function or layer, which we cannot judge
    behind: tuple[str, ...]  # pass-through layers after it, in order

    def describe(self) -> str:
        units = ("? units" if self.width is None else
                 f"{self.width} unit{'' if self.width == 1 else 's'}")
        what = f"{self.name!r} ({self.cls}, {units}, {self.activation or 'custom activation'})"
        if self.behind:
            return f"the output layer {what}, followed by {', '.join(self.behind)},"
        return f"the last layer {what}"


@dataclass(frozen=True)
class _Labels:
    """What the loader's labels say the output must be."""

    kind: Literal["ints", "one-hot", "values"]
    width: int  # classes (int labels: largest + 1; one-hot: columns) or target columns
    shape: tuple[int, ...]


def _activation_name(layer: Any) -> str | None:
    """The name of a layer's activation if Keras or TensorFlow defines it, else None."""
    cls = type(layer).__name__
    if cls in _ACTIVATION_LAYERS:
        return _ACTIVATION_LAYERS[cls]
    fn = getattr(layer, "activation", None)
    if not callable(fn):
        return None
    name = getattr(fn, "__name__", None)
    module = getattr(fn, "__module__", None) or ""
    if not isinstance(name, str) or not module.startswith(("keras", "tensorflow", "tf_keras")):
        return None
    return name.removesuffix("_v2")  # tf.nn.softmax is softmax_v2


def _head(model: Any) -> _Head | None:
    """The single output's layer, shape and activation; None if not knowable yet.

    Multi-output models and Sequential models defined without ``keras.Input`` (no outputs
    before they see data) give None. Nested models are looked into, and pass-through layers
    (Dropout, Flatten, ...) are looked behind, to find the layer that sets the activation.
    """
    import keras

    try:
        outputs = list(model.outputs)
    except (AttributeError, ValueError):
        return None
    if len(outputs) != 1:
        return None
    shape = tuple(outputs[0].shape)
    dims = shape[1:]
    width = (int(np.prod([int(d) for d in dims])) if all(d is not None for d in dims)
             else None)
    layer: Any = model
    behind: list[str] = []
    while True:
        if isinstance(layer, keras.Model):
            try:
                history = layer.outputs[0]._keras_history
                layer = history.operation
            except (AttributeError, IndexError, ValueError):
                layer = layer.layers[-1] if layer.layers else layer
                if isinstance(layer, keras.Model):
                    break
            continue
        if type(layer).__name__ not in _PASSTHROUGH:
            break
        try:
            previous = layer.input._keras_history.operation
        except Exception:  # a layer called more than once has no single input
            break
        behind.append(type(layer).__name__)
        layer = previous
    return _Head(name=str(layer.name), cls=type(layer).__name__, shape=shape, width=width,
                 activation=_activation_name(layer), behind=tuple(reversed(behind)))


def _labels(space: Space, y: Any, split: str) -> _Labels:
    """Check one split's labels against TASK and say what the output must match."""
    y = np.asarray(y)
    shape = tuple(int(d) for d in y.shape)
    task = space.task
    where = f"{space.path}: load_data() returned {split} labels"
    if task == "regression":
        return _Labels("values", int(np.prod(shape[1:])) if len(shape) > 1 else 1, shape)
    if y.ndim == 2 and shape[1] > 1:
        if task == "binary":
            raise SpaceError(
                f"{where} one-hot, of shape {shape}; TASK 'binary' needs 0/1 labels of shape "
                "(n,) or (n, 1): return y.argmax(axis=1) (with a 2-unit softmax, train with "
                "loss='sparse_categorical_crossentropy')"
            )
        return _Labels("one-hot", shape[1], shape)
    forms = "(n,) or (n, 1)" + (" or one-hot (n, C)" if task == "multiclass" else "")
    if y.ndim not in (1, 2):
        raise SpaceError(f"{where} of shape {shape}; TASK {task!r} needs labels of shape {forms}")
    need = ("0/1 labels" if task == "binary" else
            "int class labels 0, 1, ..., C-1 (or one-hot rows)")
    if y.dtype.kind not in "biuf":
        raise SpaceError(f"{where} of dtype {y.dtype}; TASK {task!r} needs {need}: map the "
                         "classes to integers in load_data()")
    values = y.reshape(len(y)).astype(np.float64)
    ints = np.rint(values)
    bad = ~np.isfinite(values) | (ints != values) | (ints < 0)
    if task == "binary":
        bad |= ints > 1
    if bad.any():
        row = int(np.argmax(bad))
        raise SpaceError(f"{where} with {y.reshape(len(y))[row].item()!r} at row {row}; "
                         f"TASK {task!r} needs {need}")
    classes = int(ints.max()) + 1 if len(ints) else 0
    return _Labels("ints", max(classes, 2) if task == "binary" else classes, shape)


def _label_format(space: Space, y_train: Any, y_test: Any) -> _Labels:
    """Both splits' labels, checked; the test split may add classes the training one lacks."""
    train = _labels(space, y_train, "training")
    if y_test is None or len(y_test) == 0:
        return train
    test = _labels(space, y_test, "test")
    if train.kind != test.kind or (train.kind != "ints" and train.width != test.width):
        raise SpaceError(
            f"{space.path}: load_data() returned training labels of shape {train.shape} but "
            f"test labels of shape {test.shape}; both splits need the same label format"
        )
    return replace(train, width=max(train.width, test.width))


def _output_problem(task: Task, head: _Head, labels: _Labels) -> str | None:
    """What is wrong with ``head`` for ``task`` and ``labels`` (with the fix), or None."""
    width, act = head.width, head.activation
    if task == "regression":
        k = labels.width
        if width is None or width == k:
            return None
        cols = f"{k} column{'' if k == 1 else 's'}"
        return (f"gives {width} outputs per row, but the targets have {cols} (shape "
                f"{labels.shape}); TASK 'regression' needs {k} unit{'' if k == 1 else 's'}: end "
                f"build(hp) with keras.layers.Dense({k})")
    if task == "binary":
        fix = ('end build(hp) with keras.layers.Dense(1, activation="sigmoid") (loss '
               '"binary_crossentropy"), or keras.layers.Dense(2, activation="softmax") (loss '
               '"sparse_categorical_crossentropy")')
        if width is not None and width not in (1, 2):
            return (f"gives {width} outputs per row; TASK 'binary' needs 1 unit with sigmoid "
                    f"(the positive class's probability) or 2 units with softmax: {fix}")
        if act is None:
            return None
        if width == 1 and act not in _SIGMOIDS:
            why = ("softmax over 1 unit is always 1" if act == "softmax"
                   else f"a {act} output is not a probability")
            return (f"has no sigmoid: TASK 'binary' reads a 1-unit output as the positive "
                    f"class's probability ({why}): {fix}")
        if width == 2 and act != "softmax":
            return (f"has no softmax: TASK 'binary' reads a 2-unit output as class "
                    f"probabilities (column 1: the positive class), and {act} gives none: {fix}")
        if width is None and act not in _SIGMOIDS | {"softmax"}:
            return (f"outputs no probabilities ({act}): TASK 'binary' needs sigmoid or "
                    f"softmax: {fix}")
        return None
    classes = labels.width
    fix = f'end build(hp) with keras.layers.Dense({classes}, activation="softmax")'
    has = (f"the labels are one-hot with {classes} columns" if labels.kind == "one-hot" else
           f"the labels have {classes} classes (int labels 0..{classes - 1})")
    if width is not None and (width < max(classes, 2)
                              or (labels.kind == "one-hot" and width != classes)):
        return (f"gives {width} output{'' if width == 1 else 's'} per row, but {has}; "
                f"TASK 'multiclass' needs {classes} units with softmax: {fix}")
    if act is not None and act != "softmax":
        return (f"has no softmax: TASK 'multiclass' reads each output row as class "
                f"probabilities summing to 1, and {act} gives none: {fix}")
    return None


def _first_rows(x: Any, n: int = 2) -> Any:
    if isinstance(x, dict):
        return {k: _first_rows(v, n) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_first_rows(v, n) for v in x)
    return x[:n]


def check_outputs(space: Space, model: Any, y_train: Any, y_test: Any = None, *,
                  x_sample: Any = None) -> None:
    """Check a built model's output and the loader's labels against ``TASK``.

    The rules (README, "The space contract"): binary → 1 unit with sigmoid or 2 units with
    softmax, labels 0/1; multiclass → softmax over C units, C the labels' classes (int labels:
    at least largest + 1, since a rare last class may be missing from the splits; one-hot:
    exactly the width); regression → as many units as the target has columns. Outputs whose
    activation is a custom function or layer are not judged (we cannot tell whether they are
    probabilities); nor are multi-output models. A Sequential model defined without
    ``keras.Input`` is built on ``x_sample``'s first rows when the space has no preprocessor.

    Raises:
        SpaceError: naming the file, the output layer, what TASK needs and the fix.
    """
    labels = _label_format(space, y_train, y_test)
    head = _head(model)
    if head is None and x_sample is not None and space._preprocessor is None:
        try:
            model.predict(_first_rows(x_sample), verbose=0)
        except Exception:  # raw rows the model cannot take: the trials will say why
            return
        head = _head(model)
    if head is None:
        return
    problem = _output_problem(space.task, head, labels)
    if problem is not None:
        raise SpaceError(f"{space.path}: the default point's model does not fit TASK "
                         f"{space.task!r}: {head.describe()} {problem}")


def check_points(space: Space, trace: SpaceTrace, points: list[dict[str, Any]],
                 source: str) -> None:
    """Check parameter sets to try first (``run --enqueue``) before any trial starts.

    A misspelt name would otherwise be ignored silently (the backend proposes its own value
    and the user believes the point was tried), and a value outside the space would fail
    its trial after the search began. Names are checked against the traced space (every
    branch found while tracing); a name the trace did not reach is looked for by building
    the point (the rest at the defaults). A point that builds but fails to train is not an
    input error: its trial fails and is recorded, like any other.
    """
    import keras

    specs = {s.name: s for s in trace.specs}
    for i, point in enumerate(points, start=1):
        where = f"{source}: point {i}"
        if not isinstance(point, dict) or not all(isinstance(k, str) for k in point):
            raise UsageError(f"{where}: expected an object of parameter names to values, "
                             f"got {type(point).__name__}")
        known = dict(specs)
        if any(name not in known for name in point):
            hp = FixedHP(point)
            try:
                _record(space, hp)
            except SpaceError as exc:
                raise UsageError(f"{where}: {exc}") from exc
            except Exception:  # the names it reached are what matter here
                pass
            finally:
                keras.backend.clear_session(free_memory=False)
            known.update(hp.specs)
        for name, value in point.items():
            spec = known.get(name)
            if spec is None:
                raise UsageError(
                    f"{where}: {name!r} is not a parameter of {space.path.name} (its "
                    f"parameters: {', '.join(sorted(known))})")
            if not _legal(spec, value):
                raise UsageError(f"{where}: {value!r} is not a value of {name!r} "
                                 f"({_describe(spec)})")


def _legal(spec: ParamSpec, value: Any) -> bool:
    """``spec.contains`` and, for Int/stepped Float, the type and the step grid: what a
    backend would propose (Optuna warns and Keras layers fail on ``units=1000.0``)."""
    if not spec.contains(value):
        return False
    if spec.kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if spec.kind in ("int", "float") and spec.step and spec.sampling == "linear":
        assert spec.low is not None
        steps = (value - spec.low) / spec.step
        return abs(steps - round(steps)) < 1e-6
    return True


def _describe(spec: ParamSpec) -> str:
    """A parameter's legal values, as an error message shows them."""
    if spec.kind in ("choice", "boolean"):
        return "one of " + ", ".join(repr(v) for v in spec.values)
    if spec.kind == "fixed":
        return f"fixed at {spec.default!r}"
    step = f" in steps of {spec.step}" if spec.step else ""
    return f"{spec.kind} from {spec.low} to {spec.high}{step}"


def check_default_point(space: Space, trace: SpaceTrace, y_train: Any, y_test: Any = None, *,
                        x_train: Any = None) -> None:
    """Build the default point and :func:`check_outputs` it, once, before any trial.

    Without this, an output that does not fit the task fails every trial inside TensorFlow
    ("Graph execution error") or scores garbage; here it is one usage error naming the fix.
    """
    import keras

    keras.backend.clear_session(free_memory=False)
    try:
        model = space.build(FixedHP(trace.defaults))
        check_outputs(space, model, y_train, y_test, x_sample=x_train)
    finally:
        keras.backend.clear_session()
