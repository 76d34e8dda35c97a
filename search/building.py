"""Building blocks for space files' ``build(hp)``: what several book spaces share.

Imported by space files; Keras is imported inside the functions so that ``import search``
stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OPTIMIZERS", "augmentation", "optimizer"]

#: Optimizer choices the book's spaces search over.
OPTIMIZERS = ("rmsprop", "adam", "sgd")


def optimizer(name: str, learning_rate: float, *, momentum: float = 0.9) -> Any:
    """A Keras optimizer by name; SGD gets ``momentum`` (plain SGD is rarely competitive)."""
    import keras

    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")


def augmentation(hp: Any, default: bool = True) -> list[Any]:
    """The book's ``ImageDataGenerator`` settings as Keras random layers, as choices.

    Random preprocessing layers are active only in training, so they can live inside the
    model. ``augment`` switches them on (``default``); each setting is its own parameter.
    """
    import keras

    if not hp.Boolean("augment", default=default):
        return []
    rotation = hp.Int("rotation_degrees", 0, 60, step=10, default=40)
    width = hp.Float("width_shift", 0.0, 0.3, step=0.05, default=0.2)
    height = hp.Float("height_shift", 0.0, 0.3, step=0.05, default=0.2)
    shear = hp.Float("shear", 0.0, 0.3, step=0.05, default=0.2)
    zoom = hp.Float("zoom", 0.0, 0.3, step=0.05, default=0.2)
    flip = hp.Boolean("horizontal_flip", default=True)
    layers: list[Any] = []
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation / 360, fill_mode="nearest"))
    if width or height:
        layers.append(keras.layers.RandomTranslation(height, width, fill_mode="nearest"))
    if shear:  # (0, s), not s: Keras 3.15 saves s as (-s, s), which it cannot load back;
        # either way each image is sheared by uniform(0, s) times a random sign
        layers.append(keras.layers.RandomShear(x_factor=(0.0, shear), fill_mode="nearest"))
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest"))
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal"))
    return layers
