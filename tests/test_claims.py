"""The record of claims: what a chapter claims about its trained models, and whether it held.

`nl.claim` appends one JSON line per claim to the file named by ``$NSDE_CLAIMS`` (and writes
nothing without it); `coursekit.claims` gathers a build's per-chapter files into
``build/claims.json``, prints a line per chapter and writes the site's page. The unit tests use
tiny hand-made inputs; one test runs a two-cell notebook on a kernel (the variable must reach
it, and must not leak into a run that records nothing, such as the pin tool's), and one builds a
one-chapter course to see the claims arrive on the site.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import nsde_lib as nl
from coursekit import claims, execute
from coursekit import site as course

ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


@pytest.fixture
def claims_to(tmp_path, monkeypatch):
    """Claims go to ``tmp/claims/04_tiny.jsonl``, outside quick mode; returns that path."""
    path = tmp_path / "claims" / "04_tiny.jsonl"
    monkeypatch.setenv(nl.CLAIMS_ENV, str(path))
    monkeypatch.delenv(nl.CHAPTER_ENV, raising=False)
    monkeypatch.delenv("NSDE_QUICK", raising=False)
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- the recorder -------------------------------------------------------------------------------

def test_a_claim_is_written_as_given(claims_to):
    returned = nl.claim("The SDE is more accurate than the ODE in every seed", np.bool_(False),
                        evidence={"points": np.array([0.5, -0.25]),
                                  "accuracy": torch.tensor([[0.75, 0.5], [0.25, float("nan")]]),
                                  "attacked": np.int64(20), "note": "diverged"},
                        seeds=range(2))
    nl.claim("A second claim", True)
    assert returned is None                    # a cell ending in a claim shows nothing
    first, second = _lines(claims_to)
    assert first == {"chapter": "04_tiny", "text": "The SDE is more accurate than the ODE in every seed",
                     "held": False, "quick": False, "seeds": [0, 1],
                     "evidence": {"points": [0.5, -0.25], "accuracy": [[0.75, 0.5], [0.25, None]],
                                  "attacked": 20, "note": "diverged"}}
    assert type(first["held"]) is bool and second["held"] is True
    assert second["evidence"] == {} and second["seeds"] == []
    assert nl.read_claims(claims_to) == [first, second]


def test_the_chapter_name_can_be_set(claims_to, monkeypatch):
    monkeypatch.setenv(nl.CHAPTER_ENV, "05_named")
    nl.claim("Named", True)
    assert _lines(claims_to)[0]["chapter"] == "05_named"


def test_a_text_over_several_lines_is_one_sentence(claims_to):
    nl.claim("At r = 0.25 the SDE certifies\n    no more than input smoothing", True)
    assert _lines(claims_to)[0]["text"] == "At r = 0.25 the SDE certifies no more than input smoothing"


def test_quick_mode_claims_are_marked_quick(claims_to, monkeypatch):
    monkeypatch.setenv("NSDE_QUICK", "1")
    nl.claim("Quick", True, seeds=[0])
    assert _lines(claims_to)[0]["quick"] is True


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(nl.CLAIMS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert nl.claim("Nowhere", True, evidence={"a": 1.0}) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, held, evidence", [
    ("", True, None),                           # no sentence
    ("A claim", 1, None),                       # a number is not a verdict
    ("A claim", None, None),
    ("A claim", True, [0.5, 0.6]),              # evidence needs labels
    ("A claim", True, {"a": {"nested": 1}}),    # numbers, strings or lists of them
    ("A claim", True, {"a": object()}),
])
def test_a_claim_that_cannot_be_recorded_is_refused_even_without_the_variable(
        text, held, evidence, monkeypatch):
    monkeypatch.delenv(nl.CLAIMS_ENV, raising=False)   # the test suite's kernels record nothing
    with pytest.raises(ValueError):
        nl.claim(text, held, evidence=evidence)


def test_reading_names_the_broken_line(tmp_path):
    path = tmp_path / "01_a.jsonl"
    path.write_text('{"chapter": "01_a"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"01_a.jsonl:1 is not a claim record"):
        nl.read_claims(path)
    path.write_text("\nnot json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"01_a.jsonl:2 is not a JSON line"):
        nl.read_claims(path)
    assert nl.read_claims(tmp_path / "missing.jsonl") == []


# --- build/claims.json ----------------------------------------------------------------------------

def _record(chapter, text, held, seeds, quick=False, evidence=None):
    return {"chapter": chapter, "text": text, "held": held, "evidence": evidence or {},
            "seeds": seeds, "quick": quick}


def _chapter_file(out: Path, name: str, records: list[dict]) -> None:
    path = claims.chapter_file(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_claims_json_is_assembled_from_the_chapters_files(tmp_path):
    _chapter_file(tmp_path, "01_a", [
        _record("01_a", "h = 1 moves farther in every seed", True, [0, 1, 2],
                evidence={"h = 1": [0.9, 1.1, 1.0]}),
        _record("01_a", "h = 0.1 is more accurate in every seed", False, [0, 1, 2])])
    _chapter_file(tmp_path, "02_b", [_record("02_b", "One seed's claim", True, [5])])
    report = claims.collect(tmp_path, {"01_a": True, "02_b": True, "03_c": False}, quick=False)
    assert report == json.loads((tmp_path / claims.RECORD).read_text(encoding="utf-8"))
    assert report["mode"] == "full run" and list(report["chapters"]) == ["01_a", "02_b", "03_c"]
    a, b, c = (report["chapters"][n] for n in ("01_a", "02_b", "03_c"))
    assert (a["held"], a["did_not_hold"], a["seeds"], a["quick"]) == (1, 1, [0, 1, 2], False)
    assert [x["text"] for x in a["claims"]] == ["h = 1 moves farther in every seed",
                                               "h = 0.1 is more accurate in every seed"]
    assert a["claims"][0]["evidence"] == {"h = 1": [0.9, 1.1, 1.0]}
    assert (b["held"], b["did_not_hold"], b["seeds"]) == (1, 0, [5])
    assert (c["claims"], c["ran_to_the_end"]) == ([], False)   # no file: the chapter failed early
    assert claims.summary_line("01_a", a) == f"{'01_a':<32} claims: 1 held, 1 did not"
    assert claims.summary_line("03_c", c).endswith("claims: none recorded (the chapter stopped early)")


def test_a_partial_build_keeps_the_chapters_still_built(tmp_path):
    _chapter_file(tmp_path, "01_a", [_record("01_a", "A", True, [0], quick=True)])
    _chapter_file(tmp_path, "02_b", [_record("02_b", "B", False, [0], quick=True)])
    claims.collect(tmp_path, {"01_a": True, "02_b": True}, quick=True)
    _chapter_file(tmp_path, "02_b", [_record("02_b", "B", True, [0, 1, 2])])   # rerun, full mode
    report = claims.collect(tmp_path, {"02_b": True}, quick=False, keep=lambda name: name == "01_a")
    assert report["mode"] == "mixed"
    assert report["chapters"]["01_a"]["mode"] == "quick mode"
    assert report["chapters"]["02_b"]["mode"] == "full run" and report["chapters"]["02_b"]["held"] == 1
    report = claims.collect(tmp_path, {"02_b": True}, quick=False, keep=lambda name: False)
    assert list(report["chapters"]) == ["02_b"] and report["mode"] == "full run"


def test_the_page_reads_as_prose_and_tables(tmp_path):
    _chapter_file(tmp_path, "01_a", [
        _record("01_a", "h = 1 moves farther | in every seed", True, [0, 1, 2], quick=True,
                evidence={"step, h = 1": [0.91234567, 1.5, None], "flipped": 0, "ok": True,
                          "per σ": [[0.5, 0.25], [0.125, 1.0]]}),
        _record("01_a", "h = 0.1 is more accurate in every seed", False, [0, 1, 2], quick=True)])
    report = claims.collect(tmp_path, {"01_a": True, "02_b": True}, quick=True)
    text = claims.claims_page(report, {"01_a": "01 · A chapter"})
    assert text.startswith("# Claims of this run")
    assert "This was a quick run" in text
    assert "## 01 · A chapter" in text and "## 02_b" in text
    assert "Quick mode, seeds 0, 1 and 2, " in text and "1 of 2 claims held." in text
    assert ("| h = 1 moves farther \\| in every seed | held | step, h = 1: 0.9123, 1.5, —; "
            "flipped: 0; ok: yes; per σ: (0.5, 0.25), (0.125, 1) |") in text
    assert "| h = 0.1 is more accurate in every seed | **did not hold** |  |" in text
    assert "no claims about trained models recorded." in text
    rows = [line for line in text.splitlines() if line.startswith("| h")]
    assert not any(word in row for row in rows for word in ("[", "None", "True", "False", "nan"))


def test_seeds_are_said_in_words():
    assert claims.seeds_text([]) == ""
    assert claims.seeds_text([3]) == "seed 3"
    assert claims.seeds_text([0, 1]) == "seeds 0 and 1"
    assert claims.seeds_text([0, 1, 2]) == "seeds 0, 1 and 2"


# --- through a kernel, and through a build ------------------------------------------------------------

CLAIM_CELL = """\
import nsde_lib as nl
nl.claim("A claim from the kernel", True, evidence={"accuracy": [0.5, 0.75]}, seeds=[0, 1])"""


def _notebook(path: Path, *cells) -> Path:
    nbformat.write(new_notebook(cells=list(cells), metadata={"kernelspec": KERNELSPEC}), path)
    return path


@pytest.fixture
def kernel_path(monkeypatch):
    """The kernels import this checkout's nsde_lib and coursekit."""
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), old) if p))


