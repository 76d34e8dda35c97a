"""One traced training program per trial: later fold models train on the first one's.

Every fold model of a trial (and every bagged seed, and every repeat) is built from the same
parameters, so they are the same network with different initial values. On JAX, Keras
traces and lowers a new train/test function for every new model object: measured on Boston
(the book's net, 4 folds), ~0.6 s of each fold's ~1.1 s ``fit`` was tracing and lowering,
which JAX's persistent compilation cache cannot skip (it caches the compiled program, not
the trace). Keras' jitted step functions are stateless (the model's variables go in and come
out as arguments), so a model object whose variables are overwritten with another model's
values trains exactly as that other model would: same program, same inputs, same numbers.

:class:`ModelReuse` keeps the trial's first fold model as the *host*; each later fold builds
its model as before (its own seed, so its own initial weights, optimizer state and dropout
seed state), copies that state into the host, trains the host, and copies the trained state
back into its own model, which is what gets predicted with, saved and bagged. A host is
reused only when the two models match exactly (variables' paths, shapes and dtypes; the
optimizer's variables; the compile configuration); anything else trains its own model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ModelReuse", "prebuild", "signature"]


def signature(model: Any) -> tuple[Any, ...] | None:
    """What must be equal for two models to share a traced program (None: not reusable)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(model, "compiled", False):
        return None
    try:
        optimizer.build(model.trainable_variables)  # its state exists only after a build
        config = repr(model.get_compile_config())
    except Exception:  # a custom model or optimizer we cannot describe: train it alone
        return None
    return (type(model).__qualname__, config,
            tuple((v.path, tuple(v.shape), str(v.dtype)) for v in model.variables),
            tuple((tuple(v.shape), str(v.dtype)) for v in optimizer.variables),
            int(getattr(model, "steps_per_execution", 1) or 1))


def prebuild(model: Any, sample: tuple[Any, Any]) -> bool:
    """Build ``model``'s loss, metrics and optimizer from one row (what Keras'
    ``_symbolic_build`` does, which ``fit`` runs on a peeked batch otherwise). False: this
    Keras cannot, and the model trains as it would have (alone)."""
    try:
        if _build_from_outputs(model, sample):
            return True
    except Exception:  # what it built stays built; Keras' build does the rest, or fails
        pass
    build = getattr(model, "_symbolic_build", None)
    if build is None:
        return False
    try:
        build(data_batch=sample)
    except Exception:
        return False
    return True


def _build_from_outputs(model: Any, sample: tuple[Any, Any]) -> bool:
    """Keras' ``_symbolic_build`` without its trace of the forward pass, for a built model
    with one symbolic output (a Sequential or Functional net with an ``Input``).

    Why: ``_symbolic_build`` traces the whole model (``compute_output_spec``) only to learn
    the prediction's shape and dtype, which such a model already holds in ``outputs``, and
    then traces the loss and the metrics only to build them: measured ~25 of its ~45 ms on
    a Boston trial's model, once a trial. Here the compiled loss and metrics are built
    from the symbolic target and prediction directly (what their first call does), the
    optimizer from the trainable variables, as Keras does. False (nothing done): the model
    is not of that kind, or this Keras lacks what is used, and ``_symbolic_build`` runs.
    """
    try:
        from keras import KerasTensor, Model
        from keras.src.backend import standardize_dtype
    except ImportError:
        return False
    if not isinstance(model, Model) or not getattr(model, "built", False):
        return False
    try:
        outputs = model.outputs
        layers = list(model._flatten_layers())
    except (AttributeError, ValueError):  # a subclassed model: no symbolic outputs
        return False
    struct = getattr(getattr(model, "_functional", model), "_outputs_struct", None)
    if (not isinstance(outputs, list) or len(outputs) != 1 or not isinstance(struct, KerasTensor)
            or not all(layer.built for layer in layers)):
        return False
    x, y = sample
    if not hasattr(x, "shape") or not hasattr(y, "shape"):
        return False
    out = outputs[0]
    y_true = KerasTensor(tuple(y.shape), standardize_dtype(y.dtype))
    y_pred = KerasTensor((int(x.shape[0]), *tuple(out.shape)[1:]), out.dtype)
    metrics, loss = getattr(model, "_compile_metrics", None), getattr(model, "_compile_loss", None)
    build_post = getattr(model, "_post_build", None)
    if build_post is None or (metrics is not None and not hasattr(metrics, "build")) \
            or (loss is not None and not hasattr(loss, "build")):
        return False
    if metrics is not None and not metrics.built:
        metrics.build(y_true, y_pred)
    if loss is not None and not loss.built:
        loss.build(y_true, y_pred)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    build_post()
    return True


