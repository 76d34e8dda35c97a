"""The HTML report and index: self-contained, escaped, small enough, every section present."""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

from reports.html import render_report, write_index, write_report

MakeRun = Callable[..., Path]
XSS = "<script>alert(1)</script>"
MAX_BYTES = 5 * 1024 * 1024


def test_report_is_self_contained_and_has_every_section(make_run: MakeRun) -> None:
    run = make_run(scores=[2.0, 1.0, 1.5, 1.2, 1.8, 0.9], ensemble=("folds", "refit"),
                   reference={"test": 2.55, "source": "the book"})
    path = write_report(run)
    assert path == (run / "report.html").resolve()
    html = path.read_text(encoding="utf-8")
    assert path.stat().st_size < MAX_BYTES
    # plotly.js embedded once, gzipped: it unpacks to the plotly package's own copy
    packed = re.findall(r'<script type="application/octet-stream" id="plotly-js-gz">([^<]+)<',
                        html)
    assert len(packed) == 1
    from plotly.offline import get_plotlyjs
    assert gzip.decompress(base64.b64decode(packed[0])).decode() == get_plotlyjs()
    # no external script, stylesheet or image
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)
    # every figure is JSON in the page, parsed by the browser after plotly.js is unpacked
    specs = re.findall(r'<script type="application/json" class="plot-spec" '
                       r'data-for="plot-([\w-]+)">(.*?)</script>', html, re.S)
    assert len(specs) == 9
    assert all(json.loads(spec)["data"] for _, spec in specs)
    for section in ("answer", "leaderboard", "ensemble", "plots"):
        assert f'<section id="{section}">' in html
    for key in ("history", "importance", "parallel", "folds", "curves", "weights-folds",
                "loo-folds", "weights-refit", "loo-refit"):
        assert f'data-plot="{key}"' in html, key
    assert "final ensemble: Nelder-Mead weights" in html and "the book" in html
    assert "sha256" in html and "sampler=tpe" in html and "pruner=median" in html


def test_user_strings_are_escaped(make_run: MakeRun) -> None:
    params = {i: {"layers": 1, "units_0": 4 * (i + 1), "activation": XSS if i == 1 else "relu",
                  "lr": 0.01} for i in range(3)}
    run = make_run(name="evil<b>run", scores=[2.0, 1.0, None],
                   statuses=["complete", "complete", "failed"], params=params,
                   errors={2: f"ValueError: {XSS}"})
    html = render_report(run)
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # in the leaderboard and reason
    assert "evil<b>run" not in html and "evil&lt;b&gt;run" in html


def test_a_run_with_few_trials_says_why_plots_are_missing(make_run: MakeRun) -> None:
    html = render_report(make_run(scores=[1.7]))
    assert 'data-no-plot="importance"' in html and "needs at least 5 completed trials" in html
    assert 'data-no-plot="parallel"' in html
    assert "No ensemble yet" in html


def test_index_across_runs_writes_missing_run_reports(make_run: MakeRun, tmp_path: Path) -> None:
    a = make_run(name="a", scores=[2.0, 1.0])
    make_run(name="b", scores=[1.0, 0.5], reference={"test": 0.4, "source": "x"})
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "run.json").write_text("{not json")
    index, written = write_index(tmp_path / "runs")
    assert index == (tmp_path / "runs" / "index.html").resolve()
    assert sorted(p.parent.name for p in written) == ["a", "b"]
    html = index.read_text()
    assert 'href="a/report.html"' in html and 'href="b/report.html"' in html
    assert "unreadable" in html  # the broken run is listed, not fatal
    # Up to date: nothing rewritten; a newer trial record makes the run's report stale.
    assert write_index(tmp_path / "runs")[1] == []
    trial = a / "trials" / "0001" / "trial.json"
    trial.touch()
    import os
    os.utime(trial, (trial.stat().st_mtime + 10, trial.stat().st_mtime + 10))
    assert [p.parent.name for p in write_index(tmp_path / "runs")[1]] == ["a"]


def test_a_long_run_stays_under_the_size_budget(make_run: MakeRun) -> None:
    scores = [1.0 + (i % 17) / 10 for i in range(400)]
    path = write_report(make_run(scores=scores, ensemble=("folds", "refit")))
    assert path.stat().st_size < MAX_BYTES / 2, path.stat().st_size
    assert path.read_text().count('class="status-complete') >= 400
