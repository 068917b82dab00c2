"""Package layout: the modules of fastast_plugin import each other without a circle.

Every ``fastast_plugin/*.py`` is parsed with the standard library's ``ast``
module (nothing is imported, so lazy imports inside functions count too),
the graph of intra-package imports is built, and it must be acyclic.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = "fastast_plugin"
PACKAGE_DIR = Path(__file__).parents[2] / PACKAGE


def module_names():
    return sorted(path.stem for path in PACKAGE_DIR.glob("*.py"))


def imported_modules(path, modules):
    """Package modules that ``path`` imports anywhere (top level or in a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from .x import y
                base = ".".join(filter(None, [PACKAGE, base]))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == PACKAGE and parts[1] in modules:
                found.add(parts[1])
    found.discard(path.stem)
    return found


def import_graph():
    modules = set(module_names())
    return {
        name: imported_modules(PACKAGE_DIR / f"{name}.py", modules) for name in modules
    }


def find_cycle(graph):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_function_level_imports_are_seen(tmp_path):
    source = tmp_path / "ast.py"
    source.write_text(
        "def f():\n    from fastast_plugin.checkpoints import load\n"
        "from fastast_plugin import flexi\nimport fastast_plugin.merge\n"
    )
    modules = {"ast", "checkpoints", "flexi", "merge"}
    assert imported_modules(source, modules) == {"checkpoints", "flexi", "merge"}


def test_no_import_circle_in_the_package():
    graph = import_graph()
    assert graph, "no modules found"
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize(
    "lower, upper",
    [
        ("weights", "ast"),
        ("convert", "ast"),
        ("state_dict", "ast"),
        ("layers", "ast"),
        ("convert", "checkpoints"),
        ("weights", "checkpoints"),
    ],
)
def test_weight_loading_sits_below_the_model(lower, upper):
    """Weight reading/conversion never reaches up to the model or from_pretrained."""
    graph = import_graph()
    reachable, todo = set(), [lower]
    while todo:
        for nxt in graph[todo.pop()] - reachable:
            reachable.add(nxt)
            todo.append(nxt)
    assert upper not in reachable
