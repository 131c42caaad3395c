"""`make student`: the learners' copies of the chapters, without the worked solutions.

``python -m coursekit.student`` writes ``build/student/NN_slug.ipynb`` for every chapter (as
fastbook's ``clean/`` copies and Neuromatch's student notebooks are generated from the
instructors' ones): every cell tagged ``solution`` (markdown or code) is removed, and each run
of consecutive solution cells leaves one markdown stub saying where the solution is. The
exercises stay as they are: the question, the ``answer = None`` cell and its
``nl.check("NN.k", answer, ...)``, which prints "not answered yet" until the learner answers.
Outputs and widget state are cleared. ``make course`` runs these copies top to bottom (and the
solutions after them), so a copy that does not run clean fails the build and its test.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "build" / "student"
SOLUTION_TAG = "solution"
STUB_TAG = "solution-stub"
STUB = ("*The worked solution is not in this copy: try the exercise first, then compare with "
        "the course site (the “Solution” toggle) or ask your instructor.*")


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The chapters, ``NN_slug.ipynb``, in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def is_solution(cell) -> bool:
    return SOLUTION_TAG in cell.metadata.get("tags", [])


def student_copy(nb):
    """The student copy of ``nb`` and, per cell of the copy, its index in ``nb`` (None: a stub).

    Returns:
        ``(copy, origin)``; ``nb`` is not modified.
    """
    import nbformat

    out = copy.deepcopy(nb)
    out.metadata.pop("widgets", None)
    cells, origin, in_solution = [], [], False
    for i, cell in enumerate(nb.cells):
        if is_solution(cell):
            if not in_solution:         # one stub per run of solution cells
                in_solution = True
                stub = nbformat.v4.new_markdown_cell(STUB, metadata={"tags": [STUB_TAG]})
                if nb.nbformat_minor >= 5:
                    stub["id"] = f"{STUB_TAG}-{i}"
                else:
                    del stub["id"]
                cells.append(stub)
                origin.append(None)
            continue
        in_solution = False
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        origin.append(i)
    out.cells = cells
    return out, origin


def write_student_copies(notebooks: list[Path], out: Path = OUT) -> list[Path]:
    """Write each notebook's student copy to ``out/<name>``; returns the paths written."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        copy_, _ = student_copy(nb)
        target = out / path.name
        nbformat.write(copy_, target)
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.student", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks (default: every chapter in notebooks/)")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default build/student)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or course_notebooks(NOTEBOOKS)
    for target in write_student_copies(notebooks, args.out):
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
