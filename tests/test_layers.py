"""Dependencies point down: core ← domains ← composition root ← adapters, and no two modules import each other.

The imports are read from the source (every `import`, also inside functions; not those under `if TYPE_CHECKING:`,
which exist for the type checker only and create no dependency when robofleet runs)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "robofleet"

CORE, DOMAIN, COMPOSITION, ADAPTER = 0, 1, 2, 3
LAYER_NAMES = {CORE: "core", DOMAIN: "domain", COMPOSITION: "composition root", ADAPTER: "adapter"}
CORE_PACKAGES = ("settings", "store", "runtime", "sdk")
CORE_MODULES = ("robofleet", "robofleet.errors", "robofleet.events", "robofleet.domain")
COMPOSITION_MODULES = ("robofleet.domains", "robofleet.orchestrator")
ADAPTER_MODULES = ("robofleet.cli", "robofleet.server", "robofleet.client", "robofleet.__main__")
# A domain's modules that speak HTTP, HTML or the command line, or are a program of their own (a domain's further
# pages are panel_<page>.py).
ADAPTER_LEAVES = ("api", "panel", "panel_forms", "cli", "remote", "client", "console")
ADAPTER_PREFIXES = ("panel_",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    parts = module.split(".")
    if module in CORE_MODULES:
        return CORE
    if module in COMPOSITION_MODULES:
        return COMPOSITION
    if module in ADAPTER_MODULES or parts[1] == "web" or parts[-1] in ADAPTER_LEAVES:
        return ADAPTER
    if len(parts) > 2 and parts[-1].startswith(ADAPTER_PREFIXES):
        return ADAPTER
    if parts[1] in CORE_PACKAGES and parts[-1] != "actions":
        return CORE
    return DOMAIN


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names if alias.name.startswith("robofleet"))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        if not base.startswith("robofleet"):
            return
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            self.found.add(candidate if (SRC / candidate.replace(".", "/")).exists() or _is_module(candidate) else base)


def _is_module(name: str) -> bool:
    return (SRC / (name.replace(".", "/") + ".py")).exists()


@functools.cache
def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        module = module_name(path)
        visitor = Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), str(path)))
        edges[module] = {name for name in visitor.found if name != module}
    return edges


def test_the_layers_are_known() -> None:
    edges = graph()
    assert len(edges) > 100
    assert layer("robofleet.robots.service") == DOMAIN and layer("robofleet.robots.api") == ADAPTER
    assert layer("robofleet.store.batching") == CORE and layer("robofleet.web.app") == ADAPTER


def test_no_module_imports_a_layer_above_its_own() -> None:
    edges = graph()
    upward = [
        f"{module} ({LAYER_NAMES[layer(module)]}) imports {target} ({LAYER_NAMES[layer(target)]})"
        for module, targets in edges.items()
        for target in sorted(targets)
        if target in edges and layer(target) > layer(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not cycles, "modules that import each other: " + "; ".join(" ↔ ".join(c) for c in cycles)


@pytest.mark.parametrize("package", ["robofleet.robots", "robofleet.agents", "robofleet.logs", "robofleet.auth"])
def test_a_domain_service_never_imports_the_web(package: str) -> None:
    leaks = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module.startswith(package) and layer(module) == DOMAIN
        for target in targets
        if target.startswith("robofleet.web")
    ]
    assert not leaks, "\n".join(leaks)
