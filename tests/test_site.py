"""`make course` on a tiny course: run once, student copy, site pages that work from file://.

A two-chapter course (one chapter with a plotly figure, a one-control and a two-control slider
figure, progress bars, formulas with primes and an exercise with its solution; one chapter that
raises) is built once; the tests read what it writes and open the pages in Chromium, offline.
The real chapters are built by tests/test_course_site.py.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import site as course
from coursekit.student import STUB_TAG

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
PRIMES = r"Primes: $x'$, $(C, H', W')$, $B'_t$ and $$\tfrac12 g\,g'\,(\Delta B^2 - \Delta t).$$"

FIGURE_CELL = """\
import plotly.graph_objects as go
go.Figure(go.Bar(x=["a", "b"], y=[3, 5]), layout_title_text="a static bar chart")"""

SLIDER_CELL = """\
import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import nsde_lib as nl
fig = go.Figure(go.Scatter(y=np.zeros(3)))
amp = nl.slider("amplitude a", 1.0, 0.0, 5.0, 0.5)

def update(a):
    fig.data[0].y = a * np.array([1.5, 2.5, 3.5])
    fig.layout.title.text = f"slider at {a:.1f}"

nl.live(fig, update, a=amp)"""

MOVE_CELL = "amp.value = 4.0   # as a reader would drag it"

TWO_CONTROLS_CELL = """\
fig2 = go.Figure(go.Scatter(y=np.zeros(3)))
shift = widgets.Dropdown(options=[("none", 0.0), ("ten", 10.0)], value=0.0, description="shift")
scale = nl.slider("scale", 1.0, 1.0, 3.0, 1.0)

def update2(shift, scale):
    fig2.data[0].y = scale * np.array([1.0, 2.0, 3.0]) + shift
    fig2.layout.title.text = f"scale {scale:.0f}, shift {shift:.0f}"

nl.live(fig2, update2, shift=shift, scale=scale)"""

PROGRESS_CELL = """\
import sys
from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm
for _ in tqdm(range(3), desc="a widget bar"):
    pass
for _ in text_tqdm(range(3), desc="a text bar", file=sys.stderr):
    pass
print("after the bars")"""


def _write(path: Path, cells) -> Path:
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC}), path)
    return path


def _tagged(cell, *tags):
    cell.metadata["tags"] = list(tags)
    return cell


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the tiny course; returns ``(out_folder, results, printed_text)``."""
    root = tmp_path_factory.mktemp("course")
    (root / "notebooks").mkdir()
    chapters = [
        _write(root / "notebooks" / "00_tiny.ipynb", [
            new_markdown_cell(f"# 00 · A tiny chapter\n{PRIMES}"),
            new_code_cell(FIGURE_CELL), new_code_cell(SLIDER_CELL), new_code_cell(MOVE_CELL),
            new_code_cell(TWO_CONTROLS_CELL), new_code_cell(PROGRESS_CELL),
            new_markdown_cell("## Exercises\n1. For $\\dot x = -5x$, the largest stable $h$?"),
            new_code_cell("answer = None\nnl.check('01.1', answer)"),
            _tagged(new_markdown_cell("### Solution\n$|1 - 5h| < 1$."), "solution"),
            _tagged(new_code_cell("answer = 2 / 5\nnl.check('01.1', answer)"), "solution")]),
        _write(root / "notebooks" / "01_broken.ipynb", [
            new_markdown_cell("# 01 · A broken chapter"),
            new_code_cell("raise ValueError('boom on purpose')")]),
    ]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)  # the kernels'
    try:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            results = course.build(chapters, root / "build", quick=True)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    return root / "build", results, printed.getvalue()


def page(out: Path, name: str) -> str:
    return (out / "site" / f"{name}.html").read_text(encoding="utf-8")


