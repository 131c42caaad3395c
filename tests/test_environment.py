"""environment.yml and pyproject.toml must ask for the same packages."""
import re
from pathlib import Path

try:
    import tomllib  # Python 3.11+
except ModuleNotFoundError:  # Python 3.10: the same parser, installed with pytest there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + spec.replace(" ", "")


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_norm(r) for r in reqs}


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
    return {_norm(r) for r in pip if not r.startswith("-e")}, conda + [r for r in pip if r.startswith("-e")]


def test_environment_yml_lists_the_pyproject_dependencies():
    pip, _ = environment_requirements()
    assert pip == pyproject_requirements()


def test_environment_yml_pins_python_311_and_installs_the_project():
    _, other = environment_requirements()
    assert "python=3.11" in other and "pip" in other and "-e ." in other


def test_torch_is_never_pinned_to_one_release():
    """pip on the course machines caps torch at 2.14.1; a pin elsewhere would fight that."""
    torch_reqs = [r for r in pyproject_requirements() if r.startswith(("torch>", "torch=", "torchvision"))]
    assert torch_reqs and not any("==" in r or "<" in r for r in torch_reqs)
