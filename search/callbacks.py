"""The book's training callbacks as searchable choices, shared by every space file.

Chollet's chapter 7.2 pairs ``EarlyStopping`` with ``ModelCheckpoint(save_best_only=True)``
("stop when it stops improving, keep the best model") and shows
``ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=10)``. Whether they help is a
question for the search, not a fixed choice, so :func:`book_callbacks` defines them as
``hp`` parameters: a switch for each, and its settings as conditional parameters that exist
only when the switch is on. Both switches default to off, so a space's default point stays
the book's plain model.

Both callbacks watch ``val_loss``: the trial passes each fold's validation part as
``validation_data``, so it always exists. ``ModelCheckpoint`` becomes
``EarlyStopping(restore_best_weights=True)``, which keeps the best epoch's weights in memory
instead of writing a file per trial and fold.

Keras is imported inside the function, so importing this module (or ``search``) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.hp import HyperParameters

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras

__all__ = ["MONITOR", "book_callbacks"]

MONITOR = "val_loss"
"""What both callbacks watch: each fold's validation loss, always present in a trial."""


def book_callbacks(
    hp: HyperParameters,
    *,
    early_stopping_default: bool = False,
    reduce_lr_default: bool = False,
) -> list[keras.callbacks.Callback]:
    """Define the callback parameters on ``hp`` and return the callbacks they switch on.

    Parameters (names are shared by every space, so runs compare across spaces):

    - ``early_stopping`` (bool): stop when ``val_loss`` has not improved for
      ``early_stopping_patience`` epochs (1-10, book: 1) and restore the best epoch's weights.
    - ``reduce_lr_on_plateau`` (bool): multiply the learning rate by ``reduce_lr_factor``
      (0.1-0.5, book: 0.1) after ``reduce_lr_patience`` epochs (1-10, book: 10) without
      improvement.

    Args:
        hp: The trial's ``hp``.
        early_stopping_default: Default of the ``early_stopping`` switch; keep False where
            the space's default point is the book's model without callbacks.
        reduce_lr_default: Default of the ``reduce_lr_on_plateau`` switch.

    Returns:
        The callbacks to pass to ``Model.fit`` (fresh objects: callbacks keep state, so each
        fold must get its own, which calling this from ``fit_settings`` guarantees).
    """
    import keras

    callbacks: list[keras.callbacks.Callback] = []
    if hp.Boolean("early_stopping", default=early_stopping_default):
        patience = hp.Int("early_stopping_patience", 1, 10, default=1)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=MONITOR, patience=patience, restore_best_weights=True
            )
        )
    if hp.Boolean("reduce_lr_on_plateau", default=reduce_lr_default):
        factor = hp.Float("reduce_lr_factor", 0.1, 0.5, step=0.1, default=0.1)
        patience = hp.Int("reduce_lr_patience", 1, 10, default=10)
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=MONITOR, factor=factor, patience=patience)
        )
    return callbacks
