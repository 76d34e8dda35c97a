"""Keras' initial values on JAX without a compilation per new variable shape.

Why: on JAX every eager op is compiled for its input shapes. Building a model draws each
variable's initial value with one such op (``jax.random.uniform`` for a Glorot kernel, a
``jnp.zeros`` for a bias or an optimizer slot), so a model with a *new* layer width pays a
compilation per new shape: measured on this project's 2-core machines, 0.20 s for a uniform
draw and 0.03 s for zeros of a new shape, ~0.4 s for a 4-layer Boston net whose first width
changed, against 0.05 s to build the same net again (a search varies widths every trial,
so this was most of a trial's time outside ``fit``). Nothing in Keras or JAX avoids it:
JAX has no shape-polymorphic eager ops, and its persistent cache skips compilations this
short.

How, with the same values to the bit: with JAX's partitionable Threefry (the default since
JAX 0.5, checked here), the random bits of element ``i`` depend only on the key and ``i``'s
position in the flattened array, not on the array's shape. So a draw of shape ``s`` equals
the first ``prod(s)`` values of a draw of any larger flat size, reshaped. :func:`install`
makes Keras' JAX ``uniform``, ``normal`` and ``truncated_normal`` draw a flat array of the
next power-of-two size (one compilation per size class, not per shape) and cut it to
shape in NumPy; ``zeros`` and ``ones`` are made in NumPy. Results go to the device with
``jax.device_put``, which compiles nothing. Inside a JAX trace (a layer's own random op in
a training step) and for dtypes NumPy cannot slice, the original functions run unchanged.
``tests/test_initial_values.py`` checks the values equal Keras' own for the initializers
Keras ships.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

__all__ = ["install", "installed"]

#: Arrays up to this many elements are drawn by size class; larger ones as Keras does
#: (their compilation is small beside their own cost, and a class doubles the draw).
MAX_BUCKETED = 2**24
_MIN_CLASS = 2**10

_lock = threading.Lock()
_installed = False


def installed() -> bool:
    """Whether :func:`install` replaced Keras' functions in this process."""
    return _installed


def _size_class(n: int) -> int:
    return max(_MIN_CLASS, 1 << max(0, n - 1).bit_length())


def _static_shape(shape: Any) -> tuple[int, ...] | None:
    try:
        out = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        return None
    return out if all(d >= 0 for d in out) else None


def _tracing(*values: Any) -> bool:
    """Whether a JAX trace is under way (or ``values`` hold tracers): then the original
    functions run, so traced programs and Keras' own tracing checks (which make a
    ``zeros``/``ones`` and ask whether it is a tracer) see what they always did."""
    import jax
    import jax.numpy as jnp

    if any(isinstance(v, jax.core.Tracer) for v in values):
        return True
    return isinstance(jnp.ones(()), jax.core.Tracer)  # as keras.src.utils.jax_utils asks


def _bucketed(original: Any, draw: Any) -> Any:
    """Wrap Keras' ``original(shape, *, dtype, seed, **kw)`` so that a concrete shape is
    drawn as ``draw(key, (size_class,), dtype, **kw)`` and cut to shape."""

    def wrapper(shape: Any, *args: Any, **kwargs: Any) -> Any:
        import jax
        from keras.src.backend.config import floatx
        from keras.src.backend.jax.random import jax_draw_seed

        static = _static_shape(shape)
        if static is None or args or _tracing(*kwargs.values()):
            return original(shape, *args, **kwargs)
        n = math.prod(static)
        dtype = kwargs.get("dtype") or floatx()
        if n == 0 or n > MAX_BUCKETED or dtype not in ("float32", "float64", "float16"):
            return original(shape, *args, **kwargs)
        key = jax_draw_seed(kwargs.get("seed"))
        flat = np.asarray(draw(key, _size_class(n), dtype, kwargs))
        return jax.device_put(flat[:n].reshape(static).copy())  # a contiguous copy

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    return wrapper


def _filled(original: Any, fill: Any) -> Any:
    def wrapper(shape: Any, dtype: Any = None) -> Any:
        import jax
        from keras.src.backend.common import standardize_dtype
        from keras.src.backend.config import floatx

        static = _static_shape(shape)
        if static is None or _tracing():
            return original(shape, dtype=dtype)
        name = standardize_dtype(dtype or floatx())
        if name == "bfloat16":  # NumPy has no bfloat16 of its own
            return original(shape, dtype=dtype)
        return jax.device_put(fill(static, dtype=np.dtype(name)))

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    return wrapper


def install() -> bool:
    """Replace Keras' JAX ``uniform``, ``normal``, ``truncated_normal``, ``zeros`` and
    ``ones`` with the size-class versions, once per process. Returns False (and changes
    nothing) where the values could differ: another Keras backend, or JAX without
    partitionable Threefry."""
    global _installed
    with _lock:
        if _installed:
            return True
        import keras

        if keras.backend.backend() != "jax":
            return False
        import jax

        if not bool(jax.config.jax_threefry_partitionable):  # type: ignore[attr-defined]
            return False
        from keras.src.backend.jax import numpy as knp
        from keras.src.backend.jax import random as krandom

        def uniform(key: Any, size: int, dtype: str, kw: dict[str, Any]) -> Any:
            return jax.random.uniform(key, shape=(size,), dtype=dtype,
                                      minval=kw.get("minval", 0.0),
                                      maxval=kw.get("maxval", 1.0))

        def normal(key: Any, size: int, dtype: str, kw: dict[str, Any]) -> Any:
            sample = jax.random.normal(key, shape=(size,), dtype=dtype)
            return sample * kw.get("stddev", 1.0) + kw.get("mean", 0.0)

        def truncated(key: Any, size: int, dtype: str, kw: dict[str, Any]) -> Any:
            sample = jax.random.truncated_normal(key, shape=(size,), lower=-2.0, upper=2.0,
                                                 dtype=dtype)
            return sample * kw.get("stddev", 1.0) + kw.get("mean", 0.0)

        krandom.uniform = _bucketed(krandom.uniform, uniform)
        krandom.normal = _bucketed(krandom.normal, normal)
        krandom.truncated_normal = _bucketed(krandom.truncated_normal, truncated)
        knp.zeros = _filled(knp.zeros, np.zeros)
        knp.ones = _filled(knp.ones, np.ones)
        _installed = True
        return True
