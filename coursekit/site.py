"""`make course`: run every chapter once and publish the course as a static, offline site.

``python -m coursekit.site`` (``make course``; ``NSDE_QUICK=1 make course`` or ``--quick`` for
the quick run) runs each ``notebooks/NN_*.ipynb`` once (:func:`coursekit.execute.run_chapter`:
its student copy top to bottom, then its solutions), prints one line per chapter (name, seconds,
status) and writes under ``build/``:

* ``site/`` — the course site; open ``build/index.html`` (it forwards to ``site/index.html``);
* ``executed/NN_slug.ipynb`` and ``executed/student/NN_slug.ipynb`` — the chapter and its
  student copy as they ran; ``student/NN_slug.ipynb`` — clean student copies (``make student``);
* ``course.json`` — each chapter's last run time and status (a partial ``--only`` build keeps
  the others'); ``site-src/`` — the site's sources, ``sphinx.log`` — the site build's warnings;
* ``claims.json`` — every claim the chapters made about their trained models, with its verdict,
  the run's mode and seeds (:mod:`coursekit.claims`; each chapter's kernel writes
  ``claims/NN_slug.jsonl``); the site shows them on its page "Claims of this run", and one line
  per chapter says how many held.

**The builder: Sphinx + MyST-NB + sphinx-book-theme**, the engine of Jupyter Book 1 without its
CLI (the maintained ExecutableBooks packages). It was chosen because it works fully offline: the
theme ships its CSS, JS and icon fonts; Sphinx's search is a JavaScript index in the page folder
(on ``file://`` too, with search summaries off, as they are fetched); MathJax 3 (SVG output, so
no web fonts to load) is copied from the ``sphinx-mathjax-offline`` wheel and plotly.js from the
plotly package; MyST-NB's widget manager, which would come from a CDN, is switched off (slider
figures are precomputed instead, see :mod:`coursekit.export`). It gives navigation, search,
previous/next links, collapsible code (cell tags), launch buttons and a book layout. Jupyter
Book 2 (MyST-MD) was not chosen: it builds with Node and downloads its theme at build time.
nbconvert templates alone would leave navigation and search to be written by hand.

The site's Sphinx configuration is :mod:`coursekit.sphinx_conf`; its static files are in
``coursekit/site_static/``; the instructor's kit comes from ``instructors/`` and the slides from
:mod:`coursekit.slides`.

``python -m coursekit.site --pin notebooks/NN_x.ipynb`` is the maintainers' tool: it runs the
notebook in quick mode and stores the outputs of the cells tagged ``nbval-check-output`` (what
``make test`` compares against), and no other output.
"""
from __future__ import annotations

import argparse
import html
import json

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from coursekit import bootstrap, claims, export, slides
from coursekit.execute import CHECK_TAG, NOTEBOOKS, course_notebooks, pin, run_chapter

__all__ = ["CHECK_TAG", "course_notebooks", "build", "main", "Result", "chapter_title"]

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
INSTRUCTORS = ROOT / "instructors"
SITE_STATIC = Path(__file__).resolve().parent / "site_static"
PLOTLY_JS = "plotly.min.js"
MATHJAX_JS = "mathjax/tex-svg.js"
INDEX = "index.html"
RECORDS = "course.json"
TITLE = "Noise, step size and robust residual networks"


@dataclass
class Result:
    name: str
    seconds: float
    ok: bool
    error: str = ""
    failed_in: str = ""          # "", "student copy" or "solutions"


def chapter_title(path_or_nb) -> str:
    """The notebook's first markdown heading, else its file name."""
    import nbformat

    if isinstance(path_or_nb, Path):
        try:
            nb = nbformat.read(path_or_nb, as_version=4)
        except (OSError, ValueError):
            return path_or_nb.stem
    else:
        nb = path_or_nb
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return getattr(path_or_nb, "stem", "chapter")


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


# --- assets -----------------------------------------------------------------------------------------

def mathjax_folder() -> Path:
    """MathJax 3 as shipped in the ``sphinx-mathjax-offline`` wheel."""
    from importlib import metadata

    folder = Path(metadata.distribution("sphinx-mathjax-offline").locate_file(
        "sphinx-mathjax-offline/static/mathjax"))
    if not (folder / "tex-svg.js").is_file():
        raise FileNotFoundError(f"no MathJax in {folder}: pip install sphinx-mathjax-offline")
    return folder


