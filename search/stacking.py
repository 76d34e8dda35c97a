"""A trial's K fold models trained as one vectorised program (JAX): folds in parallel.

Why: on small models a fold's ``fit`` is Keras' fixed cost per step and per epoch, not
arithmetic. Measured on Boston's book net (4 folds × 25 epochs, one thread, JAX, warm
compilation cache, a loaded machine): 1.1–1.4 s a trial with the K fits one after another;
0.43 s with the K models as one program (``jax.vmap`` of the model's own ``train_step``
over the folds, ``lax.scan`` over an epoch's batches: one dispatch an epoch for all K),
0.17–0.23 s when the trial runs on a program traced for an earlier trial (see
:func:`program_key`). Run-level figures: benchmarks/RESULTS.md, "Speed".

How, and why the results mean the same: every fold model of a trial is built from the same
parameters, so they are one network with K sets of values. Keras' JAX ``train_step`` and
``test_step`` are pure functions of (variables, batch); vmapping them over a stacked state
trains K independent models, each on batches of its own training rows only (each fold its
own shuffle each epoch, from its own seed), each with its own optimizer state, dropout seed
state and batch-norm statistics; validation is each fold's own rows, after each epoch, with
its weights of that epoch, as ``fit(validation_data=...)`` does. Early stopping is Keras'
rule per fold (monitor ``val_loss``, ``patience``, best weights restored at the end); a
stopped fold is frozen while the others go on, and the program ends when all have stopped
or the epochs are done.

One difference, documented: vmapped folds need equal shapes, and K-fold training sets can
differ by one row. A shorter fold's rows are padded to the longest with copies of its own
rows at weight 0 (so it still sees only its rows; a batch-norm layer sees the copy): its
last batch's loss is then averaged over one more row (a ≤ 1/batch difference in that one
step's scale), and its validation loss is rescaled to the mean over its real rows (a
regularisation penalty in the loss is rescaled with it, by the same ≤ 1/n).

Used by :func:`search.trial.run_trial` (``stack_folds``) only where it was measured to pay
and can mean the same: JAX, one array input and one array target in memory, at most
:data:`MAX_STACK_BYTES` stacked, no callbacks but the early stopping this project adds, no
``class_weight``, ``validation_freq`` or ``steps_per_epoch``, no seed bagging, warm start
or TensorBoard, and all K models alike (the :mod:`search.reuse` signature). Anything else
trains its folds one after another, as before.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MAX_STACK_BYTES", "StackedFold", "assign", "backend_blocker", "clear_programs",
           "last_blocker", "stack_blocker", "train_stacked"]

#: Why the last trial of this process that could have stacked its folds did not (None: it
#: did). For tests and benchmarks; the trial record says per fold (``FoldRecord.stacked``).
last_blocker: str | None = None

#: Stack a trial's folds only while their stacked inputs (training and validation rows of all
#: K folds) take at most this many bytes. Beyond it the per-op cost that vmapping saves is
#: small beside the arithmetic, and the stacked copy costs memory (benchmarks/RESULTS.md).
MAX_STACK_BYTES = 32 * 2**20

#: ``Model.fit`` keywords the stacked program reproduces; any other makes folds train alone.
_FIT_KEYS = frozenset({"epochs", "batch_size", "callbacks", "shuffle", "initial_epoch"})

#: Traced programs kept for later trials of the same program (:func:`program_key`), most
#: recently used last. Why: tracing and lowering the program is most of a small trial's
#: stacked fit (measured on Boston's book net: ~0.37 of ~0.6 s, the compiled program itself
#: comes from JAX's disk cache), and a search that varies only values held in variables (the
#: learning rate) or nothing of the program repeats it every trial.
#:
#: Two segments (as in the 2Q and segmented-LRU caches): a new program waits in
#: ``_NEW_PROGRAMS`` (the last :data:`_MAX_NEW` traced) and moves to ``_PROGRAMS`` (up to
#: :data:`_MAX_PROGRAMS`) when a later trial uses it. Why: a kept program holds ~30 MB (its
#: model, traces and executables), and a search that varies the architecture every trial
#: never repeats one: measured on the real Boston space (random sampler, 40 trials), eight
#: kept programs, none reused, held 254 MB of 812 MB resident. Now it holds two; programs a
#: search does repeat are kept as before.
_PROGRAMS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_NEW_PROGRAMS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_MAX_PROGRAMS = 8
_MAX_NEW = 2
_PROGRAMS_LOCK = threading.Lock()  # like plan._STATE: a process may run trials from threads
#: Trials of this process whose stacked program was one traced for an earlier trial.
programs_reused = 0


def clear_programs() -> None:
    """Forget every kept program (tests; memory measurements)."""
    with _PROGRAMS_LOCK:
        _PROGRAMS.clear()
        _NEW_PROGRAMS.clear()


def _builtin(config: Any) -> bool:
    """Whether a serialised Keras config names only Keras' own classes and functions (a
    space's own loss or layer could hold values its config does not show)."""
    if isinstance(config, dict):
        module = config.get("module")
        if isinstance(module, str) and not module.startswith("keras"):
            return False
        if config.get("class_name") in ("Lambda", "function") and \
                not str(module).startswith("keras"):
            return False
        return all(_builtin(v) for v in config.values())
    if isinstance(config, (list, tuple)):
        return all(_builtin(v) for v in config)
    return True


