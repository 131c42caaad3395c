"""environment.yml and pyproject.toml ask for the same packages; the locks in requirements/ agree
with pyproject.toml; and a venv that `make` installed from the lock holds exactly its versions."""
import importlib.metadata
import os
import re
import sys
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # Python 3.10: the same parser, installed with pytest there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"


def _norm(req: str) -> str:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + spec.replace(" ", "")


def _pyproject_reqs() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return reqs


def pyproject_requirements() -> set[str]:
    return {_norm(r) for r in _pyproject_reqs()}


def environment_requirements() -> tuple[set[str], list[str]]:
    pip, conda, section = [], [], None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.split("#")[0].rstrip()
        item = re.match(r"^(\s*)-\s+(.+)$", stripped)
        if stripped.strip() == "- pip:":
            section = "pip"
        elif item and section == "pip" and len(item.group(1)) > 4:
            pip.append(item.group(2).strip())
        elif item:
            conda.append(item.group(2).strip())
    # pip options (-e ., -c FILE) are not requirements
    return ({_norm(r) for r in pip if not r.startswith("-")},
            conda + [r for r in pip if r.startswith("-")])


def read_pins(path: Path) -> list[Requirement]:
    """The ``name==version ; marker`` lines of a uv/pip-tools output file."""
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            ops = [s.operator for s in req.specifier]
            assert ops == ["=="], f"{path.name}: {line!r} is not a pin"
            pins.append(req)
    return pins


def pinned_version(req: Requirement) -> Version:
    return Version(next(iter(req.specifier)).version)


def pins_by_name(path: Path) -> dict[str, list[Requirement]]:
    by_name: dict[str, list[Requirement]] = {}
    for req in read_pins(path):
        by_name.setdefault(canonicalize_name(req.name), []).append(req)
    return by_name


def test_environment_yml_lists_the_pyproject_dependencies():
    pip, _ = environment_requirements()
    assert pip == pyproject_requirements()


def test_environment_yml_pins_python_311_installs_the_lock_and_the_project():
    _, other = environment_requirements()
    assert "python=3.11" in other and "pip" in other and "-e ." in other
    assert "-c requirements/lock.txt" in other  # conda gets the versions `make` installs


def test_torch_is_never_pinned_to_one_release():
    """pip on the course machines caps torch at 2.14.1; a pin elsewhere would fight that."""
    torch_reqs = [r for r in pyproject_requirements()
                  if r.startswith(("torch>", "torch=", "torchvision"))]
    assert torch_reqs and not any("==" in r or "<" in r for r in torch_reqs)


def test_lock_satisfies_pyproject():
    """Every dependency (extras dev and ray included) is locked, for every platform the lock
    covers, at a version pyproject.toml admits: a bound raised without `make lock` fails here."""
    locked = pins_by_name(REQ / "lock.txt")
    wrong = []
    for line in _pyproject_reqs():
        req = Requirement(line)
        rows = locked.get(canonicalize_name(req.name))
        if not rows:
            wrong.append(f"{req.name} is not in requirements/lock.txt")
        wrong += [f"lock.txt pins {row} outside pyproject's {req}" for row in rows or []
                  if not req.specifier.contains(pinned_version(row), prereleases=True)]
    assert not wrong, "run `make lock`:\n" + "\n".join(wrong)


def test_locks_hold_the_torch_of_requirements_torch_txt():
    torch_pins = {canonicalize_name(r.name): pinned_version(r)
                  for r in read_pins(REQ / "torch.txt")}
    assert set(torch_pins) == {"torch", "torchvision"}
    for lock in ("lock.txt", "lowest.txt"):
        pins = pins_by_name(REQ / lock)
        for name, version in torch_pins.items():
            assert [pinned_version(r) for r in pins[name]] == [version], (lock, name)


def test_lowest_lock_pins_every_direct_dependency_at_its_lower_bound():
    """requirements/lowest.txt (the nox session `lowest`) must test the bounds pyproject.toml
    states, not versions above them."""
    lowest = pins_by_name(REQ / "lowest.txt")
    wrong = []
    for line in _pyproject_reqs():
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in ("torch", "torchvision"):
            continue  # at requirements/torch.txt (test above)
        bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
        got = [pinned_version(r) for r in lowest.get(name, [])]
        if len(bounds) != 1 or got != bounds:
            wrong.append(f"{req}: lowest.txt has {[str(v) for v in got]}")
    assert not wrong, "run `make lock`:\n" + "\n".join(wrong)


def test_torchattacks_lock_satisfies_its_bound():
    (bound,) = [Requirement(line) for line in
                (REQ / "torchattacks.in").read_text().split("#")[0].split()]
    (pin,) = read_pins(REQ / "torchattacks.txt")
    assert pin.name == bound.name and bound.specifier.contains(pinned_version(pin))


def _stamp() -> str | None:
    """What `make` wrote into the running venv's stamp (LOCK=1 or LOCK=0), None without one."""
    stamp = Path(sys.prefix) / ".installed"
    return stamp.read_text().strip() if stamp.exists() else None


def test_installed_versions_equal_the_lock():
    """A venv `make` installed from the lock (the default) runs exactly the locked versions."""
    stamp = _stamp()
    is_project_venv = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
    under_ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    if stamp is None and is_project_venv and under_ci:
        pytest.fail(f"{sys.prefix} has no .installed stamp, but CI installs it with `make`")
    if stamp is None:
        pytest.skip(f"{sys.prefix} was not installed by `make` (no .installed stamp), so it "
                    "need not hold the lock's versions")
    if stamp == "LOCK=0":
        pytest.skip("installed with `make ... LOCK=0`: the newest versions, not the lock's")
    if stamp != "LOCK=1":
        pytest.skip(f"{sys.prefix}/.installed says {stamp!r}, written by an older Makefile: "
                    "`make venv` reinstalls from the lock")
    env = default_environment()
    wrong = []
    for path in (REQ / "lock.txt", REQ / "torchattacks.txt"):
        for req in read_pins(path):
            if req.marker is not None and not req.marker.evaluate(env):
                continue  # another platform's or Python's row
            try:
                installed = importlib.metadata.version(req.name)
            except importlib.metadata.PackageNotFoundError:
                wrong.append(f"{req.name}: not installed, {path.name} pins {req.specifier}")
                continue
            # pip's rule: ==2.14.1 holds for 2.14.1+cu130, the local build of that release
            if not req.specifier.contains(installed, prereleases=True):
                wrong.append(f"{req.name}: {installed} installed, {path.name} pins {req.specifier}")
    assert not wrong, "`make venv` reinstalls from the lock:\n" + "\n".join(wrong)