def test_build_reports_each_chapter_and_keeps_going_after_a_failure(site):
    out, results, printed = site
    assert [(r.name, r.ok) for r in results] == [("00_tiny", True), ("01_broken", False)]
    assert "boom on purpose" in results[1].error and results[1].failed_in == "student copy"
    assert re.search(r"00_tiny\s+\d+\.\d s  ok", printed)
    assert re.search(r"01_broken\s+\d+\.\d s  FAILED \(in the student copy\)  .*boom", printed)
    assert re.search(r"site \(sphinx\)\s+\d+\.\d s  ok", printed)
    assert "boom on purpose" in page(out, "01_broken")   # a failed chapter shows how far it got
    assert (out / course.INDEX).is_file()


def test_nothing_is_loaded_from_the_network(site):
    out, _, _ = site
    pages = [p for folder in ("", "instructors", "slides")
             for p in (out / "site" / folder).glob("*.html")]
    assert len(pages) >= 5
    for path in pages:
        text = path.read_text(encoding="utf-8")
        loaded = re.findall(r'<script[^>]*\bsrc="([^"]+)"', text)
        loaded += re.findall(r'<link[^>]*\brel="(?:stylesheet|preload)"[^>]*\bhref="([^"]+)"', text)
        loaded += re.findall(r'<link[^>]*\bhref="([^"]+)"[^>]*\brel="(?:stylesheet|preload)"', text)
        remote = [u for u in loaded if "://" in u or u.startswith("//")]
        assert not remote, f"{path.name} loads {remote}"
        for url in loaded:       # and everything it loads is there
            target = (path.parent / url.split("?")[0].split("#")[0]).resolve()
            assert target.is_file(), f"{path.name} loads missing {url}"
    chapter = page(out, "00_tiny")
    assert "_static/plotly.min.js" in chapter and "_static/mathjax/tex-svg.js" in chapter
    assert "require.js" not in chapter and "widget-view" not in chapter


def live_states(chapter: str) -> list[dict]:
    """The page states of a site page's slider figures, in order."""
    return [json.loads(m.replace("<\\/", "</")) for m in re.findall(
        r"<div class='nsde-live' id='[^']+'><script type='application/json' "
        r"class='nsde-live-state'>(.*?)</script>", chapter, flags=re.S)]


def test_slider_figures_carry_their_precomputed_states_for_the_live_page_code(site):
    out, _, _ = site
    chapter = page(out, "00_tiny")
    one, two = live_states(chapter)
    assert "_static/nsde-live-figure.js" in chapter
    # the one-control figure starts where the kernel started (a = 1), not where the test cell
    # left it (a = 4), and the frame for a = 4 holds 4 x (1.5, 2.5, 3.5)
    (a,) = one["controls"]
    assert a["kind"] == "slider" and a["values"][one["index"]["a"]] == 1.0
    assert one["figure"]["layout"]["title"]["text"] == "slider at 1.0"
    at_4 = {f["name"]: f for f in one["frames"]["frames"]}[str(a["values"].index(4.0))]
    assert at_4["data"][0]["y"] == [6.0, 10.0, 14.0]
    # two controls: every combination, named by both positions
    shift, scale = two["controls"]
    assert shift["kind"] == "select" and shift["labels"] == ["none", "ten"]
    frames = {f["name"]: f for f in two["frames"]["frames"]}
    assert len(frames) == 2 * 3
    assert frames["1-2"]["layout"]["title"]["text"] == "scale 3, shift 10"
    assert frames["1-2"]["data"][0]["y"] == [13.0, 16.0, 19.0]


def test_progress_bars_leave_no_text_and_the_rest_of_the_output_stays(site):
    out, _, _ = site
    text = re.sub(r"<[^>]+>", " ", page(out, "00_tiny"))
    assert "after the bars" in text
    assert "it/s" not in text and not re.search(r"\d%\|", text)
    assert "a text bar:" not in text and "a widget bar:" not in text


