"""Time ensemble fitting on a Reuters-sized problem: 10 members x 25,000 rows x 46 classes.

Run from the repository root::

    python benchmarks/bench_ensemble_fit.py [--repeats 5] [--rows 25000] [--classes 46]

Prints a markdown table (median wall and CPU seconds of ``fit``, and the fitted out-of-fold
log loss) and returns the rows from :func:`main`. The target is NelderMeadEnsemble with its
defaults under 2 s on a 2-core machine. ``fit`` includes validating the float32 predictions
(and converting them to float64), as it would for arrays loaded from ``oof.npy``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ensembles import (
    AverageEnsemble,
    BaseEnsemble,
    BestSingle,
    GreedyEnsemble,
    NelderMeadEnsemble,
)

METHODS: dict[str, Callable[[], BaseEnsemble]] = {
    "average": lambda: AverageEnsemble(loss="log_loss"),
    "best single": lambda: BestSingle(loss="log_loss"),
    "greedy (max_iter=50)": lambda: GreedyEnsemble(loss="log_loss"),
    "nelder-mead (defaults)": lambda: NelderMeadEnsemble(loss="log_loss", random_state=0),
}


def make_predictions(
    n_members: int, n_rows: int, n_classes: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs of members of differing quality, as a search's top trials produce.

    Classes are imbalanced (Zipf-like, as in Reuters), rows differ in difficulty for every
    member alike, members share part of their errors (they were trained on the same folds),
    and differ in skill and calibration (temperature), so that the best weights are neither
    equal nor one-hot.
    """
    rng = np.random.default_rng(seed)
    frequencies = 1.0 / np.arange(1, n_classes + 1) ** 1.1
    y = rng.choice(n_classes, size=n_rows, p=frequencies / frequencies.sum())
    difficulty = rng.gamma(2.0, 0.5, size=n_rows)
    shared_noise = rng.normal(size=(n_rows, n_classes))
    skill = np.linspace(1.5, 4.0, n_members)
    temperature = rng.uniform(0.6, 1.6, size=n_members)
    predictions = np.empty((n_members, n_rows, n_classes), dtype=np.float32)
    for member in range(n_members):
        noise = 0.6 * shared_noise + 0.8 * rng.normal(size=(n_rows, n_classes))
        logits = 1.5 * noise + np.log(frequencies)
        logits[np.arange(n_rows), y] += skill[member] * difficulty
        logits /= temperature[member]
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        predictions[member] = exp / exp.sum(axis=1, keepdims=True)
    return predictions, y


def time_fit(
    make: Callable[[], BaseEnsemble], predictions: np.ndarray, y: np.ndarray, repeats: int
) -> tuple[float, float, float]:
    """Returns median wall seconds, median CPU seconds and the fitted loss."""
    walls, cpus, loss = [], [], float("nan")
    for _ in range(repeats):
        ensemble = make()
        wall, cpu = time.perf_counter(), time.process_time()
        ensemble.fit(predictions, y)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        loss = ensemble.loss_
    return statistics.median(walls), statistics.median(cpus), loss


def main(argv: Sequence[str] | None = None) -> list[dict[str, float | str]]:
    """Runs the benchmark, prints the table and returns its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--rows", type=int, default=25_000)
    parser.add_argument("--classes", type=int, default=46)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    predictions, y = make_predictions(args.members, args.rows, args.classes, args.seed)
    rows: list[dict[str, float | str]] = []
    for method, make in METHODS.items():
        wall, cpu, loss = time_fit(make, predictions, y, args.repeats)
        rows.append({"method": method, "seconds": wall, "cpu_seconds": cpu, "oof_log_loss": loss})

    print(
        f"{args.members} members x {args.rows:,} rows x {args.classes} classes, "
        f"median of {args.repeats} fits\n"
    )
    print("| method | seconds (median) | CPU seconds (median) | OOF log loss |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['method']} | {row['seconds']:.3f} | {row['cpu_seconds']:.3f} | "
            f"{row['oof_log_loss']:.4f} |"
        )
    return rows


if __name__ == "__main__":
    main()
