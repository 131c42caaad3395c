"""`make student`: the learners' copies, without the worked solutions (no kernel needed here;
the copies are run top to bottom by the course build, tests/test_course_site.py)."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import student
from coursekit.execute import course_notebooks

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = course_notebooks(ROOT / "notebooks")
CHECK = re.compile(r"""nl\.check\(\s*["'](\d\d\.\d+)["']""")


def _cell(kind, source, *tags):
    cell = (new_code_cell if kind == "code" else new_markdown_cell)(source)
    cell.metadata["tags"] = list(tags)
    return cell


def test_solution_cells_are_replaced_by_one_stub_per_run_and_the_rest_kept():
    nb = new_notebook(cells=[
        _cell("md", "# Title"),
        _cell("code", "answer = None\nnl.check('01.1', answer)"),
        _cell("md", "### Solution", "solution"),
        _cell("code", "answer = 2 / 5\nnl.check('01.1', answer)", "solution", "nbval-check-output"),
        _cell("md", "**Exercise 2**"),
        _cell("code", "answer = None\nnl.check('01.2', answer)"),
        _cell("code", "answer = 3", "solution")])
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="stale\n")]
    copy, origin = student.student_copy(nb)
    kinds = [(c.cell_type, c.metadata.get("tags", [])) for c in copy.cells]
    assert kinds == [("markdown", []), ("code", []), ("markdown", [student.STUB_TAG]),
                     ("markdown", []), ("code", []), ("markdown", [student.STUB_TAG])]
    assert origin == [0, 1, None, 4, 5, None]
    assert not any(student.is_solution(c) for c in copy.cells)
    assert copy.cells[1].outputs == [] and nb.cells[1].outputs      # the original is untouched
    assert len(nb.cells) == 7
    nbformat.validate(copy)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_a_chapter_copy_keeps_every_exercise_check_and_no_solution(path):
    nb = nbformat.read(path, as_version=4)
    copy, _ = student.student_copy(nb)
    kept = "\n".join(c.source for c in copy.cells if c.cell_type == "code")
    exercises = {m for c in nb.cells if c.cell_type == "code" for m in CHECK.findall(c.source)}
    assert exercises <= set(CHECK.findall(kept)), "an exercise lost its unanswered check"
    solutions = [c for c in nb.cells if student.is_solution(c)]
    assert all(c.source not in kept for c in solutions if c.cell_type == "code")
    assert not any(student.is_solution(c) for c in copy.cells)
    assert "widgets" not in copy.metadata
    nbformat.validate(copy)


def test_the_command_writes_one_copy_per_chapter(tmp_path):
    assert student.main(["--out", str(tmp_path), *map(str, CHAPTERS[:2])]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in CHAPTERS[:2]]
