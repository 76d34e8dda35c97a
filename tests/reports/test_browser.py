"""The report in a real headless browser: offline, no console errors, sortable, plots drawn.

Debian's ``chromium`` driven by Playwright (``executable_path``; Playwright's own browser
download is never used: CI has no internet). ``.ci/run`` installs chromium; the test skips,
saying so, only where it cannot be found.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)

MakeRun = Callable[..., Path]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    pytest.skip("chromium not found: apt-get install chromium (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser() -> Any:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="pip install playwright (the dev extra)")
    executable = _chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def _column(page: Any, table: str, col: int) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(
        f"#{table} tbody tr", f"rows => rows.map(r => r.cells[{col}].textContent.trim())")
    return texts


def test_report_in_a_real_browser(browser: Any, make_run: MakeRun, tmp_path: Path) -> None:
    from reports.html import write_report

    run = make_run(scores=[2.0, 1.0, 1.5, 1.2, 1.8, 0.9, None],
                   statuses=["complete"] * 6 + ["failed"], errors={6: "<b>boom</b>"},
                   ensemble=("folds", "refit"), reference={"test": 2.55, "source": "the book"})
    report = write_report(run)
    page, errors, requests = _open(browser, report)
    # Every plot drawn: a non-empty Plotly SVG (parallel coordinates add WebGL canvases).
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure.plot')].every(f => "
        "f.querySelector('svg.main-svg') && f.querySelector('svg.main-svg').childElementCount)",
        timeout=30_000)
    plots = page.eval_on_selector_all(
        "figure.plot", "fs => fs.map(f => [f.dataset.plot, "
        "f.querySelector('svg.main-svg').getBoundingClientRect().height, "
        "f.querySelectorAll('svg.main-svg path, svg.main-svg rect, canvas').length])")
    assert {p[0] for p in plots} >= {"history", "importance", "parallel", "folds", "curves",
                                     "weights-folds", "loo-folds", "weights-refit", "loo-refit"}
    assert all(height > 100 and marks > 0 for _, height, marks in plots), plots
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    # Click "CV mae" (column 3): ascending, failed trial (no score) last; again: descending.
    ranks_before = _column(page, "leaderboard-table", 1)
    page.click("#leaderboard-table thead th:nth-child(2)")  # trial
    assert _column(page, "leaderboard-table", 1) == ["0default", *map(str, range(1, 7))]
    page.click("#leaderboard-table thead th:nth-child(4)")
    scores = _column(page, "leaderboard-table", 3)
    assert scores[:6] == ["0.9", "1", "1.2", "1.5", "1.8", "2"] and scores[6] == "-"
    page.click("#leaderboard-table thead th:nth-child(4)")
    scores = _column(page, "leaderboard-table", 3)
    assert scores[:6] == ["2", "1.8", "1.5", "1.2", "1", "0.9"] and scores[6] == "-"
    assert ranks_before != _column(page, "leaderboard-table", 1)
    page.screenshot(path=str(tmp_path / "report-sorted.png"))

    assert page.locator("text=<b>boom</b>").count() == 1  # escaped: shown as text
    assert errors == []
    assert requests == [report.as_uri()]  # nothing fetched: no CDN, no server
    page.close()


def test_index_in_a_real_browser(browser: Any, make_run: MakeRun, tmp_path: Path) -> None:
    from reports.html import write_index

    make_run(name="first", scores=[2.0, 1.0])
    make_run(name="second", scores=[1.0, 0.5])
    index, _ = write_index(tmp_path / "runs")
    page, errors, requests = _open(browser, index)
    page.click("#runs-table thead th:nth-child(7)")  # best CV, ascending
    assert _column(page, "runs-table", 0) == ["second", "first"]
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    page.click("text=first")
    page.wait_for_load_state("load")
    assert page.url.endswith("/first/report.html")
    assert errors == []
    assert all(u.startswith("file://") for u in requests)
    page.close()


def test_an_old_browser_gets_the_tables_and_a_reason(browser: Any, make_run: MakeRun) -> None:
    from reports.html import write_report

    report = write_report(make_run(scores=[2.0, 1.0, 1.5]))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script("delete window.DecompressionStream;")  # as before Firefox 113
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    texts = page.eval_on_selector_all(".plotly-target", "ds => ds.map(d => d.textContent)")
    assert texts and all("Plot not drawn: this browser cannot unpack" in t for t in texts)
    assert page.locator("#leaderboard-table tbody tr").count() == 3
    assert errors == []
    page.close()
