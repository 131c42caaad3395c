"""Slides for the instructor, built from the same executed chapters (reveal.js, offline).

:func:`write_deck` turns an executed chapter into a reveal.js deck: a title slide (the title and
the chapter's opening list of objectives), then one slide per ``##`` section with its heading,
its opening paragraph, its first display formula and its first figure (a slider figure stays
draggable: the precomputed states of :mod:`coursekit.export`); the section's whole text is in
the speaker notes (press ``S``). The exercises slide lists the questions, never the solutions.

reveal.js comes from the ``sphinx-revealjs`` wheel (pip, so the build needs no npm); the decks
load it, plotly.js and MathJax from the site's folders, never from a CDN. A deck lives in the
site's ``slides/`` folder and opens from ``file://``.
"""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from nsde_lib.course.widgets import STATIC_MIME

from coursekit import export

MAX_WORDS = 70


def reveal_folder() -> Path:
    """reveal.js as shipped in the ``sphinx-revealjs`` wheel."""
    import sphinx_revealjs

    folder = Path(sphinx_revealjs.__file__).parent / "_static" / "revealjs"
    if not (folder / "dist" / "reveal.js").is_file():
        raise FileNotFoundError(f"no reveal.js in {folder}: pip install sphinx-revealjs")
    return folder


def ship_reveal(folder: Path) -> None:
    """Copy reveal.js (its ``dist`` and the notes plugin) to ``folder/reveal``."""
    src, dst = reveal_folder(), folder / "reveal"
    shutil.copytree(src / "dist", dst / "dist", dirs_exist_ok=True)
    shutil.copytree(src / "plugin" / "notes", dst / "plugin" / "notes", dirs_exist_ok=True)
    shutil.copyfile(src / "LICENSE", dst / "LICENSE")


def _markdown(text: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(text)


def _first_paragraph(text: str) -> str:
    """The first prose paragraph of ``text`` (no heading, list, table or formula), shortened to
    about :data:`MAX_WORDS` words at a sentence end."""
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if not block or block.startswith(("#", "|", "$$", "```", ":::")) or re.match(r"[*\-\d]", block):
            continue
        words = block.split()
        if len(words) <= MAX_WORDS:
            return block
        cut = " ".join(words[:MAX_WORDS])
        end = max(cut.rfind(". "), cut.rfind(": "))
        return cut[:end + 1] if end > 20 else cut + " …"
    return ""


def _first_list(text: str) -> str:
    match = re.search(r"((?:^(?:\d+\.|[*\-])\s.*\n?(?:^\s+\S.*\n?)*)+)", text, flags=re.M)
    return match.group(1) if match else ""


def _formula(texts: list[str]) -> str:
    for text in texts:
        match = re.search(r"\$\$(.+?)\$\$", text, flags=re.S)
        if match:
            return f"$${match.group(1).strip()}$$"
    return ""


def _figure(cells, ids) -> str:
    """The first figure among ``cells``' outputs (a slider figure first), as HTML."""
    for want in (STATIC_MIME, export.PLOTLY_MIME):
        for cell in cells:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if want == STATIC_MIME and data.get(STATIC_MIME):
                    return export.static_slider_html(data[STATIC_MIME], next(ids))
                if want == export.PLOTLY_MIME and export.PLOTLY_MIME in data:
                    return export.figure_html(data[export.PLOTLY_MIME], next(ids))
    return ""


def sections(nb) -> list[tuple[str, list[str], list]]:
    """``[(heading, markdown texts, code cells)]``: what comes before the first ``##`` heading,
    then each section (a heading may sit inside a markdown cell, after other text)."""
    out = [("", [], [])]
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            out[-1][2].append(cell)
            continue
        if "solution" in cell.metadata.get("tags", []):
            continue
        parts = re.split(r"^## +(.*)$", cell.source, flags=re.M)
        if parts[0].strip():
            out[-1][1].append(parts[0])
        for heading, text in zip(parts[1::2], parts[2::2]):
            out.append((heading.strip(), [text] if text.strip() else [], []))
    return out


def _slide(heading: str, texts: list[str], cells, ids) -> str:
    parts = [f"<h2>{_markdown(heading)[3:-5]}</h2>"]
    if "exercise" in heading.lower():
        questions = [t for t in texts if re.search(r"Exercise \d|^\d+\.\s", t, flags=re.M)]
        parts.append(_markdown("\n\n".join(questions)[:1500]))
    else:
        paragraph = _first_paragraph(texts[0]) if texts else ""
        if paragraph:
            parts.append(_markdown(paragraph))
        formula = _formula(texts)
        if formula:
            parts.append(f"<div class='formula'>{formula}</div>")
        figure = _figure(cells, ids)
        if figure:
            parts.append(figure)
    notes = _markdown("\n\n".join(texts)) if texts else ""
    return f"<section>{''.join(parts)}<aside class='notes'>{notes}</aside></section>"


DECK = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — slides</title>
<link rel="stylesheet" href="reveal/dist/reset.css">
<link rel="stylesheet" href="reveal/dist/reveal.css">
<link rel="stylesheet" href="reveal/dist/theme/white.css">
<style>
.reveal {{ font-size: 26px; }}
.reveal h1 {{ font-size: 1.6em; }} .reveal h2 {{ font-size: 1.25em; }}
.reveal section p, .reveal section li {{ text-align: left; }}
.reveal .formula {{ margin: 0.6em 0; }}
.reveal .js-plotly-plot {{ margin: 0 auto; }}
.reveal .nsde-live-note {{ font-size: 0.55em; color: #666; }}
</style>
<script>window.MathJax = {{tex: {{inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]]}}}};</script>
<script src="../_static/plotly.min.js"></script>
<script defer src="../_static/mathjax/tex-svg.js"></script>
<script src="../_static/nsde-live-figure.js"></script>
</head>
<body><div class="reveal"><div class="slides">
{slides}
</div></div>
<script src="reveal/dist/reveal.js"></script>
<script src="reveal/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({{hash: true, width: 1200, height: 800, plugins: [RevealNotes]}});
// a figure drawn while its slide was hidden has no width yet: size it when it shows
Reveal.on("slidechanged", function (event) {{
  event.currentSlide.querySelectorAll(".js-plotly-plot").forEach(function (gd) {{
    window.Plotly.Plots.resize(gd);
  }});
}});
</script>
</body></html>
"""


def write_deck(nb, path: Path, *, title: str) -> Path:
    """Write the reveal.js deck of executed chapter ``nb`` to ``path``."""
    ids = (f"{path.stem}-fig-{k}" for k in range(10 ** 6))
    parts = sections(nb)
    opening = "\n\n".join(parts[0][1])
    intro = _first_list(opening) or _first_paragraph(re.sub(r"^#[^\n]*\n", "", opening))
    slides = [f"<section><h1>{html.escape(title)}</h1>{_markdown(intro)}</section>"]
    slides += [_slide(heading, texts, cells, ids) for heading, texts, cells in parts[1:]
               if not heading.lower().startswith(("parameters", "what next"))]
    path.write_text(DECK.format(title=html.escape(title), slides="\n".join(slides)),
                    encoding="utf-8")
    return path