def test_figure_code_is_collapsed_and_the_solution_hidden_behind_a_toggle(site):
    out, _, _ = site
    chapter = page(out, "00_tiny")
    assert chapter.count("tag_hide-input") >= 3         # the bar chart and both slider figures
    assert "tag_hide-cell" in chapter and "Show the solution" in chapter
    assert 'class="dropdown admonition"' in chapter                # the markdown solution
    assert "Exercise 01.1: not answered yet" in chapter and "Exercise 01.1: correct" in chapter


def test_the_student_copy_ran_clean_and_is_offered_for_download(site):
    out, _, _ = site
    ran = nbformat.read(out / "executed" / "student" / "00_tiny.ipynb", as_version=4)
    assert not any("solution" in c.metadata.get("tags", []) for c in ran.cells)
    assert any(STUB_TAG in c.metadata.get("tags", []) for c in ran.cells)
    printed = "".join(o.get("text", "") for c in ran.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert "Exercise 01.1: not answered yet" in printed and "correct" not in printed
    assert not [o for c in ran.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "error"]
    clean = nbformat.read(out / "student" / "00_tiny.ipynb", as_version=4)
    assert all(not c.outputs for c in clean.cells if c.cell_type == "code")
    chapter = page(out, "00_tiny")
    for link in ("downloads/00_tiny.ipynb", "downloads/student/00_tiny.ipynb", "slides/00_tiny.html"):
        assert f"href='{link}'" in chapter or f'href="{link}"' in chapter
        assert (out / "site" / link).is_file()


def test_navigation_search_and_previous_next(site):
    out, _, _ = site
    chapter = page(out, "00_tiny")
    assert 'href="01_broken.html"' in chapter                 # the sidebar and "next"
    assert "prev-next-area" in chapter
    assert (out / "site" / "search.html").is_file()
    index = (out / "site" / "searchindex.js").read_text()
    assert "tini" in index or "tiny" in index


def test_index_lists_every_chapter_with_run_time_status_and_links(site):
    out, results, _ = site
    index = (out / "site" / "index.html").read_text(encoding="utf-8")
    for r in results:
        assert f'href="{r.name}.html"' in index
        assert course._duration(round(r.seconds, 1)) in index
    assert "boom on purpose" in index and "quick mode" in index
    records = json.loads((out / course.RECORDS).read_text())
    assert records["00_tiny"]["ok"] is True and records["01_broken"]["failed_in"] == "student copy"


def test_a_partial_build_keeps_the_other_chapters_records(tmp_path):
    built = {"00_a", "01_b"}
    course.update_records(tmp_path, [course.Result("00_a", 1.0, True),
                                     course.Result("01_b", 2.0, False, "E: x")],
                          quick=False, built=built.__contains__)
    records = course.update_records(tmp_path, [course.Result("00_a", 3.5, True)], quick=True,
                                    built=built.__contains__)
    assert records["00_a"]["seconds"] == 3.5 and records["00_a"]["quick"] is True
    assert records["01_b"]["ok"] is False and records["01_b"]["seconds"] == 2.0
    text = course.index_page(records, {"00_a": "A", "01_b": "B", "02_c": "C"}, [])
    assert "3.5 s" in text and "**failed**" in text and "not built yet" in text


# --- in Chromium, from file://, offline ------------------------------------------------------------

def offline_page(chromium):
    browser_page = chromium.new_page(viewport={"width": 1300, "height": 900})
    errors = []
    browser_page.on("pageerror", lambda e: errors.append(str(e)))
    browser_page.route("http*://**", lambda route: route.abort())   # no network, as on a train
    return browser_page, errors


def figure_traces_y(browser_page, box_index: int) -> list:
    """Every trace's y values of the ``box_index``-th live figure (a slider may leave trace 0,
    say an exact solution, as it is and move the others)."""
    return browser_page.evaluate(
        "i => Array.from(document.querySelectorAll('.nsde-live .js-plotly-plot')[i].data,"
        " d => Array.from(d.y || [], Number))", box_index)


def figure_y(browser_page, box_index: int):
    return browser_page.evaluate(
        "i => Array.from(document.querySelectorAll('.nsde-live .js-plotly-plot')[i].data[0].y,"
        " Number)", box_index)


def wait_y0_above(browser_page, box_index: int, bound: float) -> None:
    browser_page.wait_for_function(
        "([i, bound]) => document.querySelectorAll('.nsde-live .js-plotly-plot')[i]"
        ".data[0].y[0] > bound", arg=[box_index, bound])


def math_report(browser_page) -> dict:
    """What MathJax made of the page's formulas (Sphinx's ``.math`` spans and divs): how many
    it typeset, how many failed (an error node, or the text of MathJax 2's error), how many it
    left as TeX source, and how many contain a prime (U+2032)."""
    formulas = "span.math.notranslate, div.math.notranslate"
    if browser_page.locator(formulas).count():
        browser_page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        browser_page.evaluate("() => MathJax.startup.promise")
    return browser_page.evaluate("""sel => ({
        formulas: document.querySelectorAll('mjx-container').length,
        errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
        text: document.body.innerText.includes('Math Processing Error'),
        raw: [...document.querySelectorAll(sel)].filter(m => !m.querySelector('svg')).length,
        primes: [...document.querySelectorAll('mjx-container')].filter(
            m => m.innerHTML.includes('2032')).length,
    })""", formulas)


@pytest.mark.browser
def test_the_sliders_move_their_figures_on_a_file_page(chromium, site):
    out, _, _ = site
    browser_page, errors = offline_page(chromium)
    browser_page.goto((out / "site" / "00_tiny.html").as_uri())
    browser_page.wait_for_selector(".nsde-live .js-plotly-plot .main-svg")
    assert figure_y(browser_page, 0) == [1.5, 2.5, 3.5]
    first, second = (browser_page.locator(".nsde-live").nth(k) for k in (0, 1))
    first.locator("input[type=range]").press("End")          # a = 5, from the keyboard
    wait_y0_above(browser_page, 0, 7)
    assert figure_y(browser_page, 0) == [7.5, 12.5, 17.5]
    assert first.locator(".gtitle").text_content() == "slider at 5.0"
    assert first.locator("output").text_content() == "5.00"   # the readout follows
    # two controls: choose "ten", then move "scale" to 3: the frame of both positions
    second.locator("select").select_option(label="ten")
    wait_y0_above(browser_page, 1, 5)
    assert figure_y(browser_page, 1) == [11.0, 12.0, 13.0]
    second.locator("input[type=range]").press("End")
    wait_y0_above(browser_page, 1, 12)
    assert figure_y(browser_page, 1) == [13.0, 16.0, 19.0]
    browser_page.close()
    assert not errors, errors


@pytest.mark.browser
def test_formulas_with_primes_render_without_a_mathjax_error(chromium, site):
    out, _, _ = site
    browser_page, errors = offline_page(chromium)
    browser_page.goto((out / "site" / "00_tiny.html").as_uri())
    report = math_report(browser_page)
    browser_page.close()
    assert report["formulas"] >= 5 and report == {**report, "errors": 0, "text": False, "raw": 0}
    assert report["primes"] >= 4        # x', H' and W', B'_t, g' (MathJax 2 failed on each)
    assert not errors, errors


@pytest.mark.browser
def test_search_works_from_a_file_page(chromium, site):
    out, _, _ = site
    browser_page, errors = offline_page(chromium)
    browser_page.goto((out / "site" / "search.html").as_uri() + "?q=broken")
    browser_page.wait_for_selector("#search-results li a", timeout=15_000)
    hits = browser_page.locator("#search-results li a").all_inner_texts()
    browser_page.close()
    assert any("broken" in h.lower() for h in hits), hits
