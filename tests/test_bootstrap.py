"""The first cell of every chapter: installs the course on hosted Jupyter, silent elsewhere.

The hosted case is simulated offline: ``nsde_lib`` is hidden from the import system and pip's
call is intercepted (it "installs" by un-hiding the package), so the branch a Colab user takes
runs here, line by line, without a network.
"""
from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from coursekit import bootstrap
from coursekit.execute import course_notebooks

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = course_notebooks(ROOT / "notebooks")
URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


class HideNsdeLib:
    """A meta-path finder that makes ``import nsde_lib`` fail, as on a fresh Colab runtime."""

    def __init__(self):
        self.hidden = True

    def find_spec(self, name, path=None, target=None):
        if self.hidden and (name == "nsde_lib" or name.startswith("nsde_lib.")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@contextlib.contextmanager
def without_nsde_lib():
    saved = {k: v for k, v in sys.modules.items() if k == "nsde_lib" or k.startswith("nsde_lib.")}
    for name in saved:
        del sys.modules[name]
    finder = HideNsdeLib()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(saved)


def run_snippet(monkeypatch, on_install=lambda: None):
    calls = []

    def fake_check_call(command, *args, **kwargs):
        calls.append(list(command))
        on_install()
        return 0

    monkeypatch.setattr(subprocess, "check_call", fake_check_call)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(bootstrap.snippet(), "<bootstrap cell>", "exec"), {})
    return calls, printed.getvalue()


def test_the_repository_url_is_read_from_pyproject():
    assert bootstrap.repository_url() == URL.rstrip("/")
    assert URL in bootstrap.snippet()


def test_without_nsde_lib_the_cell_installs_the_course_from_the_repository_and_says_so(
        monkeypatch):
    with without_nsde_lib() as finder:
        with pytest.raises(ModuleNotFoundError):
            import nsde_lib  # noqa: F401  (the simulation really hides it)
        calls, printed = run_snippet(monkeypatch, on_install=lambda: setattr(finder, "hidden",
                                                                              False))
        assert "nsde_lib" in sys.modules       # imported after the "install"
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet",
                      f"nsde-lib @ git+{URL}.git@main"]]
    lines = printed.splitlines()
    assert len(lines) == 2
    assert "not installed here" in lines[0] and URL in lines[0]
    assert "installed" in lines[1]


def test_a_failed_install_is_not_silent(monkeypatch):
    def fail(command, *args, **kwargs):
        raise subprocess.CalledProcessError(1, command)

    with without_nsde_lib():
        monkeypatch.setattr(subprocess, "check_call", fail)
        with pytest.raises(subprocess.CalledProcessError):
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(bootstrap.snippet(), "<bootstrap cell>", "exec"), {})


def test_with_nsde_lib_installed_the_cell_does_nothing(monkeypatch):
    calls, printed = run_snippet(monkeypatch)
    assert calls == [] and printed == ""


def stand_in_colab(monkeypatch) -> list:
    """A stand-in ``google.colab`` package whose ``output.enable_custom_widget_manager`` records
    its calls (the real one exists only on a Colab runtime)."""
    import types

    calls = []
    google, colab = types.ModuleType("google"), types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("enabled")
    colab.output, google.colab = output, colab
    for name, module in (("google", google), ("google.colab", colab),
                         ("google.colab.output", output)):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_on_colab_the_cell_turns_on_the_custom_widget_manager(monkeypatch):
    enabled = stand_in_colab(monkeypatch)
    calls, printed = run_snippet(monkeypatch)
    assert enabled == ["enabled"] and calls == [] and printed == ""


def test_elsewhere_the_cell_leaves_the_widget_manager_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    run_snippet(monkeypatch)
    assert "google.colab" not in sys.modules     # nothing imported it


def test_the_command_inserts_the_cell_once_and_replaces_an_old_version(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                         nbformat.v4.new_code_cell("import nsde_lib as nl")])
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nb, path)
    assert bootstrap.main([str(path)]) == 0
    first = nbformat.read(path, as_version=4)
    code = [c for c in first.cells if c.cell_type == "code"]
    assert first.cells[0].cell_type == "markdown"            # the title stays first
    assert code[0].source == bootstrap.snippet() and bootstrap.is_bootstrap(code[0])
    assert code[1].source == "import nsde_lib as nl"
    before = path.read_bytes()
    bootstrap.main([str(path)])
    assert path.read_bytes() == before                          # idempotent, byte for byte
    old = nbformat.read(path, as_version=4)
    old.cells[1].source = "# an older bootstrap cell"
    assert bootstrap.apply(old) is True
    assert [c.source for c in old.cells if bootstrap.is_bootstrap(c)] == [bootstrap.snippet()]
    assert len(old.cells) == 3


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_starts_its_code_with_the_bootstrap_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source == bootstrap.snippet(), (
        f"{path.name}: run `python -m coursekit.bootstrap notebooks/*.ipynb`")


def test_launch_links_open_the_chapter_on_colab_and_binder():
    links = bootstrap.launch_links("03_x.ipynb", "https://github.com/org/repo")
    assert links == {"colab": "https://colab.research.google.com/github/org/repo/blob/main/"
                              "notebooks/03_x.ipynb",
                     "binder": "https://mybinder.org/v2/gh/org/repo/main?labpath=notebooks%2F03_x.ipynb"}
    assert bootstrap.launch_links("03_x.ipynb", "https://gitlab.com/org/repo") == {}


def test_a_repository_url_that_is_not_https_is_refused(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\n[project.urls]\nRepository = "git@github.com:o/r"\n')
    with pytest.raises(ValueError, match="Repository"):
        bootstrap.repository_url(bad)
