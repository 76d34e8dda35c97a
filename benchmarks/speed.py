# ruff: noqa: E501  (the RESULTS.md section is a long markdown f-string)
"""Speed (issue 11): trials per hour against a plain Keras K-fold loop on the same trials.

1. **Same trials two ways** on real Boston (``spaces/boston_housing.py``, 4 folds, TPE seed
   0, one thread): ``python -m search run`` (this project's defaults: JAX backend,
   ``steps_per_execution``) against a plain Keras K-fold loop on TensorFlow that replays the
   run's completed trials: the same space file (``build``, ``fit_settings``,
   ``preprocessor``), parameters and folds (``folds.npy``), fit on the fold's training rows,
   predict its validation rows, score them, as the peer scripts' objectives do. Each side's
   wall is its process, launch to exit; trials/hour and their ratio (goal ≥ 2.0x) and the CV
   scores of the two (equal within noise). Then the same on MNIST dense (12,000-row subset,
   3 folds).
2. **The peer scripts** (``shared/peers/boston_optuna.py``, ``boston_kerastuner.py``: plain
   Optuna / Keras Tuner searches with hand-written 4-fold CV) beside ``run`` at the same
   trial budget: wall, best CV MAE, test MAE of the best trial and of the ensemble.
3. **Overhead over 100 trials in one process** (``benchmarks/spaces/boston_fixed_cost.py``:
   the book net at a fixed cost per trial): time outside ``model.fit`` as a fraction of the
   wall (goal ≤ 2 %), time in the store writer per trial (goal ≤ 50 ms: what the trial's
   thread spends in it, and beside it what the writer's disk thread spends writing and
   syncing its files) and resident memory after each trial (goal: flat within ±10 %).

The two sides of a comparison run side by side, one core each (2 cores). Run:
``python benchmarks/run.py speed``; part 3 alone (its two 100-trial runs, ~20 min):
``python -m benchmarks.speed overhead``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import OUT, ROOT, data_dir, machine, write_section

NAME = "speed"
RUNS = OUT / "runs" / NAME
PEERS = ROOT.parent / "shared" / "peers"
# JAX's compilation cache starts empty for each run of this benchmark (a user's first run);
# within it, later folds and trials of one architecture load what earlier ones compiled.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
       "SEARCH_JAX_CACHE": str(RUNS / "jax-cache")}
ENV.pop("KERAS_BACKEND", None)

REPLAY = r'''
import json, os, sys, time
t_start = time.perf_counter()
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras
from search.hp import FixedHP
from search.space import load_space
from search.store import RunStore

space = load_space(sys.argv[1])
store = RunStore(sys.argv[2])
(x, y), _ = space.load_data(sys.argv[3])
y = np.asarray(y)
fold_of = store.load_array("folds.npy")
out, fit_s = [], 0.0
for t in store.trials():
    if t.status != "complete":
        continue
    scores = []
    for k in range(int(fold_of.max()) + 1):
        tr, va = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        keras.backend.clear_session()
        keras.utils.set_random_seed(k)
        hp = FixedHP(t.params)
        model = space.build(hp)
        fs = space.fit_settings(hp)
        pre = space.preprocessor(hp)
        xtr, xva = x[tr], x[va]
        if pre is not None:
            pre.fit(xtr)
            xtr, xva = pre.transform(xtr), pre.transform(xva)
        callbacks, extra = list(fs["callbacks"]), {}
        if fs.get("early_stopping"):  # the same stopping rule, as a Keras user writes it
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=fs["early_stopping"], restore_best_weights=True))
            extra["validation_data"] = (xva, y[va])
        t0 = time.perf_counter()
        model.fit(xtr, y[tr], epochs=fs["epochs"], batch_size=fs["batch_size"],
                  callbacks=callbacks, verbose=0, **extra)
        fit_s += time.perf_counter() - t0
        pred = model.predict(xva, verbose=0)
        scores.append(space.metric(y[va], pred, space.task))
    out.append({"number": t.number, "score": float(np.mean(scores))})
print(json.dumps({"trials": out, "fit_s": fit_s, "wall_s": time.perf_counter() - t_start}))
'''

OVERHEAD = r'''
import json, resource, sys, time
from search.runner import RunSettings, start_run
from search.events import SearchEvents
from search.writer import StoreWriter

spent = {"writer": 0.0, "disk": 0.0}
import search.writer as _writer_module
_real_write = _writer_module.write_bytes
def _timed_write(*a, **k):  # the writer's disk thread: each file's write, fsync and rename
    t0 = time.perf_counter()
    try:
        return _real_write(*a, **k)
    finally:
        spent["disk"] += time.perf_counter() - t0
_writer_module.write_bytes = _timed_write
for name in ("started", "fold", "finished"):
    real = getattr(StoreWriter, name)
    def timed(self, *a, _real=real, **k):
        t0 = time.perf_counter()
        try:
            return _real(self, *a, **k)
        finally:
            spent["writer"] += time.perf_counter() - t0
    setattr(StoreWriter, name, timed)

def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

import queue, threading
from search import trial as _trial

class Events(SearchEvents):
    """RSS after each trial once its memory went back (the trim runs on a thread of its
    own after the trial): read on a thread, so the run never waits for it."""
    rss = []
    asked = queue.Queue()
    def trial_finished(self, record, best):
        self.asked.put(record.number)
    def read(self):
        while self.asked.get() is not None:
            _trial.trim_idle.wait(5)
            self.rss.append(rss_mb())

ev = Events()
reader = threading.Thread(target=ev.read, daemon=True)
reader.start()
t0 = time.perf_counter()
store = start_run(sys.argv[1], RunSettings(trials=int(sys.argv[4]), seed=0, threads=1,
                  data_dir=sys.argv[3], options={"sampler": "random"}),
                  out=sys.argv[2], name="overhead", events=ev)
wall = time.perf_counter() - t0
ev.asked.put(None)
reader.join()
trials = store.trials()
fit = sum(f.fit_seconds for t in trials for f in t.folds)
print(json.dumps({"wall_s": wall, "fit_s": fit, "writer_s": spent["writer"],
                  "disk_s": spent["disk"],
                  "trials": len(trials), "rss_mb": ev.rss,
                  "trial_s": [t.seconds for t in trials]}))
'''


def _popen(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(args, cwd=ROOT, env={**ENV, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ours(space: Path, name: str, trials: int, data: str, *extra: str
          ) -> tuple[subprocess.Popen[str], float]:
    return _popen([sys.executable, "-m", "search", "run", str(space), "--trials", str(trials),
                   "--seed", "0", "--threads", "1", "--out", str(RUNS), "--name", name,
                   "--data-dir", data, *extra]), time.perf_counter()


def _finish(proc: subprocess.Popen[str], t0: float) -> tuple[str, float]:
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{proc.args} failed: {err[-2000:]}")
    return out, wall


def _same_trials(space: Path, name: str, trials: int, data: str,
                 extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Our run, then the plain TensorFlow loop replaying its completed trials."""
    from search.store import RunStore

    proc, t0 = _ours(space, name, trials, data, "--top", "0", *extra)
    _, ours_wall = _finish(proc, t0)
    store = RunStore(RUNS / name)
    records = [t for t in store.trials() if t.status == "complete"]
    t1 = time.perf_counter()
    out, plain_wall = _finish(_popen([sys.executable, "-c", REPLAY, str(space),
                                      str(store.root), data]), t1)
    plain = json.loads(out.strip().splitlines()[-1])
    ours_scores = {t.number: t.score for t in records}
    diffs = [abs(ours_scores[p["number"]] - p["score"]) for p in plain["trials"]]
    ours_fit = sum(f.fit_seconds for t in records for f in t.folds)
    return {
        "trials": len(records), "ours_wall_s": ours_wall, "plain_wall_s": plain_wall,
        "ours_per_hour": len(records) / ours_wall * 3600,
        "plain_per_hour": len(plain["trials"]) / plain_wall * 3600,
        "ratio": plain_wall / ours_wall * len(records) / max(1, len(plain["trials"])),
        "ours_fit_s": ours_fit, "plain_fit_s": plain["fit_s"],
        "ours_best": min(ours_scores.values()) if store.read_run()["direction"] == "minimize"
        else max(ours_scores.values()),
        "plain_best": (min if store.read_run()["direction"] == "minimize" else max)(
            p["score"] for p in plain["trials"]),
        "mean_abs_score_diff": float(np.mean(diffs)) if diffs else None,
        "mean_score_ours": float(np.mean(list(ours_scores.values()))),
        "mean_score_plain": float(np.mean([p["score"] for p in plain["trials"]])),
        "metric": store.read_run()["metric"],
        "backend": store.read_run()["settings"].get("keras_backend"),
    }


