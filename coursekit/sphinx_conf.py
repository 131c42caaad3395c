"""The course site's Sphinx configuration (``build/site-src/conf.py`` imports it).

Sphinx + MyST-NB + sphinx-book-theme, fully offline (why this builder: see
:mod:`coursekit.site`). Every script and style the pages load sits in ``_static``: MathJax 3
(SVG output), plotly.js, ``nsde-live-figure.js`` (the slider figures' page code, written by the
build) and ``nsde.css`` (``coursekit/site_static/``).
"""
from coursekit.bootstrap import repository_url

project = "Noise, step size and robust residual networks"
author = "the course authors"
copyright = "the course authors, MIT licence"
html_title = project

extensions = ["myst_nb"]
exclude_patterns = ["_extra", "_static", "**.ipynb_checkpoints", "conf.py"]

# The notebooks were run by coursekit.execute (once, with their widget state); MyST-NB renders
# them as they are, and never loads the Jupyter widget manager (it would come from a CDN): slider
# figures arrive precomputed as plain plotly figures.
nb_execution_mode = "off"
nb_ipywidgets_js = {}
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

# Offline: MathJax and plotly.js from _static, never a CDN.
mathjax_path = "mathjax/tex-svg.js"
html_static_path = ["_static"]
html_extra_path = ["_extra"]          # downloads/ and slides/, copied as they are
html_js_files = ["plotly.min.js", "nsde-live-figure.js"]
html_css_files = ["nsde.css"]
html_copy_source = False
html_show_sourcelink = False
html_show_search_summary = False      # summaries are fetched, which file:// pages cannot do
html_last_updated_fmt = None

html_theme = "sphinx_book_theme"
html_theme_options = {
    "repository_url": repository_url(),
    "repository_branch": "main",
    "path_to_docs": "notebooks",      # the chapters' place in the repository (launch links)
    "use_repository_button": True,
    "use_download_button": False,     # the chapter's own links offer the notebook and its copy
    "use_fullscreen_button": False,   # its icon script is fine offline, but adds little
    "launch_buttons": {"binderhub_url": "https://mybinder.org",
                       "colab_url": "https://colab.research.google.com",
                       "notebook_interface": "jupyterlab"},
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "home_page_in_toc": True,
}


def setup(app):
    # Load MathJax on every page, not only on pages with formulas of their own: the navigation
    # shows chapter titles with math (the step factor $h$) on every page.
    app.set_html_assets_policy("always")
