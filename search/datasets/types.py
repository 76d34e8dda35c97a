"""Shapes of what the loaders return, shared so every loader has one signature style."""

from __future__ import annotations

from typing import Any, TypeAlias

from numpy.typing import NDArray

Array: TypeAlias = NDArray[Any]
Split: TypeAlias = tuple[Array, Array]
"""``(x, y)`` of one subset."""

LoadResult: TypeAlias = tuple[Split, Split]
"""``((x_train, y_train), (x_test, y_test))``, as every ``keras.datasets`` loader returns."""

__all__ = ["Array", "LoadResult", "Split"]