def _peers(data: str, trials: int) -> dict[str, Any]:
    """The peer scripts and our run at the same trial budget, the peers side by side."""
    env = {"PEER_DATA": data, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(PEERS)}
    out = {}
    procs = {name: (_popen([sys.executable, str(PEERS / f"{name}.py"), "--trials", str(trials),
                            "--out", str(RUNS / f"{name}.npz")], env), time.perf_counter())
             for name in ("boston_optuna", "boston_kerastuner")}
    for name, (proc, t0) in procs.items():
        text, wall = _finish(proc, t0)
        figures = json.loads(text.strip().splitlines()[-1])
        out[name] = {"wall_s": wall, "best_cv_mae": figures.get("best_cv_mae"),
                     "best_test_mae": figures.get("best_test_mae_mean"),
                     "search_wall_s": figures.get("search_wall_s")}
    proc, t0 = _ours(ROOT / "spaces" / "boston_housing.py", "peers_ours", trials, data,
                     "--top", "5", "--sampler", "tpe", "--pruner", "median")
    _, wall = _finish(proc, t0)
    ens = json.loads((RUNS / "peers_ours" / "ensemble.json").read_text())
    methods = ens["kinds"]["folds"]["methods"]
    from search.store import RunStore

    ranked = RunStore(RUNS / "peers_ours").ranked("minimize")
    out["ours"] = {"wall_s": wall, "best_cv_mae": ranked[0].score,
                   "best_test_mae_fold_members": _test_mae(RUNS / "peers_ours",
                                                           ranked[0].number),
                   "ensemble_test_mae": {m: v.get("test_score") for m, v in methods.items()}}
    return out