def program_key(model: Any) -> tuple[Any, ...] | None:
    """What fixes the traced program of ``model``'s stacked training, apart from the shapes
    JAX keys on itself: architecture (every layer's config), compile configuration and
    variable structure — without the learning rate when it is a plain number, which the
    optimizer holds in a variable (an input of the program, not a constant in it). None:
    a model this cannot vouch for (subclassed, or holding classes or functions that are
    not Keras' own, a ``Lambda`` layer): its program is traced for its own trial only.
    """
    import keras

    from search.reuse import signature

    if not isinstance(model, keras.Sequential) and type(model).__name__ != "Functional":
        return None
    try:
        architecture = model.get_config()
        compiled = dict(model.get_compile_config())
    except Exception:  # a configuration Keras cannot write out: do not share
        return None
    if any(type(layer).__name__ == "Lambda" or not type(layer).__module__.startswith("keras")
           for layer in model._flatten_layers(include_self=False)):
        return None
    if not _builtin(architecture) or not _builtin(compiled):
        return None
    optimizer = dict(compiled.get("optimizer") or {})
    opt_config = dict(optimizer.get("config") or {})
    if isinstance(opt_config.get("learning_rate"), (int, float)) and any(
            v.path.endswith("/learning_rate") for v in model.optimizer.variables):
        opt_config.pop("learning_rate")
    optimizer["config"] = opt_config
    compiled["optimizer"] = optimizer
    structure = signature(model)
    if structure is None:
        return None
    return (repr(architecture), repr(compiled), structure[2], structure[3])


@dataclass
class StackedFold:
    """What one fold's model did in the stacked program."""

    history: dict[str, list[float]] = field(default_factory=dict)
    #: 1-based epoch whose training loss became NaN/inf (the fold was stopped there).
    nan_epoch: int | None = None
    #: The trained model's raw outputs for its validation rows and, when asked, the test
    #: rows (as its own ``model(x, training=False)`` gives them; None where not predicted).
    val_pred: np.ndarray | None = None
    test_pred: np.ndarray | None = None
    #: The fold model's trained values (its best epoch's with ``patience``), in the order
    #: of its ``trainable_variables`` and ``non_trainable_variables``.
    trainable: list[np.ndarray] = field(default_factory=list)
    non_trainable: list[np.ndarray] = field(default_factory=list)


def backend_blocker() -> str | None:
    """Why no trial of this process can stack its folds (its Keras backend), else None:
    known before any fold model is built."""
    import keras

    if keras.backend.backend() != "jax":
        return f"Keras backend {keras.backend.backend()} (stacking is JAX's vmap)"
    return None


