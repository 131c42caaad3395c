"""An executed chapter made ready for the static site: nbformat preprocessing, no HTML surgery.

:func:`prepare` returns a copy of the executed notebook that MyST-NB renders as it is:

* a slider figure (the :data:`~nsde_lib.course.widgets.STATIC_MIME` states that
  ``nl.live`` precomputed) is drawn by the live figures' own page code over those states
  (:func:`static_slider_html`, :func:`page_script`): a reader of the ``file://`` page drags
  its controls, no kernel;
* every other plotly output becomes a plotly ``div`` (``plotly.min.js`` ships with the site), a
  live figure without precomputed states its last state, and a bare control nothing;
* progress bars disappear: a tqdm widget, and the text a tqdm bar writes to a stream (the
  ``\\r``-overwritten lines, the "it/s"), so a stream keeps only its other lines;
* code that only builds a figure is collapsed (tag ``hide-input``), the bootstrap cell too;
  worked solutions go behind a toggle (code: ``hide-cell``; markdown: a dropdown admonition);
* a line after the title links the downloads (the notebook, its student copy), the slides and
  the Colab/Binder launch links.
"""
from __future__ import annotations

import copy
import html
import json
import re

from nsde_lib.course.widgets import PAGE_JS, STATIC_MIME, page_state

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS = re.compile(r"\d+%\|[^\n]*\||\d+/\d+ \[\d+:\d+|[?\d.]+\s?(it/s|s/it)\]")
LIVE_FIGURE = "nsde_lib.course.widgets.LiveFigure"   # its models' _anywidget_id
PLOTLY_CONFIG = {"responsive": True, "displaylogo": False}


# --- figures -----------------------------------------------------------------------------------

def figure_html(figure: dict, div_id: str | None = None) -> str:
    """A plotly ``div`` that draws ``figure`` with the page's ``plotly.min.js`` (frames too)."""
    import plotly.io as pio

    return pio.to_html(figure, include_plotlyjs=False, full_html=False, div_id=div_id,
                       auto_play=False, config=PLOTLY_CONFIG, validate=False)


def static_slider_html(payload: dict, div_id: str) -> str:
    """HTML for precomputed slider states: the figure and its controls, drawn by the live
    figures' own page code (``nsde-live-figure.js``, made from ``live_figure.js`` by
    :func:`page_script`) over the precomputed positions, and a line saying what it is."""
    state = json.dumps(page_state(payload), separators=(",", ":"), allow_nan=False)
    state = state.replace("</", "<\\/")   # the JSON cannot close its <script> element
    names = " and ".join(html.escape(c["description"]) for c in payload["controls"]
                         if len(c["values"]) > 1)
    count = len(payload["frames"])
    note = (f"<p class='nsde-live-note'>Drag {names}: {count} precomputed states "
            f"(every value is live in Jupyter, <code>make lab</code>).</p>")
    return (f"<div class='nsde-live' id='{html.escape(div_id)}'>"
            f"<script type='application/json' class='nsde-live-state'>{state}</script>"
            f"</div>{note}")


def page_script() -> str:
    """``live_figure.js`` as a classic script for pages without a kernel (``file://`` pages
    cannot import modules): its render function as ``window.nsdeLiveFigure``, and a start-up
    that draws every ``.nsde-live`` element from its state with a model that has no kernel."""
    source = PAGE_JS.read_text(encoding="utf-8")
    if EXPORT_LINE not in source:
        raise ValueError(f"{PAGE_JS.name} no longer ends with {EXPORT_LINE!r}")
    return ("(function () {\n" + source.replace(EXPORT_LINE, "window.nsdeLiveFigure = { render };")
            + "\n})();\n" + STATIC_START)


EXPORT_LINE = "export default { render };"
# A model over fixed state: set() keeps the position, nothing listens, nothing is sent.
STATIC_START = """(function () {
  function start() {
    document.querySelectorAll(".nsde-live").forEach(function (el) {
      var holder = el.querySelector(".nsde-live-state");
      if (!holder || el.dataset.started) return;
      el.dataset.started = "1";
      var state = JSON.parse(holder.textContent);
      var model = {
        get: function (key) { return state[key]; },
        set: function (key, value) { state[key] = value; },
        save_changes: function () {}, send: function () {},
        on: function () {}, off: function () {}
      };
      window.nsdeLiveFigure.render({ model: model, el: el });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
"""


def _with_buffers(model: dict) -> dict:
    """The model's state with its binary buffers (NumPy arrays of traces) put back in place."""
    import base64

    import numpy as np

    state = copy.deepcopy(dict(model["state"]))
    for buf in model.get("buffers", []):
        path = [k for k in buf["path"] if k != "buffer"]  # plotly puts {dtype, shape, buffer}
        node = state
        for key in path[:-1]:
            node = node[key] if node is not None else None
        if node is None:  # a message slot, already consumed
            continue
        spec = node[path[-1]]
        array = np.frombuffer(base64.b64decode(buf["data"]), dtype=spec["dtype"])
        node[path[-1]] = array.reshape(spec["shape"]).tolist()
    return state


