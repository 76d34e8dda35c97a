"""Process settings that must be applied before Keras' backend runs its first op: which
backend (JAX, TensorFlow, PyTorch), its threads, its GPU memory."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from search.errors import UsageError

__all__ = ["DEFAULT_BACKEND", "KERAS_BACKENDS", "configure_gpu_memory", "configure_jax_cache",
           "configure_threads",
           "current_backend", "default_backend", "prefer_backend", "select_backend"]

#: Keras backends a run may train on, and the package each needs.
KERAS_BACKENDS = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def current_backend() -> str:
    """The Keras backend this process uses or will use: Keras' own choice once it is
    imported, else ``KERAS_BACKEND``, else ``~/.keras/keras.json``, else TensorFlow."""
    if "keras" in sys.modules:
        import keras

        return str(keras.backend.backend())
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return str(json.loads((home / "keras.json").read_text())["backend"])
    except (OSError, ValueError, KeyError, TypeError):
        return "tensorflow"


#: The backend trials train on unless a run, its space or ``KERAS_BACKEND`` says otherwise.
#: Why JAX: on this project's small models Keras' fixed cost per step dominates, and it is
#: several times lower on JAX (measured: Boston's book net, 4 folds x 100 epochs, 19.3 s on
#: TensorFlow, 5.7 s on JAX; benchmarks/RESULTS.md, "Speed"), at the same CV score.
DEFAULT_BACKEND = "jax"


def default_backend() -> str:
    """The backend when nobody chose one: Keras' if it is already imported here (library
    use), else ``KERAS_BACKEND`` if set, else :data:`DEFAULT_BACKEND` when installed, else
    TensorFlow. (``~/.keras/keras.json`` is not a choice: Keras writes it on first import.)"""
    if "keras" in sys.modules or os.environ.get("KERAS_BACKEND"):
        return current_backend()
    if importlib.util.find_spec(KERAS_BACKENDS[DEFAULT_BACKEND]) is not None:
        return DEFAULT_BACKEND
    return "tensorflow"


def select_backend(name: str | None) -> str:
    """Make ``name`` this process's Keras backend (before Keras is imported); return the
    backend in use. None: :func:`default_backend`.

    Keras reads ``KERAS_BACKEND`` once, at import, so this must run first in every process
    that trains: the driver, ``--jobs`` children, Ray workers.
    """
    if name is None:
        name = default_backend()
    if name not in KERAS_BACKENDS:
        raise UsageError(f"--keras-backend must be one of {', '.join(KERAS_BACKENDS)}; "
                         f"got {name!r}")
    if importlib.util.find_spec(KERAS_BACKENDS[name]) is None:
        hint = {"jax": 'pip install "search-ensembles[jax]"',
                "torch": "pip install torch"}.get(name, "pip install tensorflow-cpu")
        raise UsageError(f"--keras-backend {name} needs the {KERAS_BACKENDS[name]!r} package, "
                         f"which is not installed: {hint}")
    if "keras" in sys.modules:
        used = current_backend()
        if used != name:
            raise UsageError(
                f"--keras-backend {name}: Keras was already imported in this process with "
                f"backend {used!r}; set KERAS_BACKEND={name} before importing Keras, or use "
                f"--keras-backend {used}")
        if name == "jax":
            configure_jax_cache()
        return name
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":
        configure_jax_cache()
    return name


#: Where compiled XLA programs are kept between folds, trials and runs (JAX backend).
JAX_CACHE = Path.home() / ".cache" / "search-ensembles" / "jax"


def configure_jax_cache() -> Path:
    """Keep JAX's compiled programs on disk (``SEARCH_JAX_CACHE``, default
    :data:`JAX_CACHE`, at most 2 GB, least recently used first out).

    Why: every fold builds a new model, and JAX compiles each new model's train, test and
    predict steps afresh — measured on Boston's book net (4 folds × 25 epochs): 8 compiles
    per fold, 58 % of a trial. Models of one architecture compile to the same program, so
    with the cache a trial drops from 3.9 s to 1.6 s (its folds after the first, and every
    later trial of that architecture, load instead of compiling). Must be set before JAX
    starts; a ``JAX_COMPILATION_CACHE_DIR`` already set is left as it is.
    """
    cache = Path(os.environ.get("SEARCH_JAX_CACHE") or JAX_CACHE)
    settings = {"JAX_COMPILATION_CACHE_DIR": str(cache),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_COMPILATION_CACHE_MAX_SIZE": str(2 * 2**30)}
    if "jax" in sys.modules:
        import jax

        if getattr(jax.config, "jax_compilation_cache_dir", None) is None:
            for key, value in settings.items():
                jax.config.update(key.lower(), int(value) if value.isdigit() else value)
        return Path(getattr(jax.config, "jax_compilation_cache_dir", None) or cache)
    for key, value in settings.items():
        os.environ.setdefault(key, value)
    return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])


def prefer_backend(name: str | None) -> str:
    """Use ``name`` if Keras is not imported yet here (a run's own backend for its refits),
    else the backend already in use: ``.keras`` files load on any backend."""
    if name is None or "keras" in sys.modules or name not in KERAS_BACKENDS or \
            importlib.util.find_spec(KERAS_BACKENDS[name]) is None:
        return current_backend()
    return select_backend(name)


def configure_threads(threads: int) -> None:
    """Set TensorFlow's intra- and inter-op thread pools to ``threads`` (0 = TF's default).

    Why: small dense models train faster with one thread per process (measured on this
    project's 2-core machines: Boston's book model, 80 epochs, 18.2 s → 11.8 s), and parallel
    trial processes should not fight over cores. Must run before TensorFlow initialises.
    On JAX only 1 is a limit (XLA has no N-thread flag; larger values keep XLA's pool).
    """
    if threads < 0:
        raise UsageError(f"--threads must be 0 (TensorFlow's default) or more; got {threads}")
    if threads == 0:
        return
    backend = current_backend()
    if backend == "jax":
        # XLA's CPU client reads its thread flags once, when JAX starts. XLA can be made
        # single-threaded (JAX's documented recipe, jax-ml/jax#743), but has no flag for
        # "N threads": with threads > 1 it keeps its own pool (all cores). A bare
        # "intra_op_parallelism_threads=N" without the leading "--" flag is read by XLA as
        # a *file name* and aborts the process, so nothing is set then.
        if threads == 1 and "jax" not in sys.modules:
            flags = os.environ.get("XLA_FLAGS", "")
            if "intra_op_parallelism_threads" not in flags:
                extra = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
                os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()
        return
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        return
    import tensorflow as tf

    if (tf.config.threading.get_intra_op_parallelism_threads() == threads
            and tf.config.threading.get_inter_op_parallelism_threads() == threads):
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # TF already initialised in this process
        raise UsageError(
            f"--threads {threads} must be set before TensorFlow starts; "
            "set it before building any model in this process"
        ) from exc


def configure_gpu_memory() -> list[str]:
    """Let TensorFlow take GPU memory as it needs it, not all of it at start.

    Why: several trials share one GPU (``--jobs``, Ray's ``--gpus-per-trial 0.5``); by
    default the first process to start claims nearly all of the GPU's memory and the others
    fail out of memory. Must run before TensorFlow touches the GPU; a no-op without GPUs.

    Returns:
        The names of the GPUs set to grow (empty on machines without one, and for JAX,
        which gets ``XLA_PYTHON_CLIENT_PREALLOCATE=false``: memory as needed).
    """
    backend = current_backend()
    if backend == "jax":
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return []
    if backend != "tensorflow":
        return []
    import tensorflow as tf

    done = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
            done.append(gpu.name)
        except RuntimeError:  # already initialised in this process: leave it as it is
            continue
    return done


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed``, in a process where TensorFlow is imported only if
    something uses it (:func:`tensorflow_only_if_imported`) and, on JAX, a model's initial
    values cost no compilation per new shape (:func:`search.initial_values.install`: the
    same values)."""
    import keras

    from search.initial_values import install

    tensorflow_only_if_imported()
    install()
    keras.utils.set_random_seed(seed)


def tensorflow_only_if_imported() -> None:
    """On JAX/torch, make Keras treat TensorFlow as available only once it is imported.

    Why: Keras asks ``tf.available`` (its ``LazyModule``, 17 places: seeding, saving a
    model, data adapters), and asking *imports* TensorFlow: 5.3 s and ~400 MB in every
    process that trains (measured with cProfile: the largest single cost of a short JAX
    search, paid again by each ``--jobs`` child and Ray worker), only to learn that no
    object is a TensorFlow object and to seed a TensorFlow that nothing uses. Before
    TensorFlow is imported no object *can* be a TensorFlow one, so the answers are the same;
    once a space imports it (``tf.data``) or something uses it (TensorBoard reaches
    ``tf.summary`` through the same LazyModule, which imports it), Keras' answer is used.
    Does nothing on the TensorFlow backend, or if Keras' internals are not as expected.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        return
    try:
        from keras.src.utils import module_utils
    except ImportError:  # a Keras without this layout: it imports TensorFlow, slower only
        return
    lazy = getattr(module_utils, "tensorflow", None)
    base: Any = getattr(module_utils, "LazyModule", None)
    if lazy is None or base is None or type(lazy) is not base:
        return  # already done, or not Keras' plain LazyModule
    asked = base.available.fget

    class TensorFlowIfImported(base):
        @property
        def available(self) -> bool:
            return "tensorflow" in sys.modules and bool(asked(self))

    lazy.__class__ = TensorFlowIfImported
