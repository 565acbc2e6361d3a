"""The package's shape: the root is the core alone, each feature area a folder, no module name twice,
no import cycles, no module over ~300 lines.

Imports are read with `ast` from every module under tts/: module-level and function-level (lazy)
imports count, `if TYPE_CHECKING:` blocks do not. Run as a script to print the cycles and the
longest modules:  python tests/test_layout.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "tts"
MAX_LINES = 300

# Known exceptions (none now). An entry must be justified; the last test fails when one is no
# longer needed, so the lists only shrink.
KNOWN_CYCLE_MEMBERS: set[str] = set()
KNOWN_LONG: set[str] = set()


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, package: str, modules: set[str]) -> set[str]:
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in modules:  # `from tts.x import y`: y may be a name, not a module
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "tts" and (m := resolve(a.name)):
                    found.add(m)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            if src.split(".")[0] == "tts":
                for a in node.names:  # `from tts.pkg import submodule` imports the submodule
                    m = resolve(f"{src}.{a.name}")
                    if m:
                        found.add(m)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = _imports(ast.parse(path.read_text()), package, modules) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(out)


def line_counts() -> dict[str, int]:
    return {module_name(p): len(p.read_text().splitlines()) for p in ROOT.rglob("*.py")}


def test_no_import_cycles() -> None:
    bad = [c for c in cycles(import_graph()) if not set(c) <= KNOWN_CYCLE_MEMBERS]
    assert not bad, "import cycles: " + "; ".join(" <-> ".join(c) for c in bad)


def test_no_long_modules() -> None:
    long = {m: n for m, n in line_counts().items() if n > MAX_LINES and m not in KNOWN_LONG}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_known_exceptions_are_still_needed() -> None:
    """A fixed exception leaves the list, so the list only shrinks."""
    in_cycles = {m for c in cycles(import_graph()) for m in c}
    assert KNOWN_CYCLE_MEMBERS <= in_cycles, f"no longer in a cycle: {KNOWN_CYCLE_MEMBERS - in_cycles}"
    counts = line_counts()
    assert all(counts.get(m, 0) > MAX_LINES for m in KNOWN_LONG), \
        f"no longer long: {[m for m in KNOWN_LONG if counts.get(m, 0) <= MAX_LINES]}"


# The root holds the core alone: contracts, records, errors, the seam and its builder, context,
# registry, spec, run, prompts, task files, traces, answers. A new root module needs a reason here:
# `redact` is the one redactor of secrets, which the errors and every record writer use.
CORE = {
    "__init__", "_lazy", "_litellm", "answers", "batching", "build", "context", "contracts", "errors", "prompts",
    "records", "redact", "registry", "run", "seam", "spec", "tasks", "tool_calls", "trace",
}
# Every feature area is a folder whose name says what it is.
FEATURE_AREAS = {
    "backends", "wrappers", "strategies", "selectors", "summarizers", "local", "code", "testing", "display",
    "experiments", "serve", "mcp", "swe", "cli",
}
# Extras the core must never import (at run time or lazily): the core works without them.
EXTRAS = ("tts.swe", "tts.serve", "tts.mcp", "tts.local", "tts.code", "tts.experiments", "tts.cli")
CORE_CONTRACTS = ("tts.contracts", "tts.records", "tts.errors", "tts.seam", "tts.registry")


def test_the_root_is_the_core_alone() -> None:
    root = {p.stem for p in ROOT.glob("*.py")}
    assert root == CORE, f"root modules beyond the core: {sorted(root - CORE)}; missing: {sorted(CORE - root)}"
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == FEATURE_AREAS, f"unexpected folders: {sorted(folders ^ FEATURE_AREAS)}"


def test_no_module_name_twice() -> None:
    """One `report`, one `backend`: a module's file name is unique in the package. The CLI's modules are
    named for their commands (`cli/run.py` is `tts run`), so they may repeat the module they drive."""
    seen: dict[str, list[str]] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if path.stem in ("__init__", "__main__") or rel.parts[0] == "cli":
            continue
        seen.setdefault(path.stem, []).append(str(rel))
    for path in (ROOT / "cli").rglob("*.py"):  # nor may two CLI modules share a name
        if path.stem not in ("__init__", "__main__"):
            seen.setdefault("cli:" + path.stem, []).append(str(path.relative_to(ROOT)))
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert not twice, f"module names used twice: {twice}"
    folder_and_module = {p.stem for p in ROOT.glob("*.py")} & {p.name for p in ROOT.iterdir() if p.is_dir()}
    assert not folder_and_module, f"a root module and a folder share a name: {folder_and_module}"


def test_the_core_contracts_import_no_extra() -> None:
    graph = import_graph()
    for module in CORE_CONTRACTS:
        bad = sorted(m for m in graph[module] if m.startswith(EXTRAS))
        assert not bad, f"{module} imports extras: {bad}"
    for path in ROOT.glob("*.py"):  # the TYPE_CHECKING imports too: a contract names no extra's type
        text = path.read_text()
        if module_name(path) in CORE_CONTRACTS:
            assert not any(f"from {e}" in text or f"import {e}" in text for e in EXTRAS), module_name(path)


if __name__ == "__main__":
    found = cycles(import_graph())
    print(f"{len(found)} import cycles")
    for c in found:
        print(f"  {len(c)} modules: {' '.join(c)}")
    counts = sorted(line_counts().items(), key=lambda kv: -kv[1])
    print(f"modules over {MAX_LINES} lines: {sum(1 for _, n in counts if n > MAX_LINES)}")
    for m, n in counts[:12]:
        print(f"  {n:5d} {m}")
