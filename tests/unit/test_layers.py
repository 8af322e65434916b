"""The house rules the code itself can show: no circle anywhere in ``bot`` (imports made only
for type checking count too), a core that talks to nothing outside the process, front ends that
reach the service through ``BotApi`` alone, and no module so long that it holds several jobs."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

BOT = Path(__file__).resolve().parents[2] / "bot"

# What the core may import besides the standard library and itself: Pillow judges and re-encodes
# pictures by their content (CPU work, no I/O). Everything that reaches a platform, the network,
# a database or the environment is an adapter's.
CORE_MAY_IMPORT = {"PIL"}
FRONT_ENDS_MAY_USE_OF_THE_SERVICE = {"bot.core.service.api"}
# Past this, a module has more than one reason to change: split it by those reasons.
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in BOT.rglob("*.py"):
        parts = list(path.relative_to(BOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every module ``path`` imports, wherever the import stands (``TYPE_CHECKING`` included);
    ``from package import module`` is an import of that module."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            yield from (sub for sub in subs if sub in known)
            if any(sub not in known for sub in subs):
                yield node.module


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {target for target in imports(path, known) if target in known and target != name}
        for name, path in known.items()
    }


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_in_bot_is_part_of_an_import_circle() -> None:
    assert circles(graph()) == []


def test_no_module_in_bot_is_over_the_line_limit() -> None:
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()
    }
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_the_core_imports_no_platform_network_or_database_library() -> None:
    def outside(target: str) -> bool:
        if target.startswith("bot.core"):
            return False
        top = target.split(".")[0]
        return target.startswith("bot.") or (
            top not in sys.stdlib_module_names and top not in CORE_MAY_IMPORT
        )

    assert imports_of("bot.core", outside) == set()


def test_front_ends_reach_the_service_through_bot_api_alone() -> None:
    def around_the_api(target: str) -> bool:
        return (
            target.startswith(("bot.store", "bot.providers", "bot.core.service"))
            and target not in FRONT_ENDS_MAY_USE_OF_THE_SERVICE
        )

    assert imports_of("bot.frontends", around_the_api) == set()


def imports_of(package: str, forbidden: Callable[[str], bool]) -> set[str]:
    """``module imports target`` for each import of a ``forbidden`` target from ``package``."""
    known = modules()
    return {
        f"{name} imports {target}"
        for name, path in known.items()
        if name.startswith(package)
        for target in imports(path, known)
        if forbidden(target)
    }
