"""The package's shape: layers that point one way, no import cycle, a light ``import iotbench``.

Imports are read from the source (ast), function-level ones included: an import moved into a
function to dodge a cycle is still a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"iotbench": ROOT / "bench", "iotbench.codecs": ROOT / "codecs", "iotbench.transports": ROOT / "transports"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only: no import at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in ast.walk(child))
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's own modules that ``module`` imports (a name imported from a package counts as
    the submodule when there is one)."""
    out = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        out.update(name for name in names if name in known and name != module)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (a package importing its own submodules is not one)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue  # a package's __init__ re-exporting its own submodule
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_function_level_imports_included():
    graph = _graph()
    assert len(graph) > 80 and "iotbench.pipeline.runner" in graph, "the package's modules were not found"
    assert graph["iotbench.pipeline.runner"] >= {"iotbench.pipeline.sides", "iotbench.pipeline.deploy"}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_layers_point_one_way():
    """model <- pipeline <- studies/report <- cli; plugins (codecs, transports) never import the harness
    above the model; clients never import an emulator, servers never import a client transport."""
    graph = _graph()
    rules = {
        "iotbench.model.": ("iotbench.pipeline", "iotbench.studies", "iotbench.report", "iotbench.cli"),
        "iotbench.pipeline.": ("iotbench.studies", "iotbench.report", "iotbench.cli"),
        "iotbench.codecs": ("iotbench.pipeline", "iotbench.studies", "iotbench.report", "iotbench.cli"),
        "iotbench.transports": ("iotbench.pipeline", "iotbench.studies", "iotbench.report", "iotbench.cli"),
        "iotbench.transports.emulators": (
            "iotbench.transports.servers",
            "iotbench.transports.mqtt",
            "iotbench.transports.amqp",
            "iotbench.transports.http",
            "iotbench.transports.kafka",
            "iotbench.transports.coap",
            "iotbench.transports.eventhubs",
            "iotbench.transports.inprocess",
            "iotbench.transports.bridges",
        ),
    }
    client_rooms = (
        "iotbench.transports.mqtt",
        "iotbench.transports.amqp",
        "iotbench.transports.http",
        "iotbench.transports.kafka",
        "iotbench.transports.coap",
        "iotbench.transports.eventhubs",
        "iotbench.transports.inprocess",
        "iotbench.transports.event_stream",
        "iotbench.transports.tls",
        "iotbench.transports.bridges",  # built from clients: no emulator either
    )
    broken = []
    for module, imported in graph.items():
        for prefix, forbidden in rules.items():
            if module.startswith(prefix):
                broken += [f"{module} -> {i}" for i in imported if i.startswith(forbidden)]
        if module.startswith(client_rooms):
            broken += [f"{module} -> {i}" for i in imported if i.startswith("iotbench.transports.emulators")]
    assert not broken, broken


def test_import_iotbench_loads_no_server_emulator_or_study():
    code = "import sys, iotbench; print('\\n'.join(m for m in sys.modules if m.startswith('iotbench')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "iotbench.pipeline.runner" in loaded  # the public API is there
    heavy = [
        m
        for m in loaded
        if m.startswith(
            ("iotbench.transports.servers", "iotbench.transports.emulators", "iotbench.studies", "iotbench.report")
        )
    ]
    assert not heavy, heavy
