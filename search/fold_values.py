"""Every fold model's initial values from one build: what K builds would give, built once.

Why: a stacked trial (:mod:`search.stacking`) trains its K fold models as one program, and
needs the K models only for their initial values; building a Keras model is ~30 ms of
Python a Boston fold (layer objects, the symbolic call through the stack, ``compile``),
a third of a small trial's time outside ``fit``. So the first fold's model is built and its
build recorded (a :class:`Tape`); the other folds' values are drawn from the tape with
their own seeds, and are the same values to the bit as building each fold's model after
``keras.utils.set_random_seed(fold_seed)`` (``tests/test_fold_values.py`` compares them
for every book space).

How, and why the values are the same: after ``set_random_seed(s)``, all the randomness of a
Keras build is Python's ``random``: every unseeded random initializer and every
``SeedGenerator`` takes ``random.randint(1, 10**9)`` when it is made (Keras'
``make_default_seed``), in the order the build makes them, and their values are functions
of those integers only. The tape knows which draw of that sequence each variable's
initializer (or seed state) took; fold ``f``'s values are the same initializers with the
same draws of ``random.Random(s_f)``'s sequence. Variables with fixed initializers
(zeros, ones, constants) or explicitly seeded ones are the same in every fold and copied.

A build the tape cannot vouch for is not taped (:func:`record` returns None, and the trial
builds each fold as before): the build used Python's ``random`` other than through Keras'
seed draws, or NumPy's global random state, or Keras' global seed generator (an unseeded
``keras.random`` call), or a variable came from an initializer that is not Keras' own, or
a variable's value is not its initializer's (weights loaded or assigned in the build).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

__all__ = ["Tape", "record", "recording"]

_SEED_HIGH = int(1e9)
_SEED_STATE = "SeedGenerator.__init__.<locals>.seed_initializer"

_installed = False
_install_lock = threading.Lock()
_local = threading.local()  # ``on``: this thread is recording a build


class _SeedDraws:
    """Python's ``random`` module as Keras' seed draws see it: ``randint`` also notes what
    it gave while this thread records (``make_default_seed`` is Keras' only caller)."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def randint(self, a: int, b: int) -> int:
        value = int(self._module.randint(a, b))
        if getattr(_local, "on", False):
            _local.seen.append(value)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _install() -> None:
    """Make Keras variables made while this thread records remember their initializer
    (Keras drops it once the value is made), and Keras' seed draws note their values.
    Once per process."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from keras.src.backend.common import variables
        from keras.src.random import seed_generator

        cls = variables.Variable
        original = cls._initialize_with_initializer

        def remembering(self: Any, initializer: Any) -> None:
            if getattr(_local, "on", False):
                self._search_initializer = initializer
            original(self, initializer)

        cls._initialize_with_initializer = remembering
        seed_generator.python_random = _SeedDraws(seed_generator.python_random)
        _installed = True


@contextmanager
def recording() -> Iterator[None]:
    """Build the model to tape inside this (the variables it makes remember how, and the
    seed draws it takes are noted, for :func:`record`)."""
    _install()
    _local.seen = []
    _local.on = True
    try:
        yield
    finally:
        _local.on = False


@dataclass(frozen=True)
class _Rule:
    """How one variable's initial value is made: copied, or drawn by ``config`` (an
    initializer's class and config) with seed draw ``draw``, or a seed state ``[draw, 0]``."""

    kind: str  # "copy" | "init" | "seed"
    value: np.ndarray | None = None
    cls: Any = None  # a Keras initializer class
    config: dict[str, Any] | None = None
    draw: int = -1
    shape: tuple[int, ...] = ()
    dtype: str = "float32"


@dataclass(frozen=True)
class Tape:
    """What one build did, enough to make any fold's initial values without building."""

    draws: int
    trainable: tuple[_Rule, ...]
    non_trainable: tuple[_Rule, ...]

    def values(self, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The (trainable, non-trainable) initial values a build after
        ``keras.utils.set_random_seed(seed)`` would have made."""
        rng = random.Random(seed)
        sequence = [rng.randint(1, _SEED_HIGH) for _ in range(self.draws)]
        return ([_make(r, sequence) for r in self.trainable],
                [_make(r, sequence) for r in self.non_trainable])


def _make(rule: _Rule, sequence: Sequence[int]) -> np.ndarray:
    if rule.kind == "copy":
        assert rule.value is not None
        return rule.value
    if rule.kind == "seed":
        return np.array([sequence[rule.draw], 0], dtype=rule.dtype)
    assert rule.cls is not None and rule.config is not None
    initializer = rule.cls.from_config({**rule.config, "seed": sequence[rule.draw]})
    return np.asarray(initializer(rule.shape, dtype=rule.dtype))


def _only_seed_draws(seed: int, seen: list[int]) -> bool:
    """Whether Python's global ``random``, seeded with ``seed``, gave exactly the seed draws
    ``seen`` and nothing else (then a fold's seeds are its own seed's first draws)."""
    rng = random.Random(seed)
    return [rng.randint(1, _SEED_HIGH) for _ in seen] == seen and \
        rng.getstate() == random.getstate()


def _keras_initializer(initializer: Any) -> bool:
    import keras

    return isinstance(initializer, keras.initializers.Initializer) and \
        type(initializer).__module__.startswith("keras.")


def _rule(variable: Any, draws: dict[int, int], sequence: Sequence[int]) -> _Rule | None:
    """How ``variable`` was initialised (None: not in a way the tape can replay)."""
    from keras.src.initializers.random_initializers import RandomInitializer

    initializer = getattr(variable, "_search_initializer", None)
    if initializer is None:
        return None
    value = np.asarray(variable.value)
    if getattr(initializer, "__qualname__", None) == _SEED_STATE:
        drawn = int(value[0])
        if value.shape == (2,) and drawn in draws:
            return _Rule("seed", draw=draws[drawn], dtype=str(value.dtype))
        return _Rule("copy", value=value)  # a seed given by the space: the same each fold
    if not _keras_initializer(initializer):
        return None
    if isinstance(initializer, RandomInitializer):
        if initializer._init_seed is not None:  # seeded by the space: the same each fold
            return _Rule("copy", value=value) if isinstance(initializer._init_seed, int) \
                else None
        if not isinstance(initializer.seed, int) or initializer.seed not in draws:
            return None
        rule = _Rule("init", cls=type(initializer), config=initializer.get_config(),
                     draw=draws[initializer.seed],
                     shape=tuple(int(d) for d in variable.shape), dtype=str(variable.dtype))
        # a value changed after it was made (loaded weights, an ``assign`` in the build) is
        # not the initializer's: then the tape would not give it back
        return rule if np.array_equal(_make(rule, sequence), value) else None
    return _Rule("copy", value=value)  # zeros, ones, constants: no randomness


def record(model: Any, seed: int) -> Tape | None:
    """The tape of ``model``, built just now inside :func:`recording` after
    ``set_random_seed(seed)``, nothing else random in between; None where its build cannot
    be replayed (module docstring)."""
    try:
        return _record(model, seed)
    finally:  # the initializers (a seed state's holds its generator) are not kept
        for v in model.variables:
            v.__dict__.pop("_search_initializer", None)


def _record(model: Any, seed: int) -> Tape | None:
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    if global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR) is not None:
        return None  # an unseeded keras.random call: Keras' global generator
    state: Any = np.random.get_state()
    fresh: Any = np.random.RandomState(seed).get_state()
    if not (np.array_equal(state[1], fresh[1]) and state[2:] == fresh[2:]):
        return None  # NumPy's global random state was used
    sequence = list(getattr(_local, "seen", None) or [])
    _local.seen = []
    if not _only_seed_draws(seed, sequence) or len(set(sequence)) != len(sequence):
        return None
    draws = {v: j for j, v in enumerate(sequence)}
    trainable = [_rule(v, draws, sequence) for v in model.trainable_variables]
    non_trainable = [_rule(v, draws, sequence) for v in model.non_trainable_variables]
    if any(r is None for r in (*trainable, *non_trainable)):
        return None
    return Tape(len(sequence), tuple(cast(list[_Rule], trainable)),
                tuple(cast(list[_Rule], non_trainable)))
