"""Dependencies point down: core (the store) < domains (logs) < adapters (web, each domain's api/panel/cli).
Read from the source, every import counted (a function's own and a type checker's too): the log domain imports
no adapter and has no import cycle, the store imports no domain, and a migration imports only alembic,
sqlalchemy and the standard library (it must mean the same thing for ever, whatever the live code becomes)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import robofleet

SOURCE = Path(robofleet.__file__).resolve().parent.parent
ADAPTERS = ("robofleet.web", "robofleet.cli", "robofleet.server")
ADAPTER_MODULES = ("api", "panel", "cli")
DOMAINS = ("robofleet.auth", "robofleet.activities", "robofleet.robots", "robofleet.agents", "robofleet.logs")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, absolute; `from a import b` counts as a.b when that is a module."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules_under(package: str) -> dict[str, Path]:
    root = SOURCE / package.replace(".", "/")
    return {module_name(path): path for path in sorted(root.rglob("*.py"))}


def ours(found: set[str], known: dict[str, Path]) -> set[str]:
    return {name for name in found if name in known}


def is_adapter(name: str) -> bool:
    return name.startswith(ADAPTERS) or name.rsplit(".", 1)[-1] in ADAPTER_MODULES


LOGS = modules_under("robofleet.logs")
STORE = modules_under("robofleet.store")


@pytest.mark.parametrize("name", [name for name in LOGS if not is_adapter(name)])
def test_a_log_domain_module_imports_no_adapter(name: str) -> None:
    adapters = sorted(found for found in imports_of(LOGS[name]) if found.startswith("robofleet") and is_adapter(found))
    assert adapters == [], f"{name} imports adapters"


def test_the_log_domain_has_no_import_cycle() -> None:
    graph = {name: ours(imports_of(path), LOGS) - {name} for name, path in LOGS.items()}
    for start in graph:
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            name = stack.pop()
            assert name != start, f"{start} imports itself through {sorted(seen)}"
            if name not in seen:
                seen.add(name)
                stack.extend(graph[name])


@pytest.mark.parametrize("name", [name for name in STORE if ".migrations.versions." not in name])
def test_a_store_module_imports_no_domain_and_no_adapter(name: str) -> None:
    above = sorted(found for found in imports_of(STORE[name]) if found.startswith((*DOMAINS, *ADAPTERS)))
    assert above == [], f"{name} imports from above the store"


MIGRATIONS = {name: path for name, path in STORE.items() if ".migrations.versions." in name}
# Before 0007 the generated migrations name the store's own column type (robofleet.store.base.UTCDateTime, core):
# left as they are, they import no domain (below).
FROZEN_FROM = "0007"


@pytest.mark.parametrize("name", sorted(MIGRATIONS))
def test_a_migration_imports_no_domain(name: str) -> None:
    above = sorted(found for found in imports_of(MIGRATIONS[name]) if found.startswith((*DOMAINS, *ADAPTERS)))
    assert above == [], f"{name} imports live code of a domain"


@pytest.mark.parametrize("name", [name for name in sorted(MIGRATIONS) if name.rpartition(".")[2] >= FROZEN_FROM])
def test_a_migration_imports_only_alembic_sqlalchemy_and_the_standard_library(name: str) -> None:
    allowed = {"__future__", "alembic", "sqlalchemy", *sys.stdlib_module_names}
    foreign = sorted(found for found in imports_of(MIGRATIONS[name]) if found.split(".")[0] not in allowed)
    assert foreign == [], f"{name} imports live code"
