"""The test matrix: the same verdicts on any CPU, and the lowest versions pyproject.toml admits.

`nox` (what `.ci/run` runs after `make test`) runs the sessions tagged ``ci``; `nox -l` lists all.

``notebooks(ISA-Nthreads)``: every notebook under nbval in quick mode, as `make test` runs them, but
with ATen's kernels held to one instruction set (``ATEN_CPU_CAPABILITY``: ``default`` is the plain
build, no AVX; ``avx2``; ``avx512`` only where the CPU has it, since ATen does not check: forcing
it elsewhere ends in an illegal instruction) and torch held to N threads *inside the kernels*.
The chapters set their own thread count (``torch.set_num_threads(THREADS)`` with THREADS = 1), so
OMP_NUM_THREADS alone would be undone by their first cell: an IPython start-up file, in an
IPYTHONDIR of the session's own, sets N and makes the chapters' later calls keep it. A probe
notebook runs first in every session and fails it unless its kernel reports that ISA and N threads
after calling ``torch.set_num_threads(1)`` as the chapters do. These sessions reuse the project's
``.venv`` (`make venv`): nothing to install.

Which combinations run on CI: every pair of ISA x {1, 2} threads but one. `make test` already runs
every notebook at the CPU's native ISA with the chapters' own thread count (1; chapter 00 takes
torch's default, 2 on the 2-core machine), so that pair is left out: here default-1, default-2 and
avx2-2; on an AVX-512 CPU also avx2-1 and avx512-2. In `make matrix` on the 2-core machine (shared
with other work) they took 3.0, 3.6 and 1.8 minutes (avx2-1 alone: 2.0) and `lowest` 7 (2 to
install, 5 to test): 16 minutes beside `make test`'s 16 on CI, well inside the 45 CI may take. Were
it to outgrow them, a covering design (every ISA and every thread count at least once: default-2
alone here) is the fallback.
``nox -s notebooks`` runs all pairs, ``nox -s "notebooks(avx2-1)"`` one.

``lowest``: the unit tests (``tests -m "not browser"``) in a fresh virtual environment under
``.nox/`` holding ``requirements/lowest.txt``: every direct dependency at the lower bound
pyproject.toml gives it, torch and torchvision at the release the course machines provide
(``requirements/torch.txt``), the rest resolved by uv. Installed with pip, so torch comes from the
machine's own wheels, not from a download. ``nox -s lock`` (`make lock`) rewrites the lock
files in ``requirements/``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
REQ = ROOT / "requirements"

nox.options.tags = ["ci"]
nox.options.error_on_missing_interpreters = True  # a matrix that skips a session proves nothing


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no flags to read, so only the plain build is known to run
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_isas(flags: set[str]) -> list[str]:
    """The ATEN_CPU_CAPABILITY values this CPU can run, plainest first (what ATen itself requires
    of the CPU before it picks each one)."""
    isas = ["default"]
    if {"avx2", "fma"} <= flags:
        isas.append("avx2")
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
            isas.append("avx512")
    return isas


ISAS = cpu_isas(_cpu_flags())
THREADS = (1, 2)
# CI's pairs (see the docstring): all but the native ISA with 1 thread, which `make test` runs.
CI_PAIRS = {(isa, n) for isa in ISAS for n in THREADS} - {(ISAS[-1], 1)}

# Runs inside every notebook kernel of a notebooks session, before the notebook's first cell.
THREAD_HOOK = '''\
# Written by noxfile.py for one matrix session: hold torch at NSDE_MATRIX_THREADS threads.
# The chapters call torch.set_num_threads(THREADS) themselves; without this their THREADS = 1
# would undo the session's thread count.
import os as _os

import torch as _torch

_threads = int(_os.environ["NSDE_MATRIX_THREADS"])
_torch.set_num_threads(_threads)
_torch.set_num_threads = lambda _n, _set=_torch.set_num_threads: _set(_threads)
del _os
'''


def _probe_notebook(isa: str, threads: int) -> dict:
    """A notebook that fails unless its kernel runs ATen at `isa` with `threads` threads."""
    code = (
        "import torch\n"
        "torch.set_num_threads(1)  # as the chapters' parameter cells do\n"
        "isa, threads = torch.backends.cpu.get_cpu_capability(), torch.get_num_threads()\n"
        "print(f'kernel: ATen ISA {isa}, {threads} torch threads')\n"
        f"assert isa == {isa.upper()!r}, f'ATen ISA {{isa}}, the session asked for {isa.upper()}'\n"
        f"assert threads == {threads}, f'torch runs {{threads}} threads, the session asked for "
        f"{threads}'\n"
    )
    cell = {"cell_type": "code", "execution_count": None, "id": "probe", "metadata": {},
            "outputs": [], "source": code}
    return {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name":
            "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}


def _project_python(session: nox.Session) -> str:
    if not VENV_PYTHON.exists():
        session.error(f"{VENV_PYTHON} is missing: run `make venv` first (these sessions reuse it)")
    return str(VENV_PYTHON)


@nox.session(venv_backend="none")
@nox.parametrize("isa,threads", [
    nox.param(isa, n, id=f"{isa}-{n}", tags=["ci"] if (isa, n) in CI_PAIRS else [])
    for isa in ISAS for n in THREADS])
def notebooks(session: nox.Session, isa: str, threads: int) -> None:
    """Every notebook, quick mode, ATen held to `isa`, torch to `threads` threads in the kernels."""
    python = _project_python(session)
    # absolute: the kernels run in the notebooks' folders, where a relative IPYTHONDIR is lost
    work = Path(session.create_tmp()).resolve() / f"{isa}-{threads}"
    startup = work / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-matrix-threads.py").write_text(THREAD_HOOK)
    probe = work / "00_matrix_probe.ipynb"
    probe.write_text(json.dumps(_probe_notebook(isa, threads), indent=1))
    env = {"NSDE_QUICK": "1", "ATEN_CPU_CAPABILITY": isa, "NSDE_MATRIX_THREADS": str(threads),
           # the OpenMP and MKL pools start at this size too, before torch is told
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "IPYTHONDIR": str(work / "ipython")}
    session.run(python, "-m", "pytest", str(probe), "notebooks", "--nbval-lax",
                "--nbval-current-env", "-p", "no:cacheprovider", *session.posargs,
                env=env, external=True)


# Loaded into the lowest session's pytest. Every extra is installed there, so a test module that
# skips itself at import (pytest.importorskip) means a lowest version broke that import: seen with
# ray.tune, whose pyarrow needs NumPy 2. A skip would pass unseen; this makes it a failure.
NO_IMPORT_SKIPS = '''\
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped at import, with every extra installed: {reason}"
    return report
'''


@nox.session(python="3.11", tags=["ci"])
def lowest(session: nox.Session) -> None:
    """The unit tests against requirements/lowest.txt (the lower bounds), in a fresh venv."""
    session.install("-r", str(REQ / "lowest.txt"))
    session.install("--no-deps", "-e", ".")
    # the tests' reference attacks at their own lower bound too
    name, bound = _bound((REQ / "torchattacks.in").read_text().split("#")[0])
    session.install("--no-deps", f"{name}=={bound}")
    plugins = Path(session.create_tmp()).resolve()
    (plugins / "no_import_skips.py").write_text(NO_IMPORT_SKIPS)
    session.run("python", "-m", "pytest", "tests", "-m", "not browser", "-p", "no:cacheprovider",
                "-p", "no_import_skips", "--continue-on-collection-errors", *session.posargs,
                env={"NSDE_QUICK": "1", "PYTHONPATH": str(plugins)})


def _bound(req: str) -> tuple[str, str]:
    """('name', 'bound') of a requirement written 'name>=bound' (an extra in brackets allowed)."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)\s*", req)
    if m is None:
        raise ValueError(f"requirement {req!r} is not of the form 'name>=bound', "
                         "so its lowest version is not known")
    return m[1], m[3]


