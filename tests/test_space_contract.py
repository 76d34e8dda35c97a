"""Broken space files and bad flags: exit code 2 and a message naming the file/flag and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.errors import SpaceError
from search.space import load_space, trace_space

GOOD = '''
import keras
TASK = "regression"
METRIC = "mae"
def load_data(data_dir=None):
    import numpy as np
    x = np.zeros((8, 2), "float32"); return (x, x[:, 0]), (x, x[:, 0])
def build(hp):
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    return m
'''


def write(tmp_path: Path, text: str, name: str = "space.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s.replace("def build(hp):", "def builder(hp):"), "missing build"),
        (lambda s: s.replace('TASK = "regression"', 'TASK = "ranking"'), "TASK must be one of"),
        (lambda s: s.replace('METRIC = "mae"', 'METRIC = "maee"'), "METRIC 'maee' is not a known"),
        (lambda s: s.replace('METRIC = "mae"', 'METRIC = "accuracy"'), "does not apply to TASK"),
        (lambda s: s.replace('TASK = "regression"\n', ""), "missing TASK"),
        (lambda s: s.replace("def load_data", "def loaddata"), "missing load_data"),
        (lambda s: s + "\nFOLDS = 1\n", "FOLDS must be an int >= 2"),
        (lambda s: s + "\nDIRECTION = 'maximize'\n", "contradicts METRIC"),
        (lambda s: s + "\nbuild = 3\n", "build must be a function"),
        (lambda s: s + "\ndef broken(:\n", "syntax error"),
        (lambda s: s + "\nimport not_a_module_xyz\n", "ModuleNotFoundError"),
    ],
)
def test_contract_violations_name_file_and_item(tmp_path: Path, edit, expected: str) -> None:
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(SpaceError) as info:
        load_space(path)
    message = str(info.value)
    assert str(path) in message and expected in message


def test_build_problems_are_caught_when_tracing(tmp_path: Path) -> None:
    not_compiled = GOOD.replace('    m.compile(optimizer="sgd", loss="mse")\n', "")
    with pytest.raises(SpaceError, match="not compiled"):
        trace_space(load_space(write(tmp_path, not_compiled, "a.py")))
    not_model = GOOD.replace("    return m\n", "    return 'model'\n")
    with pytest.raises(SpaceError, match=r"must return a keras\.Model"):
        trace_space(load_space(write(tmp_path, not_model, "b.py")))
    raising = GOOD.replace("def build(hp):\n", "def build(hp):\n    1 / 0\n")
    with pytest.raises(SpaceError, match=r"c\.py:\d+: building the default point raised "
                                         r"ZeroDivisionError"):
        trace_space(load_space(write(tmp_path, raising, "c.py")))
    bad_fit = GOOD + "\ndef fit_settings(hp):\n    return {'epochs': 0}\n"
    with pytest.raises(SpaceError, match=r"\['epochs'\] must be a positive int"):
        trace_space(load_space(write(tmp_path, bad_fit, "d.py")))
    owned = GOOD + "\ndef fit_settings(hp):\n    return {'validation_split': 0.2}\n"
    with pytest.raises(SpaceError, match="which the K-fold trial owns"):
        trace_space(load_space(write(tmp_path, owned, "e.py")))
    bad_range = GOOD.replace("def build(hp):\n", "def build(hp):\n    hp.Int('u', 5, 1)\n")
    with pytest.raises(SpaceError, match="min_value 5 > max_value 1"):
        trace_space(load_space(write(tmp_path, bad_range, "f.py")))


def test_trace_explores_nested_branches(tmp_path: Path) -> None:
    nested = GOOD.replace("def build(hp):\n", """def build(hp):
    if hp.Boolean("extra"):
        if hp.Choice("kind", ["a", "b"]) == "b":
            hp.Float("deep", 0.1, 0.9)
    1 / 0 if hp.Boolean("broken_branch") else None
""")
    trace = trace_space(load_space(write(tmp_path, nested)))
    found = {s.name: s.conditional for s in trace.specs}
    assert found == {"extra": False, "broken_branch": False, "kind": True, "deep": True}


def test_trace_records_space_and_defaults(spaces_dir: Path) -> None:
    trace = trace_space(load_space(spaces_dir / "tiny_regression.py"))
    names = [s.name for s in trace.specs]
    assert names == ["layers", "units_0", "activation", "lr", "epochs", "units_1"]
    # units_1 exists only when layers=2: found by building that branch, marked conditional.
    assert [s.name for s in trace.specs if s.conditional] == ["units_1"]
    assert "units_1" not in trace.defaults
    assert trace.defaults == {"layers": 1, "units_0": 8, "activation": "relu", "lr": 0.01,
                              "epochs": 2}
    lr = next(s for s in trace.specs if s.name == "lr")
    assert (lr.low, lr.high, lr.sampling) == (1e-3, 1e-1, "log")
    assert trace.fit["batch_size"] == 16


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "MISSING.py"], "space file not found"),
        (["run", "BROKEN", "--trials", "3"], "missing build"),
        (["run", "TINY", "--trials", "0"], "--trials must be at least 1"),
        (["run", "TINY", "--folds", "1"], "--folds must be at least 2"),
        (["run", "TINY", "--sampler", "bogus"], "'bogus' is not one of"),
        (["run", "TINY", "--sampler", "grid"], "--sampler grid needs every parameter discrete"),
        (["run", "TINY", "--resume", "NOWHERE"], "not a run directory"),
        (["show", "NOWHERE"], "not a run directory"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path: Path, run_cli, spaces_dir: Path, args: list[str],
                                 expected: str) -> None:
    broken = write(tmp_path, GOOD.replace("def build(hp):", "def builder(hp):"), "broken.py")
    subst = {"MISSING.py": str(tmp_path / "missing.py"), "BROKEN": str(broken),
             "TINY": str(spaces_dir / "tiny_regression.py"), "NOWHERE": str(tmp_path / "none")}
    extra = ["--out", str(tmp_path / "runs")] if args[0] == "run" else []
    res = run_cli(*[subst.get(a, a) for a in args], *extra)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert expected in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
