"""The app's layout: ``pages/`` holds only the screens app.py navigates to, the helpers live in
``explorer_ui/``, and imports go one way (pages -> explorer_ui -> timellm_core, never back).

Streamlit treats ``pages/`` specially (a file there can be opened by URL as a page of its own), so a
helper left in it would be a page nobody meant to have.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def page_files_in_navigation() -> list[str]:
    """The ``st.Page("pages/x.py", ...)`` paths app.py's st.navigation lists, in order."""
    found = []
    for node in ast.walk(ast.parse((ROOT / "app.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Page":
            first = node.args[0]
            assert isinstance(first, ast.Constant), "st.Page's first argument should be a literal path"
            found.append(first.value)
    return found


def top_level_modules_imported(path: Path) -> set[str]:
    """The first part of every module ``path`` imports (at the top or inside a function)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names


def test_pages_holds_exactly_the_screens_of_the_navigation():
    navigation = page_files_in_navigation()
    on_disk = sorted(f"pages/{path.name}" for path in (ROOT / "pages").iterdir() if path.suffix == ".py")
    assert len(navigation) == 8 and len(set(navigation)) == len(navigation)
    assert sorted(navigation) == on_disk, "every file in pages/ is a screen app.py lists; helpers go in explorer_ui/"


def test_the_helpers_are_a_package_of_their_own():
    package = ROOT / "explorer_ui"
    assert (package / "__init__.py").is_file()
    assert ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
    modules = {path.stem for path in package.glob("*.py")} - {"__init__"}
    assert {"shared", "sidebar", "charts", "jobs", "model"} <= modules
    assert not [name for name in modules if name.startswith("_")]


def test_imports_go_one_way():
    """Screens may import helpers; helpers never import screens; the core imports neither, nor Streamlit."""
    for path in sorted((ROOT / "explorer_ui").glob("*.py")) + [ROOT / "app.py"]:
        assert "pages" not in top_level_modules_imported(path), f"{path.name} imports a screen"
    for path in sorted((ROOT / "timellm_core").rglob("*.py")):
        wrong = top_level_modules_imported(path) & {"streamlit", "pages", "explorer_ui", "app"}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_the_app_imports_the_core_plainly():
    """No importlib look-ups of timellm_core: every import is a statement that tools can follow."""
    for path in sorted((ROOT / "explorer_ui").glob("*.py")) + sorted((ROOT / "pages").glob("*.py")):
        assert "importlib" not in top_level_modules_imported(path), f"{path.relative_to(ROOT)} uses importlib"
