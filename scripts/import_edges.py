#!/usr/bin/env python3
"""Print the imports that run against Kumo's layers, and the import cycles between modules.

    python scripts/import_edges.py [ROOT]      (ROOT: a checkout; default: this one)

The layers are the ones .importlinter enforces in `make test` (docs/architecture.md draws them):
wiring → edges → orchestration → domain → shared kernel. An import is "upward" when it points at a
higher layer, or sideways between two packages of one layer that must stay independent (scheduler
and conductor, images and network…). This script applies this checkout's layers to any checkout. Every import counts, function-level ones
included, because those are how a cycle gets dodged. The script reads source only (ast), so it runs
on an old checkout too, for before/after figures; the exit status is the number of upward edges
(capped at 100).
"""

from __future__ import annotations

import ast
import configparser
import sys
from collections import defaultdict
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / ".importlinter"


def read_layers(config: Path = CONFIG) -> list[tuple[int, str, tuple[str, ...]]]:
    """The layers contract of .importlinter as (rank, group, module prefixes), top layer first.

    Within one layer, `|` separates packages that must stay independent (each its own group) and
    `:` packages that may import each other (one group)."""
    parser = configparser.ConfigParser()
    parser.read(config)
    lines = [line.strip() for line in parser["importlinter:contract:layers"]["layers"].splitlines()]
    lines = [line for line in lines if line]
    layers = []
    for index, line in enumerate(lines):
        rank = len(lines) - index
        for group in line.split("|"):
            modules = tuple(m.strip() for m in group.split(":"))
            layers.append((rank, modules[0], modules))
    return layers


LAYERS = read_layers()
PACKAGES = ("cloud", "consoles", "compute_agent")


def layer_of(module: str) -> tuple[int, str] | None:
    best: tuple[int, str, int] | None = None
    for rank, group, prefixes in LAYERS:
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[2]):
                best = (rank, group, len(prefix))
    return None if best is None else (best[0], best[1])


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, at any depth."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from cloud import rpc` imports the module cloud.rpc, not the package cloud.
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return found


def collect(root: Path) -> dict[str, dict[str, int]]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            modules[module_name(root, path)] = path
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for name, path in modules.items():
        for target, line in imports_of(root, path):
            # Resolve to the longest known module (a name imported from a module is not a module).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target not in ("cloud", "consoles", "compute_agent"):
                graph[name].setdefault(target, line)
    return graph


def upward(graph: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    bad = []
    for source, targets in graph.items():
        src = layer_of(source)
        for target, line in targets.items():
            dst = layer_of(target)
            if src is None or dst is None or src[1] == dst[1]:
                continue
            if dst[0] > src[0] or (dst[0] == src[0]):
                bad.append((source, target, line))
    return sorted(bad)


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent)
    graph = collect(root)
    bad = upward(graph)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, target, line in bad:
        groups[(layer_of(source)[1], layer_of(target)[1])].append(f"{source}:{line} -> {target}")
    for (src, dst), edges in sorted(groups.items()):
        print(f"{src} -> {dst}: {len(edges)}")
        for edge in edges:
            print(f"    {edge}")
    loops = cycles(graph)
    for loop in loops:
        print(f"cycle of {len(loop)}: {', '.join(loop)}")
    edges = sum(len(t) for t in graph.values())
    print(f"{len(bad)} upward import edges of {edges}; {len(loops)} import cycles")
    return min(len(bad), 100)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
