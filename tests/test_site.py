"""`make course` as a static site: pages whose plotly figures draw offline, and an index.

A tiny course (one chapter with a plotly figure and a slider-driven FigureWidget, one chapter
that raises) is built once with :func:`nsde_lib.course.build`; the tests read the pages it
writes, and one test opens them in Chromium.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import site as course

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

FIGURE_CELL = """\
import plotly.graph_objects as go
go.Figure(go.Bar(x=["a", "b"], y=[3, 5]), layout_title_text="a static bar chart")"""

SLIDER_CELL = """\
import numpy as np
import plotly.graph_objects as go
from nsde_lib import live, slider
fig = go.FigureWidget(go.Scatter(y=np.zeros(3)))
amp = slider("amplitude a", 1.0, 0.0, 5.0, 0.5)

def update(a):
    fig.data[0].y = a * np.array([1.5, 2.5, 3.5])
    fig.layout.title.text = f"slider at {a:.1f}"

live(fig, update, a=amp)"""

MOVE_CELL = "amp.value = 4.0   # as a reader would drag it"


def _write(path: Path, cells) -> Path:
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build a two-chapter course; returns ``(out_folder, results, printed_text)``."""
    root = tmp_path_factory.mktemp("course")
    (root / "notebooks").mkdir()
    chapters = [
        _write(root / "notebooks" / "00_tiny.ipynb",
               [new_markdown_cell("# 00 · A tiny chapter\nFigures and a slider."),
                new_code_cell(FIGURE_CELL), new_code_cell(SLIDER_CELL),
                new_code_cell(MOVE_CELL)]),
        _write(root / "notebooks" / "01_broken.ipynb",
               [new_markdown_cell("# 01 · A broken chapter"),
                new_code_cell("raise ValueError('boom on purpose')")]),
    ]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)  # the kernels'
    try:
        import contextlib
        import io

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            results = course.build(chapters, root / "build", quick=True)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    return root / "build", results, printed.getvalue()


def test_build_reports_each_chapter_and_keeps_going_after_a_failure(site):
    out, results, printed = site
    assert [(r.name, r.ok) for r in results] == [("00_tiny", True), ("01_broken", False)]
    assert "boom on purpose" in results[1].error
    assert re.search(r"00_tiny\s+\d+\.\d s  ok", printed)
    assert re.search(r"01_broken\s+\d+\.\d s  FAILED  .*boom on purpose", printed)
    assert (out / "01_broken.html").exists()   # a failed chapter still shows how far it got


def test_pages_load_plotly_from_beside_them_never_from_a_cdn(site):
    out, _, _ = site
    page = (out / "00_tiny.html").read_text()
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    assert f"{course.PLOTLY_JS}" in scripts
    assert not [s for s in scripts if "plot" in s.lower() and s != course.PLOTLY_JS]
    assert "cdn.plot.ly" not in page
    assert not [s for s in scripts if "://" in s], scripts   # nothing from the network at all
    assert course.MATHJAX_URL in scripts and (out / "mathjax" / "MathJax.js").is_file()
    # before any AMD loader (require.js), or plotly.js 2 registers as a module, not window.Plotly
    assert scripts.index(course.PLOTLY_JS) == 0
    import plotly

    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert (out / course.PLOTLY_JS).read_bytes() == shipped.read_bytes()


def test_every_figure_and_widget_figure_becomes_a_plotly_div(site):
    out, _, _ = site
    page = (out / "00_tiny.html").read_text()
    assert page.count("Plotly.newPlot(") == 2   # the bar chart and the slider's FigureWidget
    assert "a static bar chart" in page
    assert "application/vnd.jupyter.widget-view+json" not in page
    assert "amplitude a</b> = 4" in page    # the slider, as its last value


def test_a_slider_figure_shows_its_last_state_not_its_first(site):
    """FigureWidget edits travel as messages; the export must still show the last figure."""
    out, _, _ = site
    page = (out / "00_tiny.html").read_text()
    assert "slider at 4.0" in page and "slider at 1.0" not in page
    assert re.search(r"\[6\.0,\s*10\.0,\s*14\.0\]", page)


