"""A trial's description travels: pickled, run in a fresh process, the space file gone.

The space goes by content (checked by sha256), so a process that never saw the user's file
(a ``--jobs`` child, a Ray worker on another machine) runs the very same trial.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from search.errors import SpaceError
from search.folds import make_folds
from search.plan import RunPlan, SpaceSource, TrialSpec

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "tests" / "spaces" / "tiny_regression.py"

CHILD = """
import pickle, sys
from search.plan import execute
plan, spec = pickle.loads(sys.stdin.buffer.read())
result = execute(plan, spec)
sys.stdout.buffer.write(pickle.dumps((result.record.status, result.record.params,
                                      result.oof)))
"""


def test_plan_runs_in_a_fresh_process_without_the_space_file(tmp_path: Path) -> None:
    copy = tmp_path / "my_space.py"
    shutil.copyfile(SPACE, copy)
    source = SpaceSource.from_path(copy)
    copy.unlink()  # the worker must not need the file
    y = np.arange(64, dtype=np.float32)
    plan = RunPlan(space=source, fold_of=make_folds(y, "regression", 2, seed=0), seed=4,
                   save_models=False, predict_test=False)
    spec = TrialSpec(number=7, params={"units_0": 12, "epochs": 1})
    blob = pickle.dumps((plan, spec))
    assert str(tmp_path).encode() not in blob  # no path of the driver's machine travels
    res = subprocess.run([sys.executable, "-c", CHILD], input=blob, capture_output=True,
                         cwd=tmp_path, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
                              "SEARCH_SPACE_CACHE": str(tmp_path / "cache"),
                              "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    status, params, oof = pickle.loads(res.stdout)
    assert status == "complete" and params["units_0"] == 12 and params["epochs"] == 1
    assert oof.shape == (64, 1) and np.isfinite(oof).all()
    assert (tmp_path / "cache" / source.sha256[:16] / "my_space.py").read_text() == source.text


def test_tampered_space_content_is_refused(tmp_path: Path) -> None:
    source = SpaceSource.from_path(SPACE)
    bad = SpaceSource(name=source.name, text=source.text + "\n# edited", sha256=source.sha256)
    with pytest.raises(SpaceError, match="does not match its sha256"):
        bad.materialize()