def _test_mae(run: Path, number: int) -> float:
    from search.store import RunStore

    store = RunStore(run)
    y = store.load_array("y_test.npy")
    return float(np.mean(np.abs(store.load_test(number).ravel() - y.ravel())))


def _stacking(data: str, trials: int) -> dict[str, Any]:
    """Fold stacking on and off, the same trials (random sampler, seed 0: its proposals do
    not depend on scores): the widened Boston space and the fixed-cost one."""
    out: dict[str, Any] = {}
    from search.store import RunStore

    for label, space in (("boston", ROOT / "spaces" / "boston_housing.py"),
                         ("fixed", ROOT / "benchmarks" / "spaces" / "boston_fixed_cost.py")):
        sides = {}
        for flag in ("--no-stack-folds", "--stack-folds"):
            name = f"stack_{label}_{flag.strip('-').replace('-', '_')}"
            proc, t0 = _ours(space, name, trials, data, "--top", "0", "--sampler", "random",
                             flag)
            _, wall = _finish(proc, t0)
            records = [t for t in RunStore(RUNS / name).trials() if t.status == "complete"]
            sides[flag] = {
                "wall_s": wall, "trials": len(records),
                "fit_s": sum(f.fit_seconds for t in records for f in t.folds),
                "trial_s": sum(t.seconds for t in records),
                "stacked_folds": sum(f.stacked for t in records for f in t.folds),
                "mean_score": float(np.mean([t.score for t in records])),
                "params": [t.params for t in records],
            }
        off, on = sides["--no-stack-folds"], sides["--stack-folds"]
        out[label] = {"off": off, "on": on, "same_params": off["params"] == on["params"],
                      "ratio": off["wall_s"] / on["wall_s"],
                      "trial_ratio": off["trial_s"] / on["trial_s"]}
    return out


