"""Running the chapters on fresh kernels, for the site (`make course`) and the pin tool.

:func:`run_chapter` runs a chapter ONCE and gets two notebooks out of that run: its student
copy runs top to bottom (exactly what a learner runs), then, in the same kernel, the worked
solutions (cells tagged ``solution``) run after it. The executed student copy proves that the
copy runs clean; the chapter as published has every output, each solution's output put back
under its exercise. A solution therefore runs on the kernel as the chapter leaves it, not at
its place in the chapter: a solution that depended on being run in place would fail the build.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path

from coursekit.student import NOTEBOOKS, ROOT, course_notebooks, is_solution, student_copy  # noqa: F401

CHECK_TAG = "nbval-check-output"
# Run after a notebook's last cell so the stored widget state holds each figure's last data.
SYNC_FIGURES = """\
try:
    from nsde_lib.course.widgets import sync_figure_state as _nsde_sync
    _nsde_sync()
    del _nsde_sync
except ImportError:
    pass"""
SOLUTION_OF = "nsde_solution_of"   # metadata of a solution cell appended to a student run


@contextlib.contextmanager
def environment(**variables: str):
    """Set environment variables (the kernels started inside inherit them), then restore."""
    old = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(nb, folder: Path, *, quick: bool = False, static_widgets: bool = False,
            timeout: int = 1800, claims: Path | None = None):
    """Run notebook ``nb`` (in place) top to bottom on a fresh python3 kernel.

    The kernel starts in ``folder`` with ``NSDE_QUICK`` set when ``quick`` and
    ``NSDE_STATIC_WIDGETS`` when ``static_widgets`` (slider figures then precompute their
    static states, see :mod:`nsde_lib.course.widgets`). The widget state is stored; after the
    last cell one extra cell (not kept in ``nb``) syncs every live figure's state to its figure.
    ``NSDE_CLAIMS`` names ``claims``: the chapter's claims about trained models are appended
    there (:func:`nsde_lib.claim`); without ``claims`` it is unset and they are not recorded.

    Returns:
        ``(seconds, error)``: ``error`` is ``""``, or the exception's type and last line.
    """
    import nbclient
    import nbformat

    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(SYNC_FIGURES))   # taken out again below
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                     store_widget_state=True,
                                     resources={"metadata": {"path": str(folder)}})
    start, error = time.perf_counter(), ""
    try:
        with environment(NSDE_QUICK="1" if quick else "",
                         NSDE_STATIC_WIDGETS="1" if static_widgets else "",
                         NSDE_CLAIMS=str(claims) if claims else ""):
            client.execute()
    except Exception as err:  # a failing chapter is reported, the others still run
        text = str(err).strip()
        error = f"{type(err).__name__}: {text.splitlines()[-1] if text else ''}"
    finally:
        del nb.cells[n_cells:]
    return time.perf_counter() - start, error


@dataclass
class ChapterRun:
    """One run of a chapter: the chapter with every output, and its student copy as it ran."""

    chapter: object          # nbformat.NotebookNode, executed (solutions' outputs in place)
    student: object          # the executed student copy
    seconds: float
    error: str               # "" when every cell ran
    failed_in: str = ""      # "", "student copy" or "solutions"


def run_chapter(path: Path, *, quick: bool = False, timeout: int = 1800,
                claims: Path | None = None) -> ChapterRun:
    """Run ``path``'s student copy, then its solutions, once, on one kernel (see the module);
    its claims about trained models are appended to ``claims`` (see :func:`execute`)."""
    import nbformat

    source = nbformat.read(path, as_version=4)
    student, origin = student_copy(source)
    run = copy.deepcopy(student)
    solutions = [i for i, cell in enumerate(source.cells)
                 if is_solution(cell) and cell.cell_type == "code"]
    for i in solutions:
        cell = copy.deepcopy(source.cells[i])
        cell.metadata[SOLUTION_OF] = i
        cell.pop("id", None)
        run.cells.append(cell)
    if run.nbformat_minor >= 5:  # unique ids for the appended copies
        for k, cell in enumerate(run.cells[len(student.cells):]):
            cell["id"] = f"solution-run-{k}"
    seconds, error = execute(run, path.parent, quick=quick, static_widgets=True,
                             timeout=timeout, claims=claims)

    n = len(student.cells)
    executed_student = copy.deepcopy(student)
    executed_student.cells = copy.deepcopy(run.cells[:n])
    executed_student.metadata = copy.deepcopy(run.metadata)
    chapter = copy.deepcopy(source)
    chapter.metadata = copy.deepcopy(run.metadata)
    for cell, i in zip(run.cells[:n], origin):
        if i is not None and cell.cell_type == "code":
            chapter.cells[i].outputs = cell.outputs
            chapter.cells[i].execution_count = cell.execution_count
    for cell in run.cells[n:]:
        target = chapter.cells[cell.metadata[SOLUTION_OF]]
        target.outputs, target.execution_count = cell.outputs, cell.execution_count
    failed_in = ""
    if error:
        at = next((k for k, c in enumerate(run.cells) if c.cell_type == "code"
                   and any(o.get("output_type") == "error" for o in c.outputs)), None)
        failed_in = "solutions" if at is not None and at >= n else "student copy"
    return ChapterRun(chapter, executed_student, seconds, error, failed_in)


def pin(path: Path) -> None:
    """Store the quick-mode outputs of the checked cells in ``path``; clear every other output."""
    import nbformat

    executed = nbformat.read(path, as_version=4)
    seconds, error = execute(executed, path.parent, quick=True)
    if error:
        raise SystemExit(f"{path.name} failed in quick mode: {error}")
    source = nbformat.read(path, as_version=4)
    for cell, ran in zip(source.cells, executed.cells):
        if cell.cell_type != "code":
            continue
        if CHECK_TAG in cell.metadata.get("tags", []):
            cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
        else:
            cell.outputs, cell.execution_count = [], None
    source.metadata.pop("widgets", None)
    nbformat.write(source, path)
    print(f"pinned {path.name} ({seconds:.0f} s in quick mode)")
