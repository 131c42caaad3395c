"""The tools that build the course, beside the science library (as d2lbook beside d2l). Not
installed with ``nsde_lib``; run from the repository root.

* :mod:`coursekit.site` — ``make course``: run every chapter once, build the offline course
  site (Sphinx + MyST-NB + sphinx-book-theme; why: see its docstring); ``--pin`` for maintainers.
* :mod:`coursekit.execute` — running a chapter (its student copy, then its solutions) on a kernel.
* :mod:`coursekit.export` — an executed chapter made ready for the site (static sliders,
  progress bars, collapsed code, solutions behind toggles).
* :mod:`coursekit.student` — ``make student``: the copies without the worked solutions.
* :mod:`coursekit.slides` — reveal.js decks from the executed chapters (instructor's kit).
* :mod:`coursekit.bootstrap` — the first cell of every chapter (hosted Jupyter installs the
  course) and the Colab/Binder launch links; ``python -m coursekit.bootstrap notebooks/*.ipynb``.
* :mod:`coursekit.sphinx_conf` — the site's Sphinx configuration.
* :mod:`coursekit.lab` — ``make lab``: JupyterLab on loopback behind a token.
"""
