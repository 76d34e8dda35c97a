"""What the terminal shows from the same report data: parameters never cut, ETA, resume best."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from search import terminal

MakeRun = Callable[..., Path]
LONG = "a_parameter_value_that_is_long_" * 2


def _render(table: object, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [200, 80])
def test_parameters_wrap_instead_of_being_cut(make_run: MakeRun, width: int) -> None:
    params = {i: {"layers": 1, "units_0": 8, "activation": LONG if i == 1 else "relu",
                  "lr": 0.0123456} for i in range(2)}
    text = _render(terminal._leaderboard_table(make_run(scores=[2.0, 1.0], params=params), 10),
                   width)
    assert "…" not in text
    assert LONG in "".join(line.strip(" │┃") for line in text.splitlines())
    assert "lr=0.01235" in text
    if width == 200:  # wide enough: every parameter on the trial's one line
        assert any(LONG in line and "lr=0.01235" in line for line in text.splitlines())


def test_answer_table_puts_the_final_ensemble_first(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 1.0, 1.5], reference={"test": 2.55, "source": "the book"})
    table, notes = terminal._answer_table(run)
    text = _render(table, 200)
    lines = [ln for ln in text.splitlines() if "│" in ln]
    assert lines[0].strip("│ ").startswith("final ensemble: Nelder-Mead weights")
    assert any("default point (trial 0)" in ln for ln in lines)
    assert any("reference" in ln and "2.55" in ln for ln in lines)
    assert text.splitlines()[0].startswith("final ensemble")  # the headline title
    assert notes == []


def test_eta_counts_only_this_sessions_trials() -> None:
    events = terminal.RichEvents()
    events.total, events.done_at_start, events.started = 10, 4, 100.0
    assert events.eta(4, now=130.0) == "-"  # nothing finished in this session yet
    assert events.eta(6, now=160.0) == "2:00"  # 30 s per trial, 4 left
    assert events.eta(10, now=400.0) == "0:00"
    events.total = 500
    assert events.eta(6, now=160.0) == "4:07:00"


def test_resume_reads_the_best_so_far_from_the_store(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 0.75, 1.5])
    assert terminal._best_so_far(run) == "0.75 (trial 1)"
    assert terminal._best_so_far(run.parent / "missing") == "-"
