"""The real course, built once in quick mode (`NSDE_QUICK=1 make course`), read and dragged.

One module fixture runs every chapter ONCE (its student copy, then its solutions: see
coursekit.execute) and builds the site: that run is what proves the student copies run clean,
and the pages it writes are what the browser tests open from file://, offline. It is the most
expensive fixture of the suite (about three minutes on 2 cores), so every check of the built
course reads this one build.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from coursekit import site as course
from coursekit.execute import course_notebooks
from coursekit.student import is_solution

from test_site import figure_traces_y, math_report, offline_page

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = course_notebooks(ROOT / "notebooks")
NAMES = [p.stem for p in CHAPTERS]
CHECK = re.compile(r"""nl\.check\(\s*["'](\d\d\.\d+)["']""")
SLIDER_CHAPTERS = [n for n in NAMES if n[:2] in ("00", "01", "03")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(build folder, {name: Result})``; ``NSDE_TEST_BUILD=build`` reads a quick build made
    before (``NSDE_QUICK=1 make course``) instead of making one (for working on these tests)."""
    existing = os.environ.get("NSDE_TEST_BUILD")
    if existing:
        records = json.loads((Path(existing) / course.RECORDS).read_text())
        assert all(r["quick"] for r in records.values()), "NSDE_TEST_BUILD must be a quick build"
        return Path(existing), {k: course.Result(k, r["seconds"], r["ok"], r["error"],
                                                 r["failed_in"]) for k, r in records.items()}
    out = tmp_path_factory.mktemp("course") / "build"
    results = course.build(CHAPTERS, out, quick=True)
    return out, {r.name: r for r in results}


def test_every_chapter_and_the_site_build(built):
    _, results = built
    failed = {name: r.error for name, r in results.items() if not r.ok}
    assert not failed, failed
    assert set(NAMES) <= set(results)


@pytest.mark.parametrize("name", NAMES)
def test_the_student_copy_ran_top_to_bottom_with_unanswered_exercises(built, name):
    out, _ = built
    ran = nbformat.read(out / "executed" / "student" / f"{name}.ipynb", as_version=4)
    assert not any(is_solution(c) for c in ran.cells)
    code = [c for c in ran.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell of the student copy did not run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    for cell in code:
        for exercise in CHECK.findall(cell.source):
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert f"Exercise {exercise}: not answered yet" in text, (name, exercise)
    clean = nbformat.read(out / "student" / f"{name}.ipynb", as_version=4)
    assert not any(is_solution(c) for c in clean.cells)
    assert all(not c.outputs for c in clean.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", NAMES)
def test_pages_have_no_progress_bar_text_and_load_nothing_remote(built, name):
    out, _ = built
    html = (out / "site" / f"{name}.html").read_text(encoding="utf-8")
    text = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    assert "it/s" not in text and "s/it" not in text and not re.search(r"\d%\|", text)
    assert not re.findall(r'<script[^>]*\bsrc="(?:https?:)?//', html)
    assert "last value; drag it live" not in text
    for link in (f"downloads/{name}.ipynb", f"downloads/student/{name}.ipynb",
                 f"slides/{name}.html"):
        assert link in html and (out / "site" / link).is_file()


@pytest.mark.parametrize("name", SLIDER_CHAPTERS)
def test_slider_chapters_export_every_slider_with_frames(built, name):
    out, _ = built
    executed = nbformat.read(out / "executed" / f"{name}.ipynb", as_version=4)
    lives = sum("live(" in c.source for c in executed.cells if c.cell_type == "code")
    html = (out / "site" / f"{name}.html").read_text(encoding="utf-8")
    assert html.count("class='nsde-live'") == lives > 0


@pytest.mark.browser
@pytest.mark.parametrize("name", SLIDER_CHAPTERS)
def test_a_slider_moves_its_figure_on_the_static_page(chromium, built, name):
    out, _ = built
    browser_page, errors = offline_page(chromium)
    browser_page.goto((out / "site" / f"{name}.html").as_uri())
    browser_page.wait_for_selector(".nsde-live .js-plotly-plot .main-svg")
    before = figure_traces_y(browser_page, 0)
    first = browser_page.locator(".nsde-live").nth(0)
    title = first.locator(".gtitle").text_content()
    first.locator("input[type=range], select").first.press("End")   # the far end of its control
    browser_page.wait_for_function(
        "t => document.querySelectorAll('.nsde-live')[0].querySelector('.gtitle').textContent"
        " !== t", arg=title, timeout=10_000)
    after = figure_traces_y(browser_page, 0)
    browser_page.close()
    assert before != after
    assert not errors, errors


@pytest.mark.browser
def test_no_page_has_a_mathjax_error_and_primes_render(chromium, built):
    out, _ = built
    pages = [p for folder in ("", "instructors") for p in sorted((out / "site" / folder).glob("*.html"))]
    primes = {}
    for path in pages:
        browser_page, errors = offline_page(chromium)
        browser_page.goto(path.as_uri())
        report = math_report(browser_page)
        browser_page.close()
        assert report["errors"] == 0 and not report["text"] and report["raw"] == 0, (
            path.name, report)
        assert not errors, (path.name, errors)
        if path.parent.name == "site":
            primes[path.stem[:2]] = report["primes"]
    # the formulas with a prime that MathJax 2 failed on: Milstein's g' (03), (C, H', W') (04),
    # x' in PGD and B'_t (05)
    assert primes.get("03", 0) >= 1 and primes.get("04", 0) >= 1 and primes.get("05", 0) >= 2


@pytest.mark.browser
def test_the_slides_open_offline(chromium, built):
    out, _ = built
    browser_page, errors = offline_page(chromium)
    browser_page.goto((out / "site" / "slides" / f"{NAMES[0]}.html").as_uri())
    browser_page.wait_for_function("() => window.Reveal && Reveal.isReady()")
    assert browser_page.evaluate("() => Reveal.getTotalSlides()") >= 3
    browser_page.close()
    assert not errors, errors
