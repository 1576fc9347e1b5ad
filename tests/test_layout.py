"""The house rules of issue 19, checked on the source tree: no runtime import cycle among
playlistgen's modules (function-local imports count; ``if TYPE_CHECKING:`` ones do not), no module
over 500 lines, no package with more than 20 modules, at most 10 modules directly in ``core/``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "playlistgen"
MAX_LINES = 500
MAX_MODULES_PER_PACKAGE = 20
MAX_CORE_MODULES = 10


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST):  # type: ignore[no-untyped-def]
    """Every import statement that runs at some point (skips ``if TYPE_CHECKING:`` bodies)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = package.split(".")
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                           for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # a package's __init__ is imported with any of its modules, but only edges to
                # the module actually named count (an empty __init__ imports nothing)
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_runtime_import_cycles():
    assert find_cycles(import_graph()) == []


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_packages_are_small_and_core_is_folders():
    counts = {str(d.relative_to(PACKAGE.parent)): len(list(d.glob("*.py")))
              for d in PACKAGE.rglob("*") if d.is_dir() and (d / "__init__.py").exists()}
    assert {k: v for k, v in counts.items() if v > MAX_MODULES_PER_PACKAGE} == {}
    assert counts["playlistgen/core"] <= MAX_CORE_MODULES


# What each subsystem folder of core/ may import besides itself and core's shared modules (music,
# loops, threads, optional): the map at the top of docs/architecture.md. Lower layers never import
# higher ones, so a subsystem can be read and tested with only what is below it.
MAY_IMPORT = {
    "storage": set(),
    "audio": set(),
    "similarity": {"storage"},
    "feedback": {"storage"},
    "observe": {"storage"},
    "analysis": {"audio", "similarity", "storage"},
    "library": {"analysis", "audio", "similarity", "storage"},
    "execution": {"analysis", "audio", "library", "similarity", "storage"},
    "playlists": {"feedback", "library", "similarity", "storage"},
    "integrations": {"analysis", "audio", "feedback", "library", "playlists", "similarity", "storage"},
}


def test_subsystems_import_only_what_the_map_allows():
    def subsystem(module: str) -> str | None:
        parts = module.split(".")
        return parts[2] if len(parts) > 3 and parts[1] == "core" else None

    found: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if (source := subsystem(module)) is None:
            continue
        found.setdefault(source, set()).update(t for t in map(subsystem, targets) if t and t != source)
    folders = {p.parent.name for p in (PACKAGE / "core").glob("*/__init__.py")}
    assert folders == set(MAY_IMPORT)
    assert {k: v - MAY_IMPORT[k] for k, v in found.items() if v - MAY_IMPORT[k]} == {}