def ship_assets(static: Path) -> None:
    """plotly.js, MathJax (SVG output and its TeX extensions; not the speech rules), the
    slider figures' page code and the site's own CSS, into the site's ``_static`` folder."""
    import plotly

    static.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / PLOTLY_JS, static / PLOTLY_JS)
    src, dst = mathjax_folder(), static / "mathjax"
    if not (dst / "tex-svg.js").exists():
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / "tex-svg.js", dst / "tex-svg.js")
        for sub in ("input/tex/extensions", "ui", "a11y"):
            shutil.copytree(src / sub, dst / sub, dirs_exist_ok=True)
    shutil.copytree(SITE_STATIC, static, dirs_exist_ok=True)
    # the slider figures' page code: the live widgets' own, as a classic script
    (static / "nsde-live-figure.js").write_text(export.page_script(), encoding="utf-8")


# --- pages ---------------------------------------------------------------------------------------------

def chapter_links(name: str) -> dict[str, str]:
    """The links under a chapter's title: downloads, slides, launch on Colab/Binder."""
    links = {"download the notebook": f"downloads/{name}.ipynb",
             "its student copy": f"downloads/student/{name}.ipynb",
             "slides": f"slides/{name}.html"}
    launch = bootstrap.launch_links(f"{name}.ipynb")
    if launch:
        links.update({"open in Colab": launch["colab"], "open in Binder": launch["binder"]})
    return links


def update_records(out: Path, results: list[Result], *, quick: bool, built) -> dict:
    """Merge this build's results into ``out/course.json``; drop chapters no longer built."""
    path = out / RECORDS
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        records = {}
    stamp = time.strftime("%Y-%m-%d %H:%M")
    for r in results:
        records[r.name] = {"seconds": round(r.seconds, 1), "ok": r.ok, "error": r.error,
                           "failed_in": r.failed_in, "quick": quick, "built": stamp}
    records = {k: v for k, v in records.items() if built(k)}
    path.write_text(json.dumps(records, indent=1, sort_keys=True))
    return records


def index_page(records: dict, titles: dict[str, str], kit: list[str], *,
               claims_page: str = "") -> str:
    """The front page (MyST markdown): the chapters with run time, status and links, and the
    page ``claims_page`` (the claims of this run) when there is one."""
    rows = []
    for name in sorted(set(titles) | set(records)):
        title = titles.get(name, name).replace("|", "\\|")
        rec = records.get(name)
        if rec is None:
            rows.append(f"| {title} | | not built yet | |")
            continue
        where = f" (in the {rec['failed_in']})" if rec.get("failed_in") else ""
        status = ("ok" if rec["ok"] else
                  f"**failed**{where}: {html.escape(rec['error']).replace('|', '/')}")
        mode = "quick mode" if rec["quick"] else "full run"
        launch = bootstrap.launch_links(f"{name}.ipynb")
        online = " · ".join(f"[{k.title()}]({v})" for k, v in launch.items())
        rows.append(f"| [{title}]({name}.ipynb) | {_duration(rec['seconds'])} | {status} "
                    f"| {mode}, {rec['built']} · <a href='downloads/{name}.ipynb'>notebook</a> · "
                    f"<a href='downloads/student/{name}.ipynb'>student copy</a> · {online} |")
    chapters = "\n".join(n for n in sorted(records))
    kit_pages = "\n".join(kit)
    found = (f"What this run found: {{doc}}`the claims of this run <{claims_page}>`, every "
             "sentence the chapters state about their trained models, and whether it held.\n\n"
             if claims_page else "")
    this_run = ("\n```{toctree}\n:hidden:\n:caption: This run\n:maxdepth: 1\n\n"
                f"{claims_page}\n```\n") if claims_page else ""
    return f"""# {TITLE}

A hands-on course on one idea: a residual network is a numerical method for a differential
equation, and how you step through it — the step factor $h$, and noise injected into the
dynamics — decides how stable and how robust the network is.

Every page below was produced by running its notebook (`make course`: the student copy top to
bottom, then the worked solutions, on one kernel). The figures
are live plotly figures, and every slider figure can be dragged on this page: its states were
precomputed at a handful of positions when the notebook ran. To move a slider to *any* value,
or to change the code, run the notebook: locally with `make lab`, or online with the
Colab/Binder links (the first cell installs the course library there). Solutions are hidden
behind a toggle under each exercise; the student copies leave them out.

| chapter | run time | status | |
|---|---|---|---|
{chr(10).join(rows)}

{found}Instructors: see the {{doc}}`instructor's kit <instructors/index>` (agenda, a note per
chapter, slides).

```{{toctree}}
:hidden:
:caption: Chapters
:maxdepth: 1

{chapters}
```

```{{toctree}}
:hidden:
:caption: Instructor's kit
:maxdepth: 1

{kit_pages}
```
{this_run}"""