def _is_progress_model(model_id: str, state: dict) -> bool:
    model = state.get(model_id) or {}
    if model.get("model_name") in ("FloatProgressModel", "IntProgressModel"):
        return True
    children = (model.get("state") or {}).get("children") or []
    return any(_is_progress_model(c.replace("IPY_MODEL_", ""), state) for c in children)


def widget_html(model_id: str, state: dict) -> str:
    """A widget tree without live states: its plotly figures drawn as last shown, no controls."""
    model = state.get(model_id)
    if model is None:
        return ""
    s = _with_buffers(model)
    if s.get("_anywidget_id") == LIVE_FIGURE and s.get("figure"):   # nl.live's figure
        figure = s["figure"]
        return figure_html({"data": figure["data"], "layout": figure["layout"]})
    inner = "".join(widget_html(c.replace("IPY_MODEL_", ""), state)
                    for c in s.get("children") or [])
    return f"<div>{inner}</div>" if inner else ""


# --- outputs -------------------------------------------------------------------------------------

def clean_stream(text: str) -> str:
    """A stream as a terminal shows it (``\\r`` overwrites its line) without progress bars."""
    lines = []
    for line in text.split("\n"):
        shown = line.rstrip("\r").split("\r")[-1]
        if not PROGRESS.search(shown):
            lines.append(shown)
    return "\n".join(lines)


def _output(out: dict, state: dict, ids) -> dict | None:
    """The output as the site shows it, or ``None`` to drop it."""
    if out.get("output_type") == "stream":
        text = clean_stream(out.get("text", ""))
        return dict(out, text=text) if text.strip() else None
    data = out.get("data")
    if data is None:
        return out
    plain = data.get("text/plain", "")
    if isinstance(plain, list):
        plain = "".join(plain)
    if STATIC_MIME in data and data[STATIC_MIME]:
        return dict(out, data={"text/html": static_slider_html(data[STATIC_MIME], next(ids))})
    if PLOTLY_MIME in data:
        return dict(out, data={"text/html": figure_html(data[PLOTLY_MIME])})
    if WIDGET_VIEW in data:
        model_id = data[WIDGET_VIEW]["model_id"]
        if _is_progress_model(model_id, state) or PROGRESS.search(plain):
            return None
        rendered = widget_html(model_id, state)
        return dict(out, data={"text/html": rendered}) if rendered else None
    if PROGRESS.search(plain) and set(data) == {"text/plain"}:
        return None
    return out


def has_figure(cell) -> bool:
    return any(any(mark in str(o.get("data", {}).get("text/html", ""))
                   for mark in ("plotly-graph-div", "nsde-live"))
               for o in cell.get("outputs", []))


# --- cells ----------------------------------------------------------------------------------------

def _solution_markdown(source: str) -> str:
    """A markdown solution inside a dropdown admonition (no section headings inside one)."""
    body = re.sub(r"\A#{1,6}\s+[^\n]*[Ss]olutions?\s*\n", "", source)   # the dropdown's title
    body = re.sub(r"^#{1,6}\s+(.*)$", r"**\1**", body, flags=re.M)
    return f":::{{admonition}} Solution\n:class: dropdown\n\n{body}\n:::"


def links_html(links: dict[str, str]) -> str:
    """One paragraph of links (label -> relative URL or https URL)."""
    items = " · ".join(f"<a href='{html.escape(url)}'>{html.escape(label)}</a>"
                       for label, url in links.items())
    return f"<p class='nsde-links'>{items}</p>"


def _add_links(nb, links: dict[str, str]) -> None:
    """Put the links right under the chapter's title (or first, without one)."""
    import nbformat

    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and first.source.startswith("# "):
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n{links_html(links)}\n\n{rest}"
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(links_html(links)))


def _tag(cell, *tags: str) -> None:
    cell.metadata["tags"] = list(dict.fromkeys(list(cell.metadata.get("tags", [])) + list(tags)))


def prepare(nb, *, links: dict[str, str] | None = None):
    """The site's copy of executed chapter ``nb`` (see the module); ``nb`` is not modified."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    ids = (f"nsde-live-{k}" for k in range(10 ** 6))
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and "solution" in tags:
            cell.source = _solution_markdown(cell.source)
            continue
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in (_output(o, state, ids) for o in cell.outputs) if o is not None]
        if "solution" in tags:
            _tag(cell, "hide-cell")
            cell.metadata["mystnb"] = {"code_prompt_show": "Show the solution",
                                       "code_prompt_hide": "Hide the solution"}
        elif "bootstrap" in tags or has_figure(cell):
            _tag(cell, "hide-input")
    nb.metadata.pop("widgets", None)
    if links:
        _add_links(nb, links)
    if nb.nbformat_minor >= 5:
        for k, cell in enumerate(nb.cells):
            cell.setdefault("id", f"site-cell-{k}")
    import nbformat

    return nbformat.from_dict(nb)
