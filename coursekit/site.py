"""`make course`: run every notebook on a fresh kernel and export it as HTML with live figures.

``python -m coursekit.site`` executes ``notebooks/NN_*.ipynb`` in order, writes the executed
copies and their HTML to ``build/`` and prints one line per notebook (name, seconds, status).
``build/index.html`` lists the chapters with their run time and status and links every page.

Figures survive the export: plotly's JSON outputs and the final state of every plotly
``FigureWidget`` become plotly divs drawn by one ``plotly.min.js`` shipped beside the pages
(no CDN); a slider becomes a line that says its last value.

``python -m coursekit.site --pin notebooks/NN_x.ipynb`` is the maintainers' tool: it runs the
notebook in quick mode and stores the outputs of the cells tagged ``nbval-check-output`` (what
``make test`` compares against), and no other output.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
CHECK_TAG = "nbval-check-output"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY_JS = "plotly.min.js"
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
INDEX = "index.html"
RECORDS = "course.json"
# Run after a notebook's last cell so the stored widget state holds each figure's last data.
SYNC_FIGURES = """\
try:
    from nsde_lib.course.widgets import sync_figure_state as _nsde_sync
    _nsde_sync()
    del _nsde_sync
except ImportError:
    pass"""


@dataclass
class Result:
    name: str
    seconds: float
    ok: bool
    error: str = ""


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The chapters, ``NN_slug.ipynb``, in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def execute(path: Path, *, quick: bool = False, timeout: int = 1800):
    """Run a notebook top to bottom on a fresh python3 kernel; returns ``(nb, seconds, error)``.

    The kernel starts in the notebook's folder, with ``NSDE_QUICK`` set when ``quick``. The
    widget state is stored so the export can draw each slider's last figure: after the last
    cell, one extra cell (not kept in ``nb``) syncs every FigureWidget's state to its figure.
    """
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    n_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(SYNC_FIGURES))   # taken out again below
    env_quick = os.environ.get("NSDE_QUICK")
    os.environ["NSDE_QUICK"] = "1" if quick else ""
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                     store_widget_state=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    start, error = time.perf_counter(), ""
    try:
        client.execute()
    except Exception as err:  # a failing chapter is reported, the others still run
        error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
    finally:
        del nb.cells[n_cells:]
        if env_quick is None:
            os.environ.pop("NSDE_QUICK", None)
        else:
            os.environ["NSDE_QUICK"] = env_quick
    return nb, time.perf_counter() - start, error


# --- figures in the HTML ---------------------------------------------------------------------

def _figure_html(figure: dict) -> str:
    import plotly.io as pio

    return pio.to_html(figure, include_plotlyjs=False, full_html=False,
                       config={"responsive": True})


def _with_buffers(model: dict) -> dict:
    """The model's state with its binary buffers (NumPy arrays of traces) put back in place."""
    import base64
    import copy

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


def _widget_html(model_id: str, state: dict) -> str:
    """Static HTML for a widget tree: plotly figures drawn, controls as their last value."""
    model = state.get(model_id)
    if model is None:
        return ""
    s = _with_buffers(model)
    if "_widget_data" in s and "_widget_layout" in s:  # plotly FigureWidget (anywidget)
        return _figure_html({"data": s["_widget_data"], "layout": s["_widget_layout"]})
    children = s.get("children") or []
    if children:
        inner = "".join(_widget_html(c.replace("IPY_MODEL_", ""), state) for c in children)
        direction = "row" if model["model_name"] == "HBoxModel" else "column"
        return f'<div style="display:flex;flex-direction:{direction};gap:1em">{inner}</div>'
    if "value" in s and "description" in s:  # a slider, dropdown, ...
        value = s["value"]
        if isinstance(value, float):
            value = f"{value:.3g}"
        label = html.escape(str(s.get("description", "")))
        return (f'<div class="widget-static"><b>{label}</b> = {html.escape(str(value))} '
                f'<i>(last value; drag it live with <code>make lab</code>)</i></div>')
    return ""