def write_kit(src: Path, names: list[str]) -> list[str]:
    """Copy ``instructors/*.md`` into the site, each chapter note with a link to its slides;
    returns the kit's pages in order (``index``, ``agenda``, then the chapter notes)."""
    target = src / "instructors"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    pages = []
    for path in sorted(INSTRUCTORS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if path.stem in names:
            title, _, rest = text.partition("\n")
            text = (f"{title}\n\n<p class='nsde-links'><a href='../slides/{path.stem}.html'>slides"
                    f"</a> · <a href='../{path.stem}.html'>the chapter</a></p>\n{rest}")
        stem = "index" if path.stem == "README" else path.stem   # README: the kit's front page
        (target / f"{stem}.md").write_text(text, encoding="utf-8")
        pages.append(stem)
    order = ["index", "agenda"]
    pages.sort(key=lambda p: (order.index(p) if p in order else len(order), p))
    return [f"instructors/{p}" for p in pages]


CONF_SHIM = """\
# Generated by coursekit.site: the configuration is coursekit/sphinx_conf.py.
import sys
sys.path.insert(0, {root!r})
from coursekit.sphinx_conf import *  # noqa: F401,F403
"""


def run_sphinx(src: Path, out: Path, log: Path) -> tuple[int, int]:
    """Build the HTML site; returns ``(exit status, number of warnings)`` (written to ``log``)."""
    (src / "conf.py").write_text(CONF_SHIM.format(root=str(ROOT)))
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d",
               str(out.parent / ".doctrees"), str(src), str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    return done.returncode, done.stderr.count("WARNING")


REDIRECT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta http-equiv="refresh" content="0; url=site/index.html"></head>
<body><p>The course site is in <a href="site/index.html">site/index.html</a>.</p></body></html>
"""


# Chapters that use models another chapter trains (05 attacks chapter 04's models, 06 takes
# 04's Neural ODE as its reference), with that chapter's spec: while the run store lacks one of
# those models they start once that chapter has finished, so they load its models instead of
# training them a second time; with the models stored they start at once.
AFTER = {"05": ("04", "04_table1"), "06": ("04", "04_table1")}
JOBS_ENV = "NSDE_JOBS"


def models_stored(spec_name: str, *, quick: bool) -> bool:
    """Whether the run store holds every model of the course's spec ``spec_name``."""
    import nsde_lib as nl

    store = nl.open_store()
    if store is None:
        return False
    spec = nl.course_spec(spec_name, quick=quick)
    return all(store.path(store.key(nl.run_request(nl.RunConfig.from_dict(config)))).is_dir()
               for config in spec.trials.values())


def default_jobs() -> int:
    """Chapters run at a time: ``$NSDE_JOBS``, else 2 on a machine with 2 or more CPUs (each
    chapter runs torch on one thread, so two chapters keep two cores busy), else 1."""
    import os

    text = os.environ.get(JOBS_ENV, "")
    if text:
        if not text.isdigit() or int(text) < 1:
            raise SystemExit(f"{JOBS_ENV} must be a whole number >= 1, got {text!r}")
        return int(text)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def run_chapters(notebooks: list[Path], out: Path, *, quick: bool, jobs: int = 1):
    """Run the chapters, ``jobs`` at a time, each on its own kernel; yield ``(path, run)`` as
    each finishes. A chapter listed in :data:`AFTER` waits for its prerequisite (when that is
    in ``notebooks`` and the store lacks its models); the longest chapters of the last run
    (``out/course.json``) start first, so that the shortest fill the gaps at the end."""
    import concurrent.futures as cf
    import multiprocessing

    stored = {}

    def needs(path):
        before, spec = AFTER.get(path.stem[:2], (None, None))
        if spec is not None and spec not in stored:
            stored[spec] = models_stored(spec, quick=quick)
        if before is None or stored[spec]:
            return None
        return next((p for p in notebooks if p.stem[:2] == before), None)

    try:
        last = {k: v["seconds"] for k, v in json.loads((out / RECORDS).read_text()).items()
                if v.get("quick") == quick}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        last = {}

    if jobs <= 1:
        for path in notebooks:
            yield path, run_chapter(path, quick=quick,
                                    claims=claims.chapter_file(out, path.stem))
        return
    waiting, done, running = list(notebooks), set(), {}
    # a prerequisite first (the chapters that wait for it wait less), then the longest
    prerequisites = {needs(q) for q in notebooks}
    waiting.sort(key=lambda p: (p not in prerequisites, -last.get(p.stem, 0.0)))
    with cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while waiting or running:
            for path in list(waiting):
                if len(running) >= jobs:
                    break
                if needs(path) is None or needs(path) in done:
                    waiting.remove(path)
                    running[pool.submit(run_chapter, path, quick=quick,
                                        claims=claims.chapter_file(out, path.stem))] = path
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                path = running.pop(future)
                done.add(path)
                yield path, future.result()


def build(notebooks: list[Path], out: Path = BUILD, *, quick: bool = False,
          jobs: int = 1) -> list[Result]:
    """Run each chapter once, write its pages, student copy, slides; build the site.

    ``jobs`` chapters run at a time (:func:`run_chapters`). Returns one :class:`Result` per
    notebook, in course order (a chapter whose run failed still gets its page, showing how far
    it got).
    """
    import nbformat

    from coursekit.student import student_copy

    src, site = out / "site-src", out / "site"
    extra = src / "_extra"
    for folder in (out / "executed" / "student", out / "student", extra / "downloads" / "student",
                   extra / "slides"):
        folder.mkdir(parents=True, exist_ok=True)
    ship_assets(src / "_static")
    slides.ship_reveal(extra / "slides")
    results, ended = [], {}
    for path in notebooks:
        claims.chapter_file(out, path.stem).unlink(missing_ok=True)  # this run's claims only
    for path, run in run_chapters(notebooks, out, quick=quick, jobs=jobs):
        name = path.stem
        ended[name] = not run.error
        nbformat.write(run.chapter, out / "executed" / path.name)
        nbformat.write(run.student, out / "executed" / "student" / path.name)
        source = nbformat.read(path, as_version=4)
        clean, _ = student_copy(source)
        for target in (out / "student" / path.name, extra / "downloads" / "student" / path.name):
            nbformat.write(clean, target)
        shutil.copyfile(path, extra / "downloads" / path.name)
        error = run.error
        try:
            page = export.prepare(run.chapter, links=chapter_links(name))
            slides.write_deck(run.chapter, extra / "slides" / f"{name}.html",
                              title=chapter_title(source))
        except Exception as err:  # the chapter ran: show it as it ran, and say what failed
            page = run.chapter
            error = error or f"export: {type(err).__name__}: {err}"
        nbformat.write(page, src / path.name)
        result = Result(name, run.seconds, not error, error, run.failed_in)
        results.append(result)
        where = f" (in the {run.failed_in})" if run.failed_in else ""
        status = "ok" if result.ok else f"FAILED{where}  {error}"
        print(f"{name:<32} {run.seconds:7.1f} s  {status}", flush=True)

    order = {p.stem: i for i, p in enumerate(notebooks)}
    results.sort(key=lambda r: order[r.name])
    chapters = course_notebooks(notebooks[0].parent) if notebooks else []
    records = update_records(out, results, quick=quick,
                             built=lambda name: (src / f"{name}.ipynb").exists())
    titles = {p.stem: chapter_title(p) for p in sorted(set(chapters) | set(notebooks))}
    kit = write_kit(src, list(titles))
    report = claims.collect(out, ended, quick=quick,
                            keep=lambda name: (src / f"{name}.ipynb").exists())
    for name in sorted(ended, key=order.get):
        print(claims.summary_line(name, report["chapters"][name]), flush=True)
    (src / f"{claims.PAGE}.md").write_text(claims.claims_page(report, titles), encoding="utf-8")
    (src / "index.md").write_text(index_page(records, titles, kit, claims_page=claims.PAGE),
                                  encoding="utf-8")
    start = time.perf_counter()
    log = out / "sphinx.log"
    status, warnings = run_sphinx(src, site, log)
    note = f", {warnings} warnings in {log}" if warnings else ""
    print(f"{'site (sphinx)':<32} {time.perf_counter() - start:7.1f} s  "
          f"{'ok' if status == 0 else 'FAILED'}{note}", flush=True)
    if status != 0:
        results.append(Result("site", 0.0, False, f"sphinx exited {status}; see sphinx.log"))
    (out / INDEX).write_text(REDIRECT.format(title=TITLE), encoding="utf-8")
    return results


def main(argv=None) -> int:
    from nsde_lib.runtime import is_quick

    parser = argparse.ArgumentParser(prog="python -m coursekit.site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="run in quick mode (also when NSDE_QUICK=1 is set)")
    parser.add_argument("--only", default="", help="run the notebooks whose name contains this")
    parser.add_argument("--out", type=Path, default=BUILD, help="output folder (default build/)")
    parser.add_argument("--jobs", type=int, default=0, metavar="N",
                        help=f"chapters run at a time (default: ${JOBS_ENV}, else 2 on two or "
                             f"more CPUs; chapters 05 and 06 wait for 04, whose models they use)")
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
    quick = args.quick or is_quick()
    results = build(notebooks, args.out, quick=quick, jobs=args.jobs or default_jobs())
    failed = [r.name for r in results if not r.ok]
    print(f"\n{len(results) - len(failed)}/{len(results)} ok ({'quick mode' if quick else 'full run'}); "
          f"open {args.out / INDEX}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
