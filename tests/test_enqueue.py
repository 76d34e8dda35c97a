"""``run --enqueue FILE``: parameter sets tried first, checked against the space up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.errors import UsageError
from search.space import check_points, load_space, trace_space
from search.store import RunStore

pytestmark = pytest.mark.timeout(300)


def test_enqueued_points_are_the_first_trials_after_the_default(
        tmp_path: Path, run_cli, spaces_dir: Path) -> None:
    points = tmp_path / "points.json"
    # units_1 only exists with layers=2: a conditional parameter, found by tracing
    points.write_text(json.dumps([{"layers": 2, "units_1": 12, "lr": 0.05},
                                  {"activation": "tanh"}]))
    res = run_cli("run", spaces_dir / "tiny_regression.py", "--trials", "3", "--folds", "2",
                  "--out", tmp_path, "--name", "q", "--enqueue", points, "--top", "0")
    assert res.returncode == 0, res.stderr
    trials = RunStore(tmp_path / "q").trials()
    assert [t.status for t in trials] == ["complete"] * 3
    assert trials[0].is_default
    assert trials[1].params["layers"] == 2 and trials[1].params["units_1"] == 12
    assert trials[1].params["lr"] == pytest.approx(0.05)
    assert trials[2].params["activation"] == "tanh"


def test_a_misspelt_name_is_exit_2_before_any_trial(tmp_path: Path, run_cli,
                                                   spaces_dir: Path) -> None:
    points = tmp_path / "points.json"
    points.write_text(json.dumps([{"layers": 2}, {"unit_0": 8}]))
    res = run_cli("run", spaces_dir / "tiny_regression.py", "--trials", "4", "--out",
                  tmp_path, "--name", "bad", "--enqueue", points)
    assert res.returncode == 2
    assert f"--enqueue {points}: point 2: 'unit_0' is not a parameter" in res.stderr
    assert "units_0" in res.stderr  # the names it has
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def tiny() -> tuple[object, object]:
    space = load_space(Path(__file__).parent / "spaces" / "tiny_regression.py")
    return space, trace_space(space)


@pytest.mark.parametrize(("point", "message"), [
    ({"units_0": 10}, r"10 is not a value of 'units_0' \(int from 4 to 16 in steps of 4\)"),
    ({"units_0": 8.0}, r"8.0 is not a value of 'units_0'"),
    ({"lr": 0.5}, r"0.5 is not a value of 'lr' \(float from 0.001 to 0.1\)"),
    ({"activation": "gelu"}, r"'gelu' is not a value of 'activation' \(one of 'relu', 'tanh'\)"),
    ({"epochs": 1, "nope": 3}, r"'nope' is not a parameter of tiny_regression.py"),
    ([1, 2], r"expected an object of parameter names to values, got list"),
])
def test_bad_points_name_the_point_and_the_fix(tiny, point, message: str) -> None:
    space, trace = tiny
    with pytest.raises(UsageError, match=r"points.json: point 2: " + message):
        check_points(space, trace, [{"layers": 1}, point], "points.json")


def test_good_points_pass(tiny) -> None:
    space, trace = tiny
    check_points(space, trace, [{}, {"layers": 2, "units_1": 16, "epochs": 1}], "p")


@pytest.mark.parametrize(("text", "args", "message"), [
    ("{not json", [], "not JSON"),
    ("[]", [], "non-empty list"),
    ('[{"layers": 2}, {"layers": 1}]', ["--trials", "2"], "need --trials 3 or more"),
    ('{"layers": 2}', ["--resume", "{tmp}"], "cannot be combined with --resume"),
])
def test_enqueue_file_errors_are_exit_2(tmp_path: Path, run_cli, spaces_dir: Path, text: str,
                                        args: list[str], message: str) -> None:
    points = tmp_path / "p.json"
    points.write_text(text)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    name = [] if "--resume" in args else ["--name", "x"]
    res = run_cli("run", spaces_dir / "tiny_regression.py", "--out", tmp_path, *name,
                  "--enqueue", points, *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and str(points) in res.stderr
    assert not (tmp_path / "x").exists()