def _overhead(data: str, trials: int, space: Path, name: str) -> dict[str, Any]:
    """One ``start_run`` of ``trials`` random-sampler trials in a fresh process: wall, Σ fit,
    store writer time and resident memory after each trial (the OVERHEAD script)."""
    t0 = time.perf_counter()
    out, _ = _finish(_popen([sys.executable, "-c", OVERHEAD, str(space), str(RUNS / name),
                             data, str(trials)]), t0)
    r = json.loads(out.strip().splitlines()[-1])
    rss = r["rss_mb"]
    settle = rss[min(9, len(rss) - 1)]  # after warm-up (imports, JIT caches)
    in_trials = sum(r["trial_s"])
    r.update(rss_flatness(rss))
    return {**r, "outside_fit_frac": 1 - r["fit_s"] / r["wall_s"],
            "outside_fit_ms_per_trial": (r["wall_s"] - r["fit_s"]) / r["trials"] * 1000,
            "in_trial_outside_ms": (in_trials - r["fit_s"]) / r["trials"] * 1000,
            "fit_ms_per_trial": r["fit_s"] / r["trials"] * 1000,
            "writer_ms_per_trial": r["writer_s"] / r["trials"] * 1000,
            "disk_ms_per_trial": r.get("disk_s", 0.0) / r["trials"] * 1000,
            "rss_first_mb": rss[0], "rss_after_10_mb": settle, "rss_last_mb": rss[-1],
            "rss_max_mb": max(rss), "rss_drift_after_10": rss[-1] / settle - 1}


def rss_flatness(rss: list[float], warm: int = 9) -> dict[str, float]:
    """How flat resident memory stayed after warm-up (trial ``warm`` on), three ways.

    Why not only last against trial 9: resident memory after a trial follows the size of
    the models of the last few trials (the stacked programs kept for reuse, glibc's arenas
    that a trim cannot hand back around live blocks), so one trial against another moves
    by ±10 % with the sampler's choices (measured on the real Boston space: trials 10-99
    between 561 and 690 MB, the same trials of two runs 558 and 628 MB at trial 9). A
    leak is a trend, so the goal is read on the least-squares line through trials
    ``warm``..last (``rss_trend``: its change from the first of them to the last, relative
    to its value at the first); the band around the median and last-vs-trial-9 are shown
    beside it.
    """
    import numpy as np

    after = np.asarray(rss[min(warm, len(rss) - 1):], dtype=float)
    if len(after) < 2:
        return {"rss_trend": 0.0, "rss_band_low": 0.0, "rss_band_high": 0.0,
                "rss_slope_mb_per_trial": 0.0}
    x = np.arange(len(after), dtype=float)
    slope, start = np.polyfit(x, after, 1)
    median = float(np.median(after))
    return {"rss_trend": float(slope * x[-1] / start),
            "rss_slope_mb_per_trial": float(slope),
            "rss_median_mb": median,
            "rss_band_low": float(after.min() / median - 1),
            "rss_band_high": float(after.max() / median - 1)}


