"""Building blocks for space files' ``build(hp)``: what several book spaces share.

Imported by space files; Keras is imported inside the functions so that ``import search``
stays light.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from search.hp import HyperParameters

__all__ = [
    "LEARNING_RATES",
    "OPTIMIZERS",
    "augmentation",
    "cosine_decay",
    "optimizer",
    "searched_optimizer",
    "sparse_smoothed_crossentropy",
]

#: Optimizer choices the book's spaces search over.
OPTIMIZERS = ("rmsprop", "adam", "sgd")

#: Learning-rate range ``(low, high)`` per optimizer for :func:`searched_optimizer`: each
#: optimizer's own range, since one shared range either starves Adam or lets SGD with
#: momentum diverge (Boston: 5 of 20 SGD trials went NaN at rates down to 2.5e-4).
LEARNING_RATES: Mapping[str, tuple[float, float]] = {
    "rmsprop": (1e-4, 1e-2),
    "adam": (1e-4, 1e-2),
    "adamw": (1e-4, 1e-2),
    "sgd": (1e-4, 1e-2),
}


def optimizer(
    name: str,
    learning_rate: float,
    *,
    momentum: float = 0.9,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
) -> Any:
    """A Keras optimizer by name; SGD gets ``momentum`` (plain SGD is rarely competitive).

    Args:
        name: ``rmsprop``, ``adam``, ``adamw`` or ``sgd``.
        learning_rate: The (initial) learning rate.
        momentum: SGD's momentum.
        weight_decay: Decoupled weight decay (Keras 3 applies ``w -= lr * wd * w`` in
            every optimizer); None or 0: none, except AdamW's own default of 0.004.
        clipnorm: Clip each gradient to this norm; None or 0: no clipping.
    """
    import keras

    extra: dict[str, float] = {}
    if weight_decay:
        extra["weight_decay"] = weight_decay
    if clipnorm:
        extra["clipnorm"] = clipnorm
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, **extra)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, **extra)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, **extra)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, **extra)
    raise ValueError(
        f"optimizer must be one of {', '.join([*OPTIMIZERS, 'adamw'])}; got {name!r}"
    )


def searched_optimizer(
    hp: HyperParameters,
    *,
    choices: tuple[str, ...] = ("rmsprop", "adam", "adamw", "sgd"),
    default: str = "rmsprop",
    default_learning_rate: float = 1e-3,
    learning_rates: Mapping[str, tuple[float, float]] = LEARNING_RATES,
) -> Any:
    """Define an optimizer choice with one learning-rate range per optimizer; return it.

    Parameters (each branch's own, so a sampler learns each optimizer's good rates apart):

    - ``optimizer``: one of ``choices`` (``default``: the book's).
    - ``learning_rate`` for the default optimizer (the book's name and value, so the default
      point is unchanged), ``<name>_learning_rate`` for the others; log scale, ranges from
      ``learning_rates``. Each other branch starts at ``default_learning_rate`` clipped into
      its range.
    - ``adamw_weight_decay`` (AdamW only): decoupled weight decay, log 1e-4..0.3, default
      0.004 (Keras').
    - ``sgd_momentum`` (SGD only): 0.0, 0.5, 0.9 (default 0.9) and ``sgd_clipnorm``: SGD's
      gradients are always clipped (0.5, 1 or 5, default 1): with momentum 0.9 and an MSE
      loss on unscaled targets, unclipped SGD diverges to NaN even at small rates.
    """
    name = hp.Choice("optimizer", list(choices), default=default)
    low, high = learning_rates[name]
    key = "learning_rate" if name == default else f"{name}_learning_rate"
    start = default_learning_rate if name == default else min(max(default_learning_rate, low),
                                                                high)
    lr = hp.Float(key, low, high, sampling="log", default=start)
    if name == "adamw":
        decay = hp.Float("adamw_weight_decay", 1e-4, 0.3, sampling="log", default=0.004)
        return optimizer(name, lr, weight_decay=decay)
    if name == "sgd":
        momentum = hp.Choice("sgd_momentum", [0.0, 0.5, 0.9], default=0.9)
        clipnorm = hp.Choice("sgd_clipnorm", [0.5, 1.0, 5.0], default=1.0)
        return optimizer(name, lr, momentum=momentum, clipnorm=clipnorm)
    return optimizer(name, lr)


def cosine_decay() -> Any:
    """A callback that anneals the learning rate from its start to 0 over the fit's epochs.

    Per epoch ``lr = lr0 * (1 + cos(pi * epoch / epochs)) / 2``, with ``epochs`` read from
    the fit itself, so a refit that trains for fewer epochs still anneals to the end. Build
    it fresh per fit (it remembers ``lr0``), as ``fit_settings(hp)`` does.
    """
    import keras

    class CosineDecay(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.start = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            epochs = max(int(self.params.get("epochs") or 1), 1)
            lr = self.start * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
            self.model.optimizer.learning_rate.assign(lr)

    return CosineDecay()


def sparse_smoothed_crossentropy(smoothing: float, classes: int) -> Any:
    """Categorical cross-entropy with label smoothing, for int labels.

    Keras' ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; this one-hots the
    labels inside the loss, so the data stay int labels (the space contract's sparse form).
    The class is registered with Keras as ``search>SparseSmoothedCrossentropy``: a saved
    model loads compiled once ``search.building`` is imported (``compile=False`` always).
    """
    return _smoothed_loss_class()(smoothing=smoothing, classes=classes)


_SMOOTHED: list[Any] = []


def _smoothed_loss_class() -> Any:
    if _SMOOTHED:
        return _SMOOTHED[0]
    import keras

    @keras.saving.register_keras_serializable(package="search")
    class SparseSmoothedCrossentropy(keras.losses.Loss):
        def __init__(self, smoothing: float = 0.0, classes: int = 2, **kwargs: Any) -> None:
            kwargs.setdefault("name", "sparse_smoothed_crossentropy")
            super().__init__(**kwargs)
            self.smoothing = float(smoothing)
            self.classes = int(classes)

        def call(self, y_true: Any, y_pred: Any) -> Any:
            ops = keras.ops
            labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
            return keras.losses.categorical_crossentropy(
                ops.one_hot(labels, self.classes), y_pred, label_smoothing=self.smoothing)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "smoothing": self.smoothing,
                    "classes": self.classes}

    _SMOOTHED.append(SparseSmoothedCrossentropy)
    return SparseSmoothedCrossentropy


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