def stack_blocker(models: Sequence[Any], fit_x: Sequence[Any], fit_y: Sequence[Any],
                  x_val: Sequence[Any], fit_kwargs: dict[str, Any],
                  user_callbacks: Sequence[Any]) -> str | None:
    """Why these fold models cannot train as one program (None: they can).

    ``fit_kwargs`` are fold 0's ``Model.fit`` keywords (every fold has the same; the
    callbacks among them are this project's own, ``user_callbacks`` the space's).
    """

    from search.reuse import signature

    backend = backend_blocker()
    if backend is not None:
        return backend
    if len(models) < 2:
        return "one fold to train"
    if user_callbacks:
        return "the space's callbacks need a fit of their own"
    extra = set(fit_kwargs) - _FIT_KEYS
    if extra:
        return f"fit settings {sorted(extra)}"
    if fit_kwargs.get("shuffle", True) not in (True, False):
        return f"shuffle={fit_kwargs['shuffle']!r}"
    if int(fit_kwargs.get("initial_epoch", 0) or 0) != 0:
        return "initial_epoch"
    arrays = [*fit_x, *fit_y, *x_val]
    if not all(isinstance(a, np.ndarray) and a.ndim >= 1 for a in arrays):
        return "inputs or targets that are not one array each"
    size = len(models) * (max(a.nbytes for a in fit_x) + max(a.nbytes for a in fit_y) +
                          max(a.nbytes for a in x_val))
    if size > MAX_STACK_BYTES:
        return f"stacked inputs {size / 2**20:.0f} MB > {MAX_STACK_BYTES / 2**20:.0f} MB"
    if len({a.shape[1:] for a in fit_x}) != 1 or len({a.shape[1:] for a in fit_y}) != 1:
        return "folds with differently shaped rows"
    first = signature(models[0])
    if first is None:
        return "a model without a compiled optimizer we can describe"
    if any(signature(m) != first for m in models[1:] if m is not models[0]):
        return "fold models that differ in structure or compile settings"
    return None


