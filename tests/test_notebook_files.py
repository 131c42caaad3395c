"""What a real browser trips on and nbval never sees: kernelspec, stored state, file size.

A notebook without the python3 kernelspec makes JupyterLab ask which kernel to use; stored
outputs and widget state make notebooks heavy, noisy in git and stale on opening. The pin tool
(`python -m coursekit.site --pin notebooks/NN_x.ipynb`) keeps only the checked cells' text
outputs.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from coursekit.site import CHECK_TAG, course_notebooks

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CHAPTERS = course_notebooks(NOTEBOOKS)
MAX_OUTPUT_BYTES = 20_000      # pinned numbers are a few lines of text per checked cell
TEXT_MIMES = {"text/plain"}


def test_there_are_chapters():
    assert CHAPTERS, f"no NN_slug.ipynb in {NOTEBOOKS}"
    assert sorted(NOTEBOOKS.glob("*.ipynb")) == CHAPTERS, "every notebook is named NN_slug.ipynb"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_notebook_opens_on_python3_without_asking(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3", f"{path.name}: kernelspec {spec!r}, want name python3"
    assert spec.get("language", "python") == "python"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_notebook_is_lean(path):
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state; re-pin it"
    stored = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.outputs:
            continue
        assert CHECK_TAG in cell.metadata.get("tags", []), (
            f"{path.name} cell {i} stores outputs but is not tagged {CHECK_TAG}; re-pin it")
        for out in cell.outputs:
            assert out.output_type in {"stream", "execute_result"}, (
                f"{path.name} cell {i} stores a {out.output_type} output")
            extra = set(out.get("data", {})) - TEXT_MIMES
            assert not extra, f"{path.name} cell {i} stores {sorted(extra)}: text only"
        stored += len(json.dumps(cell.outputs))
    assert stored <= MAX_OUTPUT_BYTES, f"{path.name} stores {stored} bytes of output"
