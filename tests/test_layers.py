"""The architecture, as the imports show it: layers that only import downwards, no cycle.

docs/architecture.md draws the same layers. Every import counts, at module level or inside
a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A unit is a folder of chaos/ or fleet/ (or a module of chaos/'s root); a
# unit may import only units listed before it.
LAYERS = [
    "fleet.procs",  # process helpers: lifelines, reaping, bounded waits
    "fleet.protos",  # generated modules of the built-in Greeter and Control service
    "fleet",  # the system under test: backends, PKI, DNS, the controller
    "chaos.outcomes",  # pass / fail / inconclusive / not judged, exit codes
    "chaos.rundir",  # run directories and the host facts each run records
    "chaos.history",  # every RPC and fault on one clock
    "chaos.observe",  # what is seen of the client and the machine beside the history
    "chaos.http2",  # the HTTP/2 fault point: frames relayed through h2, faults on the wire
    "chaos.toxiproxy_server",  # the embedded Toxiproxy and its control client
    "chaos.checks",  # properties of a history, each a Verdict
    "chaos.faults",  # the faults, each recorded in the history
    "chaos.profiles",  # client profiles: channel options and service config
    "chaos.load",  # the load generator
    "chaos.clients",  # the client under test in another process: driver protocol, drivers
    "chaos.verdicts",  # requirements (bounds), the judge, advice
    "chaos.targets",  # the service under test: built-in or a target file
    "chaos.scenario",  # one scenario: fleet, client, load, faults, checks
    "chaos.run",  # the pytest plugin around scenarios
    "chaos.gate",  # the gate and the views of its run directories
    "chaos.audit",  # the audit: a profile's settings, each removed, run through the gate
    "chaos.fuzz",  # the fuzzer
    "chaos.fleet_up",  # `grpc-chaos fleet up`: a fleet behind Toxiproxy, for tools
    "chaos.__main__",  # the grpc-chaos command
    "chaos",  # the public face (lazy names only)
]
# The one upward import, kept for compatibility: `python -m fleet up` hands over to
# `grpc-chaos fleet up`.
ALLOWED_UPWARD = {("fleet/__main__.py", "chaos.fleet_up")}
ROOT_MODULE_LIMIT = 6  # modules in chaos/'s root besides __init__ and __main__


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in ("chaos", "fleet"):
        return None
    if len(parts) == 1:
        return parts[0]
    if parts[0] == "fleet":
        return f"fleet.{parts[1]}" if parts[1] in ("procs", "protos") else "fleet"
    return f"chaos.{parts[1]}"


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, ast.If)
                and isinstance(child.test, ast.Name)
                and child.test.id == "TYPE_CHECKING"
            ):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports(path: Path) -> set[str]:
    """The project modules ``path`` imports: ``from chaos.profiles import lb_policies`` is
    chaos.profiles.lb_policies, ``from chaos.checks import Verdict`` is chaos.checks."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if _is_module(submodule) else node.module)
    return {name for name in found if _unit(name)}


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _sources() -> list[Path]:
    return sorted(p for top in ("chaos", "fleet") for p in (ROOT / top).rglob("*.py"))


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _sources():
        graph[_module_name(path)] |= _imports(path)
    return graph


def test_every_unit_is_placed_in_a_layer():
    units = {_unit(_module_name(path)) for path in _sources()}
    assert units - set(LAYERS) == set(), "add the new folder to LAYERS (and the docs)"


def test_no_unit_imports_a_higher_layer():
    rank = {unit: index for index, unit in enumerate(LAYERS)}
    upward = []
    for path in _sources():
        importer = _unit(_module_name(path))
        for imported in _imports(path):
            target = _unit(imported)
            if target in rank and target != importer and rank[target] > rank[importer]:
                where = str(path.relative_to(ROOT))
                if (where, imported) not in ALLOWED_UPWARD:
                    upward.append(f"{where} ({importer}) imports {imported} ({target})")
    assert upward == []


def test_no_import_cycle_between_modules():
    graph = _graph()
    modules = set(graph)

    def resolve(name: str) -> str | None:
        # `from chaos.checks import Verdict` names a module's attribute: its module.
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: {t for t in map(resolve, graph[m]) if t and t != m} for m in modules}
    # Tarjan's strongly connected components, iterative (the graph has ~180 modules).
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    allowed = [["chaos.fleet_up", "fleet.__main__"]]
    assert [cycle for cycle in cycles if cycle not in allowed] == []


def test_the_chaos_root_holds_the_public_face_and_few_modules():
    modules = sorted(
        p.name
        for p in (ROOT / "chaos").glob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    )
    assert len(modules) <= ROOT_MODULE_LIMIT, modules
