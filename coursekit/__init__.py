"""The tools that build the course, beside the science library (as d2lbook beside d2l): the site
builder (``python -m coursekit.site``, what ``make course`` runs) and the JupyterLab launcher
(``python -m coursekit.lab``, ``make lab``). Not installed with ``nsde_lib``; run from the
repository root."""
