"""The import contract (pyproject.toml, run by `make lint`): it holds on the tree, and it fails on an upward import —
even one hidden inside a function — and on the emulator importing an app."""
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path):
    """A copy of the apps and pyproject.toml, to break on purpose."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_tree_keeps_the_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("portal/http.py", "def _upward():\n    from onboarding import models  # noqa\n", "portal is not allowed to import onboarding"),
    ("exchange/clouds.py", "import console.views  # noqa\n", "exchange is not allowed to import console"),
    ("signin/views.py", "from api import services  # noqa\n", "signin is not allowed to import api"),
    ("emulator/__init__.py", "import portal.env  # noqa\n", "emulator is not allowed to import portal"),
])
def test_an_upward_or_sideways_import_breaks_it(tree, module, line, broken):
    path = tree / module
    path.write_text(path.read_text() + "\n\n" + line)
    result = lint_imports(tree)
    assert result.returncode != 0
    assert broken in result.stdout