def _stack(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(K, N, ...)`` of the folds' rows, each padded to the longest with copies of its
    own first rows (weight 0 where used), and each fold's real row count."""
    n = np.array([len(a) for a in arrays])
    longest = int(n.max())
    out = np.stack([a if len(a) == longest else np.concatenate([a, np.resize(a, (
        longest - len(a), *a.shape[1:]))]) for a in arrays])
    return out, n


def _trace_where() -> Any:
    """Per fold (the leading axis of every leaf): ``new``'s values where ``mask``, else
    ``old``'s — jitted: one call for all variables (eagerly it was a dispatch, and for a
    new shape a compilation, per variable and epoch: ~0.2 s a Boston trial). One per kept
    program, so its compiled versions go when the program does."""
    import jax
    import jax.numpy as jnp

    def where(mask: Any, new: Any, old: Any) -> Any:
        return jax.tree.map(
            lambda a, b: jnp.where(mask.reshape(-1, *([1] * (a.ndim - 1))), a, b), new, old)

    return jax.jit(where)


def _state(model: Any, metrics: list[Any]) -> tuple[list[Any], ...]:
    if not getattr(model.optimizer, "built", False):  # its slots exist only after a build
        model.optimizer.build(model.trainable_variables)
    return ([np.asarray(v.value) for v in model.trainable_variables],
            [np.asarray(v.value) for v in model.non_trainable_variables],
            [np.asarray(v.value) for v in model.optimizer.variables], metrics)


def assign(model: Any, trainable: Sequence[np.ndarray],
           non_trainable: Sequence[np.ndarray]) -> Any:
    """Give ``model`` these values (as :class:`StackedFold` holds them); returns it."""
    import jax

    # device_put: Keras' own conversion of a NumPy value (jnp.asarray) compiles a
    # conversion per new variable shape
    for v, value in zip(model.trainable_variables, trainable, strict=True):
        v.assign(jax.device_put(value))
    for v, value in zip(model.non_trainable_variables, non_trainable, strict=True):
        v.assign(jax.device_put(value))
    return model


def train_stacked(models: Sequence[Any], *, fit_x: Sequence[np.ndarray],
                  fit_y: Sequence[np.ndarray], x_val: Sequence[np.ndarray],
                  y_val: Sequence[np.ndarray], seeds: Sequence[int], epochs: int,
                  batch_size: int, shuffle: bool = True,
                  patience: int | None = None,
                  x_test: Sequence[np.ndarray] | None = None,
                  initial: Sequence[tuple[list[np.ndarray], list[np.ndarray]]] | None = None
                  ) -> list[StackedFold]:
    """Train ``models`` (one per fold, alike; ``models[0]``'s loss and metrics built) on
    their folds' rows as one program, and leave each model holding its trained weights
    (its best epoch's with ``patience``). See the module docstring.

    ``initial``: each fold's (trainable, non-trainable) initial values
    (:mod:`search.fold_values`), when the folds share one built model (``models`` then
    names it K times): the folds start from these, and no model is given trained values
    (each :class:`StackedFold` holds its own; :func:`assign` gives them to a model).

    Returns one :class:`StackedFold` per model: its Keras-style history (``loss``,
    ``val_loss`` and the compiled metrics, one value per epoch it trained), the epoch
    its loss became NaN/inf, if it did (that fold is frozen there; the others go on), and
    its trained model's outputs for its validation rows and for its ``x_test`` (each
    fold's own preprocessed test rows), all K predicted by one vmapped call each instead
    of 2K calls of the models (measured: ~40 ms a Boston trial).
    """
    import jax
    import jax.numpy as jnp

    host = models[0]
    k = len(models)
    metrics0 = [np.asarray(v.value) for v in host.metrics_variables]
    if initial is not None:
        _, _, opt0, _ = _state(host, metrics0)  # the optimizer's start: alike in every fold
        states: list[tuple[list[Any], ...]] = [(list(t), list(nt), opt0, metrics0)
                                               for t, nt in initial]
    else:
        states = [_state(m, metrics0) for m in models]
    # stacked in NumPy (one device transfer each at the first epoch), not by K-way jnp.stack
    # dispatches per variable: ~17 ms a Boston trial less
    state = jax.device_put(jax.tree.map(lambda *a: np.stack(a), *states))
    x, n = _stack(fit_x)
    y, _ = _stack(fit_y)
    xv, nv = _stack(x_val)
    yv, _ = _stack(y_val)
    longest, longest_val = x.shape[1], xv.shape[1]
    wv = (np.arange(longest_val)[None, :] < nv[:, None]).astype(np.float32)
    val_scale = jnp.asarray(longest_val / nv, dtype=jnp.float32)
    run_epoch, run_predict, where = _program(host, k=k, longest=longest,
                                             batch_size=batch_size, shuffle=shuffle)
    # each fold's key; the program derives each epoch's, ``fold_in(key, epoch)``, itself
    # (eagerly, an array of a trial's epoch count compiled five small ops per trial)
    base = jax.device_put(np.stack([np.asarray(jax.random.PRNGKey(int(s) % (2**31)))
                                    for s in seeds]))
    active = np.ones(k, dtype=bool)
    history: list[dict[str, list[float]]] = [{} for _ in range(k)]
    nan_epoch: list[int | None] = [None] * k
    best = [math.inf] * k
    wait = [0] * k
    best_vars: Any = None
    dx, dy, dn, dxv, dyv, dwv = (jnp.asarray(a) for a in (x, y, n, xv, yv, wv))
    state0_metrics = state[3]  # on the device already; each epoch starts from it
    scale = np.asarray(val_scale)
    for e in range(int(epochs)):
        state, logs, val_logs = run_epoch(state, state0_metrics, base, np.int32(e), active,
                                          dx, dy, dn, dxv, dyv, dwv)
        logs, val_logs = jax.device_get((logs, val_logs))  # one transfer for all the logs
        if "loss" in val_logs:
            val_logs["loss"] = val_logs["loss"] * scale
        improved = np.zeros(k, dtype=bool)
        for f in (int(i) for i in np.flatnonzero(active)):
            h = history[f]
            for name, v in logs.items():
                h.setdefault(name, []).append(float(v[f]))
            for name, v in val_logs.items():
                h.setdefault(f"val_{name}", []).append(float(v[f]))
            if not math.isfinite(h["loss"][-1]):
                nan_epoch[f], active[f] = e + 1, False
                continue
            if patience:  # Keras' EarlyStopping, restore_best_weights=True, per fold
                current = h["val_loss"][-1]
                wait[f] += 1
                if best_vars is None or current < best[f]:
                    best[f], wait[f], improved[f] = current, 0, True
                elif wait[f] >= patience and e > 0:
                    active[f] = False
        if patience:
            current_vars = (state[0], state[1])
            if best_vars is None:
                best_vars = current_vars
            elif improved.any():
                best_vars = where(improved, current_vars, best_vars)
        if not active.any():
            break
    trainable, non_trainable = best_vars if patience and best_vars is not None else state[:2]
    val_out = np.asarray(run_predict(trainable, non_trainable, dxv))
    test_out = None
    if x_test is not None and len(x_test) == k:
        test_out = np.asarray(run_predict(trainable, non_trainable, np.stack(x_test)))
    trainable, non_trainable = jax.device_get((trainable, non_trainable))
    out = [StackedFold(history[f], nan_epoch[f], val_out[f, :nv[f]],
                       None if test_out is None else test_out[f],
                       [a[f] for a in trainable], [a[f] for a in non_trainable])
           for f in range(k)]
    if initial is None:
        for model, done in zip(models, out, strict=True):
            assign(model, done.trainable, done.non_trainable)
    return out


def _program(host: Any, *, k: int, longest: int, batch_size: int,
             shuffle: bool) -> tuple[Any, Any, Any]:
    """The jitted epoch, prediction and best-weights selection of ``k`` stacked
    ``host``-like models: kept ones when a model of the same :func:`program_key` traced them
    before (its values come in as arguments), else new ones (kept if the model has a key)."""
    global programs_reused
    key = program_key(host)
    full_key = None if key is None else (key, k, longest, batch_size, shuffle)
    with _PROGRAMS_LOCK:
        if full_key is not None and full_key in _PROGRAMS:
            _PROGRAMS.move_to_end(full_key)
            programs_reused += 1
            return _PROGRAMS[full_key]
        if full_key is not None and full_key in _NEW_PROGRAMS:  # used again: kept
            programs_reused += 1
            _PROGRAMS[full_key] = found = _NEW_PROGRAMS.pop(full_key)
            while len(_PROGRAMS) > _MAX_PROGRAMS:
                _PROGRAMS.popitem(last=False)
            return found
    programs = (_trace(host, k=k, longest=longest, batch_size=batch_size, shuffle=shuffle),
                _trace_predict(host), _trace_where())
    if full_key is not None:
        with _PROGRAMS_LOCK:
            _NEW_PROGRAMS[full_key] = programs
            while len(_NEW_PROGRAMS) > _MAX_NEW:
                _NEW_PROGRAMS.popitem(last=False)
    return programs


def _trace_predict(host: Any) -> Any:
    """``host``'s inference call, vmapped over K stacked value sets and K input arrays."""
    import jax

    def one(trainable: Any, non_trainable: Any, x: Any) -> Any:
        out, _ = host.stateless_call(trainable, non_trainable, x, training=False)
        return out

    return jax.jit(jax.vmap(one))


def _trace(host: Any, *, k: int, longest: int, batch_size: int, shuffle: bool) -> Any:
    """One epoch of the stacked program, jitted (see the module docstring)."""
    import jax
    import jax.numpy as jnp

    full, tail = divmod(longest, batch_size)

    def step(state: Any, batch: Any, active: Any) -> tuple[Any, Any]:
        logs, new = host.train_step(state, batch)
        new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
        return new, logs

    vstep = jax.vmap(step)
    vtest = jax.vmap(host.test_step)

    def epoch(state: Any, m0: Any, base: Any, e: Any, active: Any, x: Any, y: Any, n: Any,
              xv: Any, yv: Any, wv: Any) -> tuple[Any, Any, Any]:
        slot = jnp.arange(longest)
        if shuffle:  # each fold its own permutation of its own rows; padding slots last
            keys = jax.vmap(lambda b: jax.random.fold_in(b, e))(base)
            u = jax.vmap(lambda key: jax.random.uniform(key, (longest,)))(keys)
            order = jnp.argsort(jnp.where(slot[None, :] < n[:, None], u, 2.0 + slot), axis=1)
        else:
            order = jnp.broadcast_to(slot, (k, longest))
        w = (order < n[:, None]).astype(jnp.float32)
        xs = jax.vmap(lambda a, i: a[i])(x, order)
        ys = jax.vmap(lambda a, i: a[i])(y, order)
        trainable, non_trainable, opt, _ = state
        state = (trainable, non_trainable, opt, m0)  # metrics restart each epoch

        def batches(a: Any, start: int, count: int, size: int) -> Any:
            part = a[:, start:start + count * size]
            part = part.reshape(k, count, size, *a.shape[2:])
            return jnp.moveaxis(part, 1, 0)  # (steps, K, batch, ...)

        logs: Any = None
        if full:
            def body(s: Any, b: Any) -> tuple[Any, Any]:
                return vstep(s, b, active)

            state, all_logs = jax.lax.scan(
                body, state, (batches(xs, 0, full, batch_size), batches(ys, 0, full, batch_size),
                              batches(w, 0, full, batch_size)))
            logs = jax.tree.map(lambda a: a[-1], all_logs)
        if tail:
            start = full * batch_size
            state, logs = vstep(state, (xs[:, start:], ys[:, start:], w[:, start:]), active)
        val_logs, _ = vtest((state[0], state[1], m0), (xv, yv, wv))
        return state, logs, val_logs

    return jax.jit(epoch)
