"""One face per layer: the operator API and the dashboard are two faces over one operations
layer (`app/operations/`) and the services start-up opens (`app/services.py`); neither face
imports the other, and the layers under them import neither face."""

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"


def imported_modules(package: Path) -> dict[str, set[str]]:
    """For each file under `package`, the `app.*` modules it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")) if package.is_dir() else [package]:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(APP.parent))] = {n for n in names if n.startswith("app.")}
    return found


def reaching(package: Path, forbidden: str) -> list[str]:
    return [
        f"{file} imports {module}"
        for file, modules in imported_modules(package).items()
        for module in sorted(modules)
        if module == forbidden or module.startswith(forbidden + ".")
    ]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("dashboard", "app.api"),
        ("api", "app.dashboard"),
        ("operations", "app.api"),
        ("operations", "app.dashboard"),
        ("services.py", "app.api"),
        ("services.py", "app.dashboard"),
    ],
)
def test_a_layer_does_not_import_a_face_beside_or_above_it(layer: str, forbidden: str) -> None:
    assert reaching(APP / layer, forbidden) == []


def test_the_walk_sees_imports() -> None:
    """The check above could pass by reading nothing: the dashboard does import operations."""
    assert reaching(APP / "dashboard", "app.operations") != []
    assert reaching(APP / "api", "app.operations") != []