def test_the_kernel_records_where_execute_says_and_nowhere_else(tmp_path, kernel_path, monkeypatch):
    nb = nbformat.read(_notebook(tmp_path / "04_tiny.ipynb", new_code_cell(CLAIM_CELL)),
                       as_version=4)
    target = tmp_path / "build" / "claims" / "04_tiny.jsonl"
    _, error = execute.execute(nb, tmp_path, quick=True, claims=target)
    assert not error, error
    (record,) = nl.read_claims(target)
    assert (record["chapter"], record["held"], record["quick"]) == ("04_tiny", True, True)
    assert not nb.cells[0].outputs                        # a claim prints nothing
    # a run without a claims file (the pin tool's) records nothing, even where the caller's
    # environment names one
    stray = tmp_path / "stray.jsonl"
    monkeypatch.setenv(nl.CLAIMS_ENV, str(stray))
    nb = nbformat.read(tmp_path / "04_tiny.ipynb", as_version=4)
    _, error = execute.execute(nb, tmp_path, quick=True)
    assert not error, error
    assert not stray.exists()
    assert os.environ[nl.CLAIMS_ENV] == str(stray)        # and the caller's value is restored


def test_make_course_gathers_prints_and_shows_the_claims(tmp_path, kernel_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    chapters = [
        _notebook(folder / "00_claims.ipynb", new_markdown_cell("# 00 · Claims"),
                  new_code_cell(CLAIM_CELL),
                  new_code_cell('nl.claim("A claim that did not hold", False, seeds=[0])')),
        _notebook(folder / "01_quiet.ipynb", new_markdown_cell("# 01 · No claims"),
                  new_code_cell("x = 1"))]
    stale = claims.chapter_file(tmp_path / "build", "00_claims")
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps(_record("00_claims", "From an earlier build", True, [9])) + "\n")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = course.build(chapters, tmp_path / "build", quick=True)
    assert all(r.ok for r in results), [r.error for r in results]
    report = json.loads((tmp_path / "build" / claims.RECORD).read_text(encoding="utf-8"))
    first = report["chapters"]["00_claims"]
    assert [c["text"] for c in first["claims"]] == ["A claim from the kernel",
                                                    "A claim that did not hold"]
    assert (first["held"], first["did_not_hold"], first["seeds"]) == (1, 1, [0, 1])
    assert report["mode"] == "quick mode" and all(c["quick"] for c in first["claims"])
    assert report["chapters"]["01_quiet"]["claims"] == []
    assert re.search(r"00_claims\s+claims: 1 held, 1 did not", printed.getvalue())
    assert re.search(r"01_quiet\s+claims: none recorded\n", printed.getvalue())
    page = (tmp_path / "build" / "site" / f"{claims.PAGE}.html").read_text(encoding="utf-8")
    assert "Claims of this run" in page and "A claim that did not hold" in page
    assert "did not hold</strong>" in page and "accuracy: 0.5, 0.75" in page
    index = (tmp_path / "build" / "site" / "index.html").read_text(encoding="utf-8")
    assert f'href="{claims.PAGE}.html"' in index
