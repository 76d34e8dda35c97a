"""Model reuse on JAX (issue 11): one Boston trial with and without ``reuse_models``.

Usage: ``python -m benchmarks.reuse [DATA_DIR]`` (real Boston in Keras' layout; default
``benchmarks/out/data``). Runs the book's net at a fixed cost
(``benchmarks/spaces/boston_fixed_cost.py``, 4 folds × 25 epochs, one thread) twice each
way, alternating, after one warm-up trial, and prints seconds per trial and the CV score of
each: the scores must be equal (reuse changes no number), the seconds show the saving.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from search.folds import make_folds
    from search.hp import FixedHP
    from search.space import load_space
    from search.tf_setup import configure_jax_cache
    from search.trial import Dataset, run_trial

    configure_jax_cache()
    data_dir = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "benchmarks" / "out" / "data")
    space = load_space(ROOT / "benchmarks" / "spaces" / "boston_fixed_cost.py")
    data = Dataset.from_space(space, data_dir)
    fold_of = make_folds(data.y_train, space.task, 4, 0)
    run_trial(space, FixedHP({}), data, fold_of=fold_of, number=0, seed=0)  # warm-up
    for reuse in (False, True, False, True):
        t0 = time.perf_counter()
        result = run_trial(space, FixedHP({}), data, fold_of=fold_of, number=1, seed=0,
                           reuse_models=reuse)
        print(f"reuse={reuse!s:5}  {time.perf_counter() - t0:6.2f} s a trial  "
              f"CV MAE {result.record.score:.6f}")


if __name__ == "__main__":
    main()
