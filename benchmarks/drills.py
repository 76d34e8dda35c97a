# ruff: noqa: E501  (the RESULTS.md section is a long markdown f-string)
"""Kill drills on real Boston (issue 10): SIGKILL at 5 random moments, resume each time.

Two runs of ``spaces/boston_housing.py`` with the same seed, 20 trials × 3 folds, one
thread each, side by side (2 cores):

- **uninterrupted**: one process from start to end;
- **interrupted**: the same run killed with SIGKILL at 5 random moments (a uniform delay
  after each session's start), each time continued with ``python -m search run SPACE
  --resume RUN``, until it ends.

Both runs get the same 19 parameter sets after trial 0 (drawn once with Optuna's seeded
random sampler and enqueued), so the same trial numbers mean the same trials: a sampler
reseeded per session would otherwise propose different trials after a kill, and "the same
completed trials" could not be compared. Checked: the same trials complete with the same
parameters and fold scores (fold models are seeded per run, trial and fold, so a continued
fold trains exactly as it would have), every complete trial has its OOF and test files,
``python -m search check RUN --dry-run`` finds nothing, and the time ratio (all sessions of
the interrupted run, start-up included, over the uninterrupted run; target ≤ 1.5x).

Run: ``python benchmarks/run.py drills``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from benchmarks._common import OUT, ROOT, data_dir, machine, write_section

NAME = "drills"
RUNS = OUT / "runs" / NAME
SPACE = ROOT / "spaces" / "boston_housing.py"
TRIALS, FOLDS, SEED, KILLS = 20, 3, 0, 5
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}

LAUNCH = """
import json, sys
from search.runner import RunSettings, start_run
params = json.loads(sys.argv[4])
settings = RunSettings(trials={trials}, folds={folds}, seed={seed}, threads=1,
                       data_dir=sys.argv[3], options={{"sampler": "random"}})
start_run(sys.argv[1], settings, out=sys.argv[2], name=sys.argv[5], enqueue=params)
"""


def _params(n: int) -> list[dict[str, Any]]:
    """``n`` parameter sets drawn from the space with a seeded random sampler."""
    import optuna

    from search.backends.optuna import distribution
    from search.space import load_space, trace_space

    trace = trace_space(load_space(SPACE))
    dists = {s.name: distribution(s) for s in trace.specs if s.kind != "fixed"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    return [dict(study.ask(dists).params) for _ in range(n)]


def _launch(name: str, data: str, params: list[dict[str, Any]]) -> subprocess.Popen[bytes]:
    code = LAUNCH.format(trials=TRIALS, folds=FOLDS, seed=SEED)
    return subprocess.Popen([sys.executable, "-c", code, str(SPACE), str(RUNS), data,
                             json.dumps(params), name], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _resume(name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "search", "run", str(SPACE), "--resume",
                             str(RUNS / name), "--top", "0", "--threads", "1"], cwd=ROOT,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _interrupted(data: str, params: list[dict[str, Any]], rng: np.random.Generator
                 ) -> dict[str, Any]:
    sessions: list[dict[str, Any]] = []
    proc = _launch("interrupted", data, params)
    while True:
        t0 = time.perf_counter()
        # the run lasts ~3 min on JAX here: kills spread over it (a session starts in ~5 s)
        kill_at = float(rng.uniform(8, 35)) if len(sessions) < KILLS else None
        try:
            proc.wait(timeout=kill_at)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
        err = proc.stderr.read().decode() if proc.stderr else ""
        sessions.append({"seconds": time.perf_counter() - t0, "killed": killed,
                         "kill_after_s": kill_at, "returncode": proc.returncode,
                         "done_after": _done(RUNS / "interrupted"),
                         "stderr_tail": err[-400:] if not killed else ""})
        if not killed:
            return {"sessions": sessions}
        proc = _resume("interrupted")


def _done(run: Any) -> int:
    from search.store import RunStore

    return sum(t.status != "running" for t in RunStore(run).trials())


def _compare(a: Any, b: Any) -> dict[str, Any]:
    from search.store import RunStore

    ra, rb = RunStore(a), RunStore(b)
    ta, tb = {t.number: t for t in ra.trials()}, {t.number: t for t in rb.trials()}
    same_params = all(ta[n].params == tb[n].params for n in ta.keys() & tb.keys())
    same_status = {n: t.status for n, t in ta.items()} == {n: t.status for n, t in tb.items()}
    diffs = [abs(x - y) for n in ta.keys() & tb.keys()
             for x, y in zip(ta[n].fold_scores, tb[n].fold_scores, strict=False)]
    lost = [n for n, t in tb.items() if t.status == "complete" and not (
        (rb.trial_dir(n) / "oof.npy").is_file() and (rb.trial_dir(n) / "test.npy").is_file())]
    oof_equal = all(np.allclose(ra.load_oof(n), rb.load_oof(n), atol=1e-4, equal_nan=True)
                    for n, t in tb.items() if t.status == "complete" and n in ta)
    return {"trials": [len(ta), len(tb)], "same_numbers": sorted(ta) == sorted(tb),
            "same_params": same_params, "same_status": same_status,
            "complete": [sum(t.status == "complete" for t in ta.values()),
                         sum(t.status == "complete" for t in tb.values())],
            "max_fold_score_diff": max(diffs) if diffs else None, "oof_equal": oof_equal,
            "lost_prediction_files": lost,
            "resumed": {n: t.resumed for n, t in tb.items() if t.resumed}}


def _check(run: Any) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-m", "search", "check", str(run), "--dry-run"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    return {"returncode": res.returncode, "output": (res.stdout + res.stderr)[-800:]}


def main() -> str:
    data = str(data_dir("boston_housing"))
    shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True)
    params = _params(TRIALS - 1)
    rng = np.random.default_rng(SEED)
    t0 = time.perf_counter()
    ref = _launch("uninterrupted", data, params)
    ref_end: list[float] = []
    waiter = threading.Thread(target=lambda: (ref.wait(), ref_end.append(time.perf_counter())))
    waiter.start()
    inter = _interrupted(data, params, rng)
    waiter.join()
    ref_wall = ref_end[0] - t0  # launch to exit, as each interrupted session is measured
    inter_wall = sum(s["seconds"] for s in inter["sessions"])
    cmp = _compare(RUNS / "uninterrupted", RUNS / "interrupted")
    checks = {"uninterrupted": _check(RUNS / "uninterrupted"),
              "interrupted": _check(RUNS / "interrupted")}
    kills = [s for s in inter["sessions"] if s["killed"]]
    md = f"""## Kill drills: SIGKILL at {KILLS} random moments, resumed each time (real Boston) — issue 10

