"""The module import graph of app/: no cycle, and the rooms import only what they may.

Built with `ast` from every `import` in app/ (top-level and inside functions; imports under
`if TYPE_CHECKING:` are left out, as they never run). Run on its own:
`.venv/bin/python -m pytest -q tests/test_import_graph.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
FEATURES = ("auth", "oauth", "vault", "connectors", "mcp", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                # `from app.mcp import api` imports the module app.mcp.api.
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(APP.rglob("*.py"))
    modules = {_module_name(path) for path in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        graph[name] = _imports(ast.parse(path.read_text()), package, modules)
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        graph[name] |= {m.rsplit(".", 1)[0] for m in set(graph[name]) if "." in m} - {name}
        graph[name] &= modules
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _violations(room: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{source} imports {target}"
        for source, targets in import_graph().items()
        if _room(source) == room
        for target in targets
        if _room(target) in forbidden
    )


def test_app_has_no_import_cycle() -> None:
    # Package __init__ edges make "a package imports its own submodule" look circular when
    # the submodule imports a sibling; those are ordinary, so the parents are left out here.
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in import_graph().items()
    }
    assert find_cycle(graph) is None


def test_kit_imports_no_feature() -> None:
    assert _violations("kit", FEATURES) == []


def test_oauth_imports_neither_vault_connectors_nor_mcp() -> None:
    # The consent step plugs connectors in through a protocol app/oauth defines (issue 12).
    assert _violations("oauth", ("vault", "connectors", "mcp")) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