def embed_figures(nb) -> int:
    """Give every plotly output and widget an HTML rendering; returns how many were found."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    found = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME in data:
                data["text/html"] = _figure_html(data.pop(PLOTLY_MIME))
                found += 1
            elif WIDGET_VIEW in data:
                rendered = _widget_html(data[WIDGET_VIEW]["model_id"], state)
                if rendered:
                    data["text/html"] = rendered
                    data.pop(WIDGET_VIEW)
                    found += 1
    return found


def export_html(nb, out: Path) -> None:
    """Write ``nb`` as a standalone HTML page whose figures load ``plotly.min.js`` beside it."""
    import copy

    import nbconvert

    nb = copy.deepcopy(nb)
    embed_figures(nb)
    nb.metadata.pop("widgets", None)  # drawn statically above; no CDN widget manager
    exporter = nbconvert.HTMLExporter(mathjax_url=MATHJAX_URL)
    body, _ = exporter.from_notebook_node(nb)
    # The template asks a CDN for require.js, which only an embedded widget manager needs;
    # our widgets are drawn statically, and offline the request would only fail.
    body = re.sub(r'<script[^>]*src="https?://[^"]*require[^"]*"[^>]*>\s*</script>\s*', "", body)
    # plotly.js first all the same: plotly.js 2 (plotly.py 5) loaded after an AMD loader
    # registers as a module instead of setting window.Plotly, and no figure draws
    script = f'<script src="{PLOTLY_JS}" charset="utf-8"></script>'
    head = re.search(r"<head[^>]*>\s*(<meta charset[^>]*>)?", body)
    body = body[:head.end()] + f"\n{script}\n" + body[head.end():]
    nav = (f'<nav style="{_NAV_STYLE}"><a href="{INDEX}">&larr; all chapters</a></nav>')
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)
    out.write_text(body, encoding="utf-8")


_NAV_STYLE = ("max-width:1100px;margin:0.5em auto 0;padding:0 1em;font:14px system-ui,sans-serif")


def ship_mathjax(folder: Path) -> Path | None:
    """Copy MathJax 2 (from the jupyter-server-mathjax package) beside the pages, once.

    The pages then typeset their equations offline. Returns the copy, or ``None`` when the
    package is missing (the equations then show as TeX source).
    """
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    dst = folder / MATHJAX_URL.split("/")[0]
    if not (dst / "MathJax.js").exists():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def ship_plotly_js(folder: Path) -> Path:
    """Copy the installed plotly.js beside the pages (the course works offline)."""
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    dst = folder / PLOTLY_JS
    if not dst.exists() or dst.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dst)
    return dst


# --- the site's front page ----------------------------------------------------------------------

def chapter_title(path: Path) -> str:
    """The notebook's first markdown heading, else its file name."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return path.stem
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def write_index(out: Path, results: list[Result], *, chapters: list[Path], quick: bool) -> Path:
    """Write ``out/index.html``: every chapter, its run time and status, linked to its page.

    Results accumulate in ``out/course.json``, so a partial build (``--only``) keeps the
    other chapters' last results; a chapter not built yet is listed as such.
    """
    records_path = out / RECORDS
    try:
        records = json.loads(records_path.read_text())
    except (OSError, ValueError):
        records = {}
    built = time.strftime("%Y-%m-%d %H:%M")
    for r in results:
        records[r.name] = {"seconds": round(r.seconds, 1), "ok": r.ok, "error": r.error,
                           "quick": quick, "built": built}
    records = {k: v for k, v in records.items() if (out / f"{k}.html").exists()}
    records_path.write_text(json.dumps(records, indent=1, sort_keys=True))

    titles = {p.stem: chapter_title(p) for p in chapters}
    rows = []
    for name in sorted(set(titles) | set(records)):
        title = html.escape(titles.get(name, name))
        rec = records.get(name)
        if rec is None:
            rows.append(f"<tr><td>{title}</td><td></td><td class='todo'>not built yet</td>"
                        f"<td></td></tr>")
            continue
        status = ("<span class='ok'>ok</span>" if rec["ok"] else
                  f"<span class='failed'>failed</span> <small>{html.escape(rec['error'])}</small>")
        mode = "quick mode" if rec["quick"] else "full run"
        rows.append(f"<tr><td><a href='{html.escape(name)}.html'>{title}</a></td>"
                    f"<td class='num'>{_duration(rec['seconds'])}</td><td>{status}</td>"
                    f"<td><small>{mode}, {html.escape(rec['built'])} · "
                    f"<a href='{html.escape(name)}.ipynb'>notebook</a></small></td></tr>")
    page = _INDEX_PAGE.format(rows="\n".join(rows), plotly=PLOTLY_JS)
    (out / INDEX).write_text(page, encoding="utf-8")
    return out / INDEX


_INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Noise, step size and robust residual networks: the course</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em;
       color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: 0.45em 0.8em; border-bottom: 1px solid #ddd;
          vertical-align: top; }}
td.num {{ text-align: right; white-space: nowrap; }}
.ok {{ color: #1a7f37; font-weight: 600; }}
.failed {{ color: #c62828; font-weight: 600; }}
.todo {{ color: #888; }}
</style></head>
<body>
<h1>Noise, step size and robust residual networks</h1>
<p>The course's notebooks, run top to bottom on a fresh kernel by <code>make course</code>. Every
figure is live plotly (zoom, hover); <code>{plotly}</code> beside these pages draws them, offline
too. A slider shows the figure at its last value: run <code>make lab</code> to drag it.</p>
<table>
<thead><tr><th>chapter</th><th>run time</th><th>status</th><th></th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


# --- the maintainers' pin tool ------------------------------------------------------------------

def pin(path: Path) -> None:
    """Store the quick-mode outputs of the checked cells in ``path``; clear every other output."""
    import nbformat

    executed, seconds, error = execute(path, quick=True)
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


def build(notebooks: list[Path], out: Path = BUILD, *, quick: bool = False) -> list[Result]:
    """Execute and export each notebook; print and return one :class:`Result` per notebook."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    ship_plotly_js(out)
    ship_mathjax(out)
    results = []
    for path in notebooks:
        nb, seconds, error = execute(path, quick=quick)
        nbformat.write(nb, out / path.name)
        export_html(nb, out / path.with_suffix(".html").name)
        result = Result(path.stem, seconds, not error, error)
        results.append(result)
        status = "ok" if result.ok else f"FAILED  {error}"
        print(f"{path.stem:<32} {seconds:7.1f} s  {status}", flush=True)
    chapters = course_notebooks(notebooks[0].parent) if notebooks else []
    write_index(out, results, chapters=sorted(set(chapters) | set(notebooks)), quick=quick)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="run in quick mode (NSDE_QUICK=1)")
    parser.add_argument("--only", default="", help="run the notebooks whose name contains this")
    parser.add_argument("--out", type=Path, default=BUILD, help="output folder (default build/)")
    parser.add_argument("--pin", nargs="+", type=Path, metavar="NOTEBOOK",
                        help="maintainers: store the checked cells' quick-mode outputs")
    args = parser.parse_args(argv)
    if args.pin:
        for path in args.pin:
            pin(path)
        return 0
    notebooks = [p for p in course_notebooks() if args.only in p.name]
    if not notebooks:
        print(f"no notebook in {NOTEBOOKS} matches {args.only!r}", file=sys.stderr)
        return 2
    results = build(notebooks, args.out, quick=args.quick)
    failed = [r.name for r in results if not r.ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} notebooks ok; "
          f"open {args.out / INDEX}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