def lower_bounds() -> list[str]:
    """``name==bound`` for every ``name>=bound`` in pyproject.toml (extras included), torch and
    torchvision left out (requirements/torch.txt pins them)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [f"{name}=={bound}" for name, bound in map(_bound, reqs)
            if name not in ("torch", "torchvision")]


def _lock_commands(bounds: str) -> list[list[str]]:
    """The uv commands `make lock` runs (`bounds`: a file holding lower_bounds())."""
    deps = ["pyproject.toml", "--extra", "dev", "--extra", "ray", "-c", "requirements/torch.txt"]
    return [
        # universal: one file for Linux, macOS and Windows laptops, Python 3.10 and up
        ["pip", "compile", *deps, "--universal", "--python-version", "3.10", "--upgrade",
         "-o", "requirements/lock.txt"],
        # every direct dependency at its bound (torch at torch.txt), the rest as uv resolves
        ["pip", "compile", *deps, "-c", bounds, "--resolution", "lowest-direct",
         "--python-version", "3.11", "--upgrade", "-o", "requirements/lowest.txt"],
        # torchattacks on its own: it pins requests~=2.25, which the rest excludes (pyproject)
        ["pip", "compile", "--no-deps", "--upgrade", "requirements/torchattacks.in",
         "-o", "requirements/torchattacks.txt"],
    ]


@nox.session(venv_backend="none", default=False)
def lock(session: nox.Session) -> None:
    """Rewrite requirements/lock.txt, lowest.txt and torchattacks.txt with uv (resolving only:
    uv never installs here, torch included)."""
    uv = str(Path(_project_python(session)).with_name("uv"))
    bounds = Path(session.create_tmp()) / "bounds.txt"
    bounds.write_text("\n".join(lower_bounds()) + "\n")
    # no Python downloads (only the package registries are reachable); the files' headers say
    # how to remake them
    env = {"UV_PYTHON_DOWNLOADS": "never", "UV_CUSTOM_COMPILE_COMMAND": "make lock"}
    for cmd in _lock_commands(str(bounds)):
        session.run(uv, *cmd, env=env, external=True)
