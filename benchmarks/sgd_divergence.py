"""Issue 12 check: unclipped SGD (the spaces before issue 12) against the clipped SGD of now.

Boston's first 303/101 split of the training rows (seed 0), the space's SGD (momentum 0.9) at
3 learning rates × 2 depths × BatchNormalization or not (256 units, relu, batch 8, 80 epochs,
one seed), once with ``spaces/boston_housing.py`` as of commit d07f79d (before issue 12: no
clipping) and once with today's (``sgd_clipnorm`` 1.0). Prints each pair's best validation
MAE or NaN, then the counts. Validation rows only; the test split is not read.

Usage: ``python -m benchmarks.sgd_divergence [tensorflow|jax]`` (default tensorflow).
"""

import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", sys.argv[1] if len(sys.argv) > 1 else "tensorflow")

from benchmarks._common import ROOT, data_dir
from search.tf_setup import configure_threads

BEFORE = "d07f79d"


def main() -> None:
    configure_threads(1)
    import keras
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    from search.datasets import boston_housing
    from search.hp import FixedHP
    from search.space import load_space

    (x, y), _ = boston_housing(data_dir=data_dir("boston_housing"))
    idx = np.random.RandomState(0).permutation(len(x))
    tr, va = idx[:303], idx[303:]
    sc = StandardScaler().fit(x[tr])
    xt, xv = sc.transform(x[tr]), sc.transform(x[va])
    old_text = subprocess.run(["git", "show", f"{BEFORE}:spaces/boston_housing.py"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "boston_housing.py").write_text(old_text)
        old = load_space(Path(tmp) / "boston_housing.py")
        new = load_space(ROOT / "spaces" / "boston_housing.py")
        out = []
        for lr, layers, bn in itertools.product([2.5e-4, 1e-3, 4e-3], [2, 4], [False, True]):
            base = {"layers": layers, "batchnorm": bn, "activation": "relu",
                    **{f"units_{i}": 256 for i in range(layers)}}
            row: dict = {"lr": lr, "layers": layers, "bn": bn}
            for name, space, params in (
                    ("old", old, {**base, "optimizer": "sgd", "learning_rate": lr}),
                    ("new", new, {**base, "optimizer": "sgd", "sgd_learning_rate": lr})):
                keras.utils.set_random_seed(0)
                model = space.build(FixedHP(params))
                h = model.fit(xt, y[tr], validation_data=(xv, y[va]), epochs=80, batch_size=8,
                              verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()]).history
                row[name] = ("NaN" if not np.isfinite(h["loss"][-1])
                             else round(float(min(h["val_mae"])), 2))
            print(json.dumps(row), flush=True)
            out.append(row)
    print("old NaN", sum(r["old"] == "NaN" for r in out), "new NaN",
          sum(r["new"] == "NaN" for r in out), "of", len(out))


if __name__ == "__main__":
    main()
