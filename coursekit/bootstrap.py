"""The first code cell of every chapter: it makes the notebook run on hosted Jupyter.

On Colab or Binder nothing of the course is installed. The canonical cell below
(:func:`snippet`) imports ``nsde_lib`` and, when that fails, installs the course package from
the repository with pip and says so; on Colab it also turns on Colab's custom-widget manager,
without which the sliders (anywidgets) are not drawn. On a machine set up with ``make`` it does
nothing and prints nothing. The repository's address is read from one place, ``[project.urls] Repository``
in ``pyproject.toml`` (:func:`repository_url`); the launch links of the course site and the
README are derived from it (:func:`launch_links`).

``python -m coursekit.bootstrap notebooks/*.ipynb`` makes the snippet the first code cell of
each notebook: it replaces a previous version of the cell (found by its tag
:data:`BOOTSTRAP_TAG`) or inserts a new one before the first code cell. Running it twice
changes nothing the second time.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_TAG = "bootstrap"
DISTRIBUTION = "nsde-lib"          # pyproject's [project] name
BRANCH = "main"

_SNIPPET = '''\
# Hosted Jupyter (Colab, Binder) has no course library: install it once from the repository.
try:
    import nsde_lib  # noqa: F401
except ImportError:
    import importlib
    import subprocess
    import sys
    print("nsde_lib is not installed here: installing the course package from {url} ...")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet",
                           "{requirement}"])
    importlib.invalidate_caches()
    import nsde_lib  # noqa: F401
    print("nsde_lib installed; the notebook runs as on a course machine.")
# Colab draws widgets of other packages (the course's sliders are anywidgets) only with its
# custom-widget manager on.
import sys
if "google.colab" in sys.modules:
    from google.colab import output
    output.enable_custom_widget_manager()'''


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """``[project.urls] Repository`` from ``pyproject.toml``, without a trailing slash.

    Raises:
        ValueError: the entry is missing or is not an https URL.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    urls = tomllib.loads(pyproject.read_text())["project"].get("urls", {})
    url = urls.get("Repository", "")
    if not url.startswith("https://"):
        raise ValueError(f"pyproject.toml [project.urls] Repository must be an https URL, "
                         f"got {url!r}")
    return url.rstrip("/").removesuffix(".git")


def snippet(url: str | None = None) -> str:
    """The source of the bootstrap cell, installing from ``url`` (default: :func:`repository_url`)."""
    url = url or repository_url()
    requirement = f"{DISTRIBUTION} @ git+{url}.git@{BRANCH}"
    return _SNIPPET.format(url=url, requirement=requirement)


def launch_links(notebook: str, url: str | None = None) -> dict[str, str]:
    """Colab and Binder links that open ``notebooks/<notebook>`` of the repository.

    Args:
        notebook: a chapter's file name, e.g. ``"00_start_here.ipynb"``.
        url: a GitHub repository URL (default: :func:`repository_url`).

    Returns:
        ``{"colab": ..., "binder": ...}``, or ``{}`` for a repository not on GitHub (both
        services open GitHub repositories by path).
    """
    url = url or repository_url()
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url)
    if not match:
        return {}
    owner, repo = match.groups()
    return {"colab": f"https://colab.research.google.com/github/{owner}/{repo}/blob/{BRANCH}/"
                     f"notebooks/{notebook}",
            "binder": f"https://mybinder.org/v2/gh/{owner}/{repo}/{BRANCH}?"
                      f"labpath=notebooks%2F{notebook}"}


def is_bootstrap(cell) -> bool:
    return cell.cell_type == "code" and BOOTSTRAP_TAG in cell.metadata.get("tags", [])


def apply(nb, source: str | None = None) -> bool:
    """Make the snippet ``nb``'s first code cell, in place; returns whether ``nb`` changed."""
    import nbformat

    source = source if source is not None else snippet()
    old = [i for i, cell in enumerate(nb.cells) if is_bootstrap(cell)]
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    if old == code[:1] and nb.cells[old[0]].source == source:
        return False
    for i in reversed(old):
        del nb.cells[i]
    first = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"),
                 len(nb.cells))
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [BOOTSTRAP_TAG]})
    cell["id"] = f"{BOOTSTRAP_TAG}-cell"      # stable, so re-running changes nothing
    if nb.nbformat_minor < 5:
        del cell["id"]
    nb.cells.insert(first, cell)
    return True


def launch_table(notebooks: list[Path]) -> str:
    """A markdown table of Colab and Binder links for ``notebooks`` (for the README)."""
    rows = ["| chapter | run online |", "|---|---|"]
    for path in notebooks:
        links = launch_links(path.name)
        online = " · ".join(f"[{name.title()}]({url})" for name, url in links.items())
        rows.append(f"| `{path.stem}` | {online or 'no launch links (not a GitHub URL)'} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.bootstrap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to update in place")
    parser.add_argument("--links", action="store_true",
                        help="print the notebooks' Colab/Binder links as a markdown table instead")
    args = parser.parse_args(argv)
    if args.links:
        print(launch_table(args.notebooks))
        return 0
    import nbformat

    source = snippet()
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        changed = apply(nb, source)
        if changed:
            nbformat.write(nb, path)
        print(f"{path}: {'bootstrap cell written' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