Command: `python benchmarks/run.py drills` · {machine()} · `spaces/boston_housing.py`,
{TRIALS} trials × {FOLDS} folds, seed {SEED}, one thread each, Keras on its default backend (JAX); the same 19 parameter
sets (seeded random draws) enqueued after trial 0 in both runs; the uninterrupted run and
the interrupted one ran side by side (one core each).

| | uninterrupted | interrupted ({len(kills)} × SIGKILL, {len(inter["sessions"])} sessions) |
|---|---:|---:|
| trials / complete | {cmp["trials"][0]} / {cmp["complete"][0]} | {cmp["trials"][1]} / {cmp["complete"][1]} |
| wall s (all sessions, start-up included) | {ref_wall:.1f} | {inter_wall:.1f} |
| `search check --dry-run` exit code | {checks["uninterrupted"]["returncode"]} | {checks["interrupted"]["returncode"]} |

- Same trial numbers: **{cmp["same_numbers"]}**; same parameters: **{cmp["same_params"]}**;
  same statuses: **{cmp["same_status"]}**; largest fold-score difference:
  {cmp["max_fold_score_diff"]}; OOF arrays equal (atol 1e-4): **{cmp["oof_equal"]}**.
- Lost prediction files (complete trials without oof.npy/test.npy): {cmp["lost_prediction_files"] or "none"}.
- Trials continued from a committed fold after a kill (trial: sessions that continued it):
  {cmp["resumed"] or "none"}.
- Kills after (s): {", ".join(f"{s['kill_after_s']:.1f}" for s in kills)}; trials ended
  at each kill: {", ".join(str(s["done_after"]) for s in kills)}.
- **Time ratio interrupted / uninterrupted: {inter_wall / ref_wall:.2f}x** (target ≤ 1.5x; the
  interrupted run pays a process start, Keras import and data load per session, and
  re-runs the fold each kill cut short).
"""
    write_section(NAME, md, {"compare": cmp, "checks": checks, "sessions": inter["sessions"],
                             "uninterrupted_wall_s": ref_wall, "interrupted_wall_s": inter_wall,
                             "ratio": inter_wall / ref_wall,
                             "uninterrupted_returncode": ref.returncode})
    return md