def _overheads(data: str, trials: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Part 3: the overhead runs of the real Boston space and of the fixed-cost net."""
    return (_overhead(data, trials, ROOT / "spaces" / "boston_housing.py", "overhead"),
            _overhead(data, trials, ROOT / "benchmarks" / "spaces" / "boston_fixed_cost.py",
                      "overhead_fixed"))


def over_row(label: str, r: dict[str, Any]) -> str:
    """A row of the overhead table."""
    return (f"| {label} | {r['wall_s']:.0f} s | {r['fit_s']:.0f} s | "
            f"**{r['outside_fit_frac'] * 100:.1f} %** | {r['outside_fit_ms_per_trial']:.0f} ms "
            f"({r['in_trial_outside_ms']:.0f} ms) | {r['writer_ms_per_trial']:.1f} ms "
            f"({r['disk_ms_per_trial']:.1f} ms) | "
            f"{r['rss_first_mb']:.0f} / {r['rss_after_10_mb']:.0f} / {r['rss_last_mb']:.0f} "
            f"({r['rss_max_mb']:.0f}) MB | **{r['rss_trend'] * 100:+.1f} %** "
            f"({r['rss_slope_mb_per_trial']:+.2f} MB a trial); band "
            f"{r['rss_band_low'] * 100:+.0f} / {r['rss_band_high'] * 100:+.0f} % around "
            f"{r['rss_median_mb']:.0f} MB; last vs trial 9 {r['rss_drift_after_10'] * 100:+.1f} % |")


def overhead_only(trials: int = 100) -> str:
    """Part 3 alone (``python -m benchmarks.speed overhead``): the two overhead runs, their
    table rows printed and their figures in ``results/speed_overhead.json``; the Speed
    section of RESULTS.md is left as its last whole run wrote it."""
    import shutil

    from benchmarks._common import RESULTS

    data = str(data_dir("boston_housing"))
    shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True)
    over, fixed = _overheads(data, trials)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "speed_overhead.json").write_text(json.dumps(
        {"machine": machine(), "overhead": over, "overhead_fixed": fixed}, indent=1) + "\n")
    return "\n".join([over_row("Boston (real space, `spaces/boston_housing.py`)", over),
                      over_row("Boston fixed cost (book net, 25 epochs)", fixed)])


def main() -> str:
    import shutil

    data = str(data_dir("boston_housing", "mnist"))
    shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True)
    quick = os.environ.get("SPEED_QUICK") == "1"  # a smoke run of the benchmark's code
    t0 = time.perf_counter()
    boston = _same_trials(ROOT / "spaces" / "boston_housing.py", "boston", 2 if quick else 20,
                          data)
    mnist = _same_trials(ROOT / "benchmarks" / "spaces" / "mnist_dense_subset.py", "mnist",
                         1 if quick else 5, data, ("--folds", "3"))
    peers = _peers(data, 2 if quick else 10) if PEERS.is_dir() else {}
    over, fixed = _overheads(data, 3 if quick else 100)
    stack = _stacking(data, 2 if quick else 12)
    total = time.perf_counter() - t0

    def row(label: str, r: dict[str, Any]) -> str:
        return (f"| {label} | {r['trials']} | {r['ours_wall_s']:.0f} s ({r['ours_per_hour']:.0f}/h, "
                f"{r['backend']}) | {r['plain_wall_s']:.0f} s ({r['plain_per_hour']:.0f}/h) | "
                f"**{r['ratio']:.2f}x** | {r['ours_best']:.4g} / {r['plain_best']:.4g} | "
                f"{r['mean_score_ours']:.4g} / {r['mean_score_plain']:.4g} "
                f"(mean abs diff {r['mean_abs_score_diff']:.3g}) |")

    peer_rows = "\n".join(
        f"| {n} | {p['wall_s']:.0f} | {p['best_cv_mae']:.3f} | "
        f"{p.get('best_test_mae') if p.get('best_test_mae') is not None else p.get('best_test_mae_fold_members'):.3f} | "
        f"{', '.join(f'{m} {v:.3f}' for m, v in p.get('ensemble_test_mae', {}).items() if v is not None) or '–'} |"
        for n, p in peers.items())

    md = f"""## Speed: trials per hour against a plain Keras loop on the same trials — issue 11

Command: `python benchmarks/run.py speed` · {machine()} · total {total / 60:.1f} min. One
thread per side; the two sides of each comparison ran one after the other (ours first);
JAX's compilation cache empty at the start (`SEARCH_JAX_CACHE` under the benchmark's runs).
"Plain" replays our run's completed trials with a K-fold loop on Keras' default TensorFlow
backend: the same space file, parameters, folds and preprocessor, no validation data in
`fit` (as the peers' objectives) unless the trial stops early (then the same
EarlyStopping on the fold's validation rows), each fold seeded. Walls are whole processes (imports,
data loading, everything).