def test_the_executed_notebook_keeps_widget_state_and_no_helper_cell(site):
    out, _, _ = site
    nb = nbformat.read(out / "00_tiny.ipynb", as_version=4)
    assert len(nb.cells) == 4 and "sync_figure_state" not in nb.cells[-1].source
    assert course.WIDGET_STATE in nb.metadata["widgets"]


def test_index_lists_every_chapter_with_run_time_status_and_link(site):
    out, results, _ = site
    index = (out / course.INDEX).read_text()
    for r in results:
        row = re.search(rf"<tr><td><a href='{r.name}\.html'>.*?</tr>", index)
        assert row, f"{r.name} is not linked from the index"
        assert f"{r.seconds:.1f} s" in row.group(0)
        assert ("class='ok'>ok<" if r.ok else "class='failed'>failed<") in row.group(0)
        assert (out / f"{r.name}.html").exists()
    assert "00 · A tiny chapter" in index and "boom on purpose" in index
    assert "http" not in index   # the front page needs nothing from the network


def test_a_partial_build_keeps_the_other_chapters_on_the_index(tmp_path):
    for name in ("00_a", "01_b"):
        (tmp_path / f"{name}.html").write_text("<html></html>")
    course.write_index(tmp_path, [course.Result("00_a", 1.0, True), course.Result("01_b", 2.0,
                                                                               False, "E: x")],
                       chapters=[], quick=False)
    course.write_index(tmp_path, [course.Result("00_a", 3.5, True)],
                       chapters=[tmp_path / "02_c.ipynb"], quick=True)
    index = (tmp_path / course.INDEX).read_text()
    assert "3.5 s" in index and "1.0 s" not in index       # 00 updated
    assert "2.0 s" in index and "class='failed'" in index   # 01 kept from the first build
    assert "02_c" in index and "not built yet" in index      # 02 known but never built
    records = json.loads((tmp_path / course.RECORDS).read_text())
    assert records["00_a"]["quick"] is True and records["01_b"]["ok"] is False


def test_sync_figure_state_stores_what_the_figure_shows_now():
    import numpy as np
    import plotly.graph_objects as go

    from nsde_lib import sync_figure_state

    fig = go.FigureWidget(go.Scatter(y=[0.0, 0.0]))
    fig.data[0].y = np.array([2.0, 7.0])
    fig.layout.title.text = "moved"
    assert list(fig._widget_data[0]["y"]) == [0.0, 0.0]   # what plotly alone would save
    assert sync_figure_state() >= 1
    assert list(fig._widget_data[0]["y"]) == [2.0, 7.0]
    assert fig._widget_layout["title"]["text"] == "moved"


# A stand-in for require.js, which the page asks a CDN for: an AMD `define` is what breaks
# plotly.js 2 (plotly.py 5) when it loads after require.js; online readers get require.js.
FAKE_REQUIRE_JS = "window.define = function () {}; window.define.amd = {};"


@pytest.mark.browser
def test_the_pages_draw_their_figures_in_chromium(chromium, site):
    out, _, _ = site
    page = chromium.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/require.min.js",
               lambda route: route.fulfill(body=FAKE_REQUIRE_JS, content_type="text/javascript"))
    page.route("https://**", lambda route: route.abort())   # offline, as on a train
    page.goto((out / course.INDEX).as_uri())
    page.click("text=00 · A tiny chapter")
    page.wait_for_url("**/00_tiny.html")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length")
    graphs = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
        svg: g.querySelectorAll('.main-svg').length,
        drawn: g.querySelectorAll('.trace').length,
        y: Array.from(g.data[0].y, Number)}))""")
    page.close()
    assert not errors, errors
    assert len(graphs) == 2 and all(g["svg"] and g["drawn"] for g in graphs), graphs
    assert [6.0, 10.0, 14.0] in [g["y"] for g in graphs]   # the slider figure's last state
