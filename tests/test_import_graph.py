"""The package's imports go one way: no module imports a layer above its own, and no two modules
import each other, directly or round a circle (imports inside functions included).

    cli -> benchmarking -> (comparison, baselines, inspection, prediction, llm_attention, ablation) -> training
        -> model -> llm
        -> (backbones, data) -> (config, metrics, machine, safety) -> errors
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "timellm_core"

# The first part of a module's name below timellm_core -> its layer; a module may import its own
# layer and the layers below it, never one above.
LAYERS = {
    "errors": 0, "__init__": 0,
    "config": 1, "metrics": 1, "machine": 1, "safety": 1, "preset_expectations": 1,
    "backbones": 2, "data": 2, "paper_results": 2,
    "llm": 3,
    "model": 4,
    "training": 5,
    "baselines": 6, "comparison": 7, "inspection": 6, "prediction": 6, "llm_attention": 6, "ablation": 6,
    "benchmarking": 8,
    "cli": 9, "__main__": 9,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every timellm_core module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                node.module.split(".")[0] == "timellm_core":
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # "from pkg import module"
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "timellm_core")
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {target for target in imports_of(path) if target in modules and target != name}
            for name, path in modules.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_every_top_level_part_of_the_package_has_a_layer():
    parts = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in PACKAGE.glob("*")
             if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").is_file())}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(f"{source} -> {target}" for source, targets in import_graph().items() for target in targets
                    if layer_of(target) > layer_of(source))
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_there_is_no_import_circle():
    graph = import_graph()
    # Importing a package runs its __init__, so "a.b.c" also depends on "a.b"; a package's own
    # __init__ re-exporting its modules is the usual downward arrow, not a circle.
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_graph_sees_imports_inside_functions():
    """The walk is not blind to the imports that used to hide circles (a function-level one here)."""
    graph = import_graph()
    assert "timellm_core.benchmarking.speed" in graph["timellm_core.cli.bench_commands"]
    assert "timellm_core.llm.runner" in graph["timellm_core.model.timellm"]