| task | trials | ours: wall (trials/h, backend) | plain TF loop: wall (trials/h) | ratio (goal ≥ 2.0x) | best CV ours / plain | mean CV ours / plain |
|---|---:|---:|---:|---:|---:|---:|
{row("Boston (real), 4 folds, TPE seed 0", boston)}
{row("MNIST dense, 12k-row subset, 3 folds", mnist)}

- Time inside `model.fit`: Boston ours {boston['ours_fit_s']:.0f} s vs plain {boston['plain_fit_s']:.0f} s; MNIST ours {mnist['ours_fit_s']:.0f} s vs plain {mnist['plain_fit_s']:.0f} s.
- CV scores differ per trial by the seeds (each side seeds its own fold models), not by the
  backend: compare the means and bests against the fold-to-fold spread (Boston's fold MAEs
  spread by ~0.3).

**Peer scripts at the same budget (10 trials of Boston)**, each a whole process (its top-5
refits included; ours: search, ensembles of the top 5 and the report):

| search | wall s | best CV MAE | test MAE of the best | our ensembles' test MAE (fold members) |
|---|---:|---:|---:|---|
{peer_rows}

**Overhead over 100 trials in one process** (`start_run`, random sampler, seed 0, one
thread; wall from the call to its return, everything in it; "fit" = Σ of the folds'
`fit_seconds`, the stacked program's time for stacked folds; RSS trend: the change of the
least-squares line through the RSS after trials 9..last, relative to its start, because RSS
after one trial follows the size of the last few trials' models and a leak is a trend, not
one trial's size: `rss_flatness` in `benchmarks/speed.py`):

| space | wall | in fit | outside fit, % of wall (goal ≤ 2 %) | outside fit per trial (of it inside trials) | store writer per trial, the trial's thread (its disk thread) (goal ≤ 50 ms) | RSS after trial 0 / 9 / last (max) | RSS trend from trial 9 to the last (goal ±10 %) |
|---|---:|---:|---:|---:|---:|---:|---:|
{over_row("Boston (real space, `spaces/boston_housing.py`)", over)}
{over_row("Boston fixed cost (book net, 25 epochs: the worst case)", fixed)}
"""
    def stack_row(label: str, r: dict[str, Any]) -> str:
        off, on = r["off"], r["on"]
        return (f"| {label} | {on['trials']} | {off['wall_s']:.0f} s ({off['trial_s']:.0f} s in "
                f"trials) | {on['wall_s']:.0f} s ({on['trial_s']:.0f} s in trials; "
                f"{on['stacked_folds']} folds stacked) | **{r['ratio']:.2f}x** "
                f"({r['trial_ratio']:.2f}x in trials) | {off['mean_score']:.4g} / "
                f"{on['mean_score']:.4g} | {'yes' if r['same_params'] else 'NO'} |")

    md += f"""
**Fold stacking on and off** (`--no-stack-folds` / `--stack-folds`, the same
{stack['boston']['on']['trials']} random-sampler trials both ways, seed 0, one thread; a
trial's folds as one vectorised JAX program where they can be, `search/stacking.py`):

| space | trials | folds one after another | folds stacked | ratio | mean CV MAE off / on | same parameters |
|---|---:|---:|---:|---:|---:|---|
{stack_row("Boston (widened space)", stack["boston"])}
{stack_row("Boston fixed cost (book net, 25 epochs)", stack["fixed"])}
"""
    write_section(NAME, md, {"boston": boston, "mnist": mnist, "peers": peers,
                             "overhead": over, "overhead_fixed": fixed, "stacking": stack,
                             "total_s": total})
    return md


if __name__ == "__main__":
    if sys.argv[1:] != ["overhead"]:
        sys.exit("usage: python -m benchmarks.speed overhead   "
                 "(the whole benchmark: python benchmarks/run.py speed)")
    print(overhead_only())
