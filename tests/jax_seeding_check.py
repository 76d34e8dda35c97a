"""Run under KERAS_BACKEND=jax by tests/test_keras_backends.py: a search on JAX never
imports TensorFlow (Keras' ``tf.available`` checks would), and seeding without it gives the
same weights, dropout masks, NumPy and Keras draws as Keras' own with TensorFlow imported.
Prints "same" on success."""

import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from search.runner import RunSettings, start_run
from search.tf_setup import set_random_seed

assert keras.backend.backend() == "jax"
space = Path(__file__).parent / "spaces" / "contract.py"
with tempfile.TemporaryDirectory() as out:  # trials, saved fold models, an ensemble API load
    store = start_run(space, RunSettings(trials=2, folds=2, threads=1), out=out, name="r",
                      enqueue=[{"boom": False, "bad": False}])
    assert [t.status for t in store.trials()] == ["complete", "complete"]
    assert "tensorflow" not in sys.modules, "a JAX search imported TensorFlow"


def draw() -> list[np.ndarray]:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.Dropout(0.5)])
    x = np.ones((2, 3), "float32")
    return [w.copy() for w in model.get_weights()] + [
        np.asarray(model(x, training=True)), np.random.rand(2),
        np.asarray(keras.random.uniform((2,)))]


set_random_seed(5)
ours = draw()
assert "tensorflow" not in sys.modules
import tensorflow  # noqa: E402, F401 - now Keras' tf.available is true again

keras.utils.set_random_seed(5)
theirs = draw()
for a, b in zip(ours, theirs, strict=True):
    np.testing.assert_array_equal(a, b)
print("same")