def _values(variables: list[Any]) -> list[np.ndarray]:
    """Copies of the variables' values. Copies, not references: Keras' JAX train step
    donates its input buffers, so an array the host trains on is deleted by the next step;
    a model or snapshot that shared it would read a deleted array."""
    return [np.array(v.value) for v in variables]


def _assign(variables: list[Any], values: list[Any]) -> None:
    for v, value in zip(variables, values, strict=True):
        v.assign(value)


def _copy_state(source: Any, target: Any) -> None:
    """Every variable of ``source`` (weights, batch-norm statistics, seed generator state)
    and of its optimizer into ``target``'s (same structure, checked by the signature)."""
    _assign(target.variables, _values(source.variables))
    _assign(target.optimizer.variables, _values(source.optimizer.variables))


class ModelReuse:
    """The trial's host model; see the module docstring. One per trial (never shared
    between trials: their parameters differ). JAX only (where the per-model trace is
    the cost; TensorFlow's models were not measured).

    The host is itself a fold model its caller may still hold (a bagged seed awaiting the
    average, the first fold's model awaiting its save): :meth:`host_for` sets the host's
    state aside and :meth:`give_back` restores it, whether the fit succeeded or not.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._host: Any = None
        self._signature: tuple[Any, ...] | None = None
        self._saved: tuple[list[Any], list[Any]] | None = None
        #: Fold models that trained on the host (for tests and benchmarks).
        self.reused = 0

    def host_for(self, model: Any, sample: tuple[Any, Any] | None = None) -> Any:
        """The model to train for ``model``: the host holding ``model``'s initial state,
        or ``model`` itself (the first fold, or a model that does not match the host).
        Call after ``steps_per_execution`` is set and before ``fit``; then always
        :meth:`give_back`.

        ``sample``: one row of the fit's inputs and targets (None: streamed inputs, which
        are never reused). ``model``'s loss and metrics are built from it first, whether
        or not the host is then used: a model whose loss and metrics are unbuilt makes
        ``fit`` draw one epoch's shuffle before training (to peek at a batch), which the
        host would not, so the two paths would shuffle differently. Built from one row,
        both shuffle alike and train to the same numbers (tests/test_reuse.py).
        """
        if sample is None or not prebuild(model, sample):
            return model
        if not self.enabled:
            return model
        import keras

        if keras.backend.backend() != "jax":
            return model
        sig = signature(model)
        if sig is None:
            return model
        if self._host is None or sig != self._signature:
            self._host, self._signature = model, sig
            return model
        host = self._host
        self._saved = (_values(host.variables), _values(host.optimizer.variables))
        _copy_state(model, host)
        self.reused += 1
        return host

    def give_back(self, trained: Any, model: Any, *, ok: bool = True) -> Any:
        """After ``fit``: ``model`` with the state ``trained`` (the host) reached (``ok``),
        and the host's own state put back."""
        if trained is model:
            return model
        if ok:
            _assign(model.variables, _values(trained.variables))
        if self._saved is not None:
            weights, slots = self._saved
            _assign(trained.variables, weights)
            _assign(trained.optimizer.variables, slots)
            self._saved = None
        return model
