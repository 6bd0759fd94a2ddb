"""The layering of ARCHITECTURE.md, checked against the real imports of every module.

The layer table of ARCHITECTURE.md (between ``<!-- layers:begin -->`` and
``<!-- layers:end -->``) is parsed as data: one row per package or top-level module with
its layer number and its modules. Every module of ``prism_stats`` is parsed with ``ast``
and all its imports are collected -- at module top and inside functions alike; only
imports under ``if TYPE_CHECKING:`` are left out, because they never run. The check fails
on

* an import circle between modules (within a package too);
* an import from a lower layer up to a higher one, or between two different entries of
  the same layer (entries of one layer are independent of each other);
* a module that the table does not list, or a listed module that does not exist (unless
  the entry or module is marked *planned*; a planned one that exists must lose the mark).

The checker is also fed synthetic module graphs, so that it is known to be able to fail.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "prism_stats"
ARCHITECTURE = ROOT / "ARCHITECTURE.md"

#: No module of the package may be longer than this (lines).
MAX_LINES = 600
#: Modules allowed to exceed MAX_LINES, each with the reason. Empty: none needs to.
LONG_MODULES: dict[str, str] = {}


# --- the table ------------------------------------------------------------------------------


@dataclass
class Entry:
    """One row of the layer table: a package (with its modules) or a top-level module."""

    name: str
    layer: int
    planned: bool = False
    modules: dict[str, bool] = field(default_factory=dict)  # module name -> planned
    job: str = ""


_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|(.*)\|(.*)\|\s*$")
_NAME = re.compile(r"`([A-Za-z0-9_.]+)`(\s*\(planned\))?")


def parse_layers(text: str) -> dict[str, Entry]:
    """The entries of the layer table in *text* (an ARCHITECTURE.md), by name."""
    try:
        block = text.split("<!-- layers:begin -->", 1)[1].split("<!-- layers:end -->", 1)[0]
    except IndexError:
        raise AssertionError("ARCHITECTURE.md has no <!-- layers:begin/end --> table") from None
    entries: dict[str, Entry] = {}
    for line in block.splitlines():
        m = _ROW.match(line.strip())
        if not m:
            continue
        layer, name_cell, modules_cell, job = m.groups()
        names = _NAME.findall(name_cell)
        assert len(names) == 1, f"layer table row needs one `name`: {line!r}"
        name, planned = names[0][0], bool(names[0][1])
        modules = {mod: bool(p) for mod, p in _NAME.findall(modules_cell)}
        assert name not in entries, f"{name} appears twice in the layer table"
        entries[name] = Entry(name, int(layer), planned, modules, job.strip())
    assert entries, "the layer table is empty"
    return entries


# --- the imports ----------------------------------------------------------------------------


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            for child in node.body:
                for sub in ast.walk(child):
                    out.add(id(sub))
    return out


def imports_of(source: str, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``prism_stats`` modules that the module *name* imports, anywhere in its code.

    ``from X import y`` counts as an import of ``X.y`` when that is a module (*known*),
    else of ``X``.
    """
    tree = ast.parse(source)
    skip = _type_checking_nodes(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        else:
            continue
        for t in targets:
            if t == "prism_stats" or t.startswith("prism_stats."):
                # `import prism_stats.a.b` names a module; keep the longest known prefix
                while t not in known and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t != name:
                    out.add(t)
    return out


def package_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, Path]]:
    """Every module of the package and the package modules it imports."""
    files = {module_name(p): p for p in sorted(package.rglob("*.py"))}
    known = set(files)
    graph = {
        name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }
    return graph, files


# --- the checker ----------------------------------------------------------------------------


def owner(module: str, entries: dict[str, Entry]) -> Entry | None:
    """The table entry a module belongs to (the longest entry name that contains it)."""
    best = None
    for name, entry in entries.items():
        if (module == name or module.startswith(name + ".")) and (
            best is None or len(name) > len(best.name)
        ):
            best = entry
    return best


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path ``a -> ... -> a``) per strongly connected component of size > 1."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's algorithm (recursive: the graph is small)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for comp in components:
        members = set(comp)
        path, node = [comp[0]], comp[0]
        while True:  # walk inside the component until a node repeats
            node = sorted(w for w in graph[node] if w in members)[0]
            if node in path:
                cycles.append(path[path.index(node):] + [node])
                break
            path.append(node)
    return cycles


def layering_problems(graph: dict[str, set[str]], entries: dict[str, Entry]) -> list[str]:
    """Everything in *graph* (module -> imported modules) that contradicts *entries*."""
    problems = []
    modules = set(graph)
    for mod in sorted(modules):
        entry = owner(mod, entries)
        if entry is None:
            problems.append(f"{mod}: not in the layer table of ARCHITECTURE.md")
            continue
        if entry.name == mod:
            if entry.planned:
                problems.append(f"{mod}: exists but is marked planned in ARCHITECTURE.md")
            continue
        short = mod[len(entry.name) + 1:]
        if short not in entry.modules:
            problems.append(f"{mod}: not listed among the modules of {entry.name} in ARCHITECTURE.md")
        elif entry.modules[short] or entry.planned:
            problems.append(f"{mod}: exists but is marked planned in ARCHITECTURE.md")
    for entry in entries.values():
        if not entry.planned and entry.name not in modules:
            problems.append(f"{entry.name}: listed in ARCHITECTURE.md but there is no such module")
        for short, planned in entry.modules.items():
            full = f"{entry.name}.{short}"
            if not (planned or entry.planned) and full not in modules:
                problems.append(f"{full}: listed in ARCHITECTURE.md but there is no such module")
    for mod in sorted(modules):
        source = owner(mod, entries)
        for target in sorted(graph[mod]):
            dest = owner(target, entries)
            if source is None or dest is None or source is dest:
                continue
            if dest.layer > source.layer:
                problems.append(f"{mod} (layer {source.layer}) imports {target} from the higher "
                                f"layer {dest.layer}")
            elif dest.layer == source.layer:
                problems.append(f"{mod} imports {target}: both are in layer {source.layer}, whose "
                                "entries must not depend on each other")
    for cycle in find_cycles(graph):
        problems.append("import circle: " + " -> ".join(cycle))
    return problems


# --- the package against ARCHITECTURE.md ----------------------------------------------------


@pytest.fixture(scope="module")
def entries() -> dict[str, Entry]:
    return parse_layers(ARCHITECTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return package_graph()[0]


def test_the_package_follows_the_layers_of_architecture_md(entries, graph):
    problems = layering_problems(graph, entries)
    assert not problems, "\n".join(problems)


def test_the_table_has_the_planned_packages(entries):
    for name in ("prism_stats.rankings", "prism_stats.topics"):
        assert name in entries
    assert "scenarios" in entries["prism_stats.synth"].modules
    # planned analyses sit beside welfare, above the model runs and MRP they consume
    for name in ("prism_stats.rankings", "prism_stats.topics"):
        assert entries[name].layer == entries["prism_stats.welfare"].layer


def test_the_graph_sees_function_local_imports_and_not_type_checking_ones():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import schema\n"
        "if TYPE_CHECKING:\n"
        "    from ..model import Run\n"
        "def f():\n"
        "    from ..report.tables import welfare_table\n"
        "    import prism_stats.weights.raking\n"
    )
    known = {"prism_stats.data.schema", "prism_stats.data.x", "prism_stats.model",
             "prism_stats.report.tables", "prism_stats.weights", "prism_stats.weights.raking"}
    assert imports_of(source, "prism_stats.data.x", False, known) == {
        "prism_stats.data.schema", "prism_stats.report.tables", "prism_stats.weights.raking"}


def test_no_module_is_longer_than_the_limit():
    too_long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        name = module_name(path)
        if n > MAX_LINES and name not in LONG_MODULES:
            too_long[name] = n
    assert not too_long, f"modules over {MAX_LINES} lines (split them): {too_long}"
    stale = [m for m in LONG_MODULES if m in package_graph()[1]
             and len(package_graph()[1][m].read_text().splitlines()) <= MAX_LINES]
    assert not stale, f"allow-listed but short enough now: {stale}"


def test_every_module_states_its_job_in_its_first_docstring_line():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        first = doc.strip().splitlines()[0] if doc else ""
        if not first or first[-1] not in ".?!":
            missing.append(f"{module_name(path)}: {first!r}")
    assert not missing, "first docstring line must be one complete sentence:\n" + "\n".join(missing)


# --- the checker can fail --------------------------------------------------------------------

SYNTHETIC_TABLE = """
<!-- layers:begin -->
| layer | name | modules | job |
|---|---|---|---|
| 0 | `pkg.base` | – | helpers |
| 1 | `pkg.data` | `io`, `tidy` | read |
| 2 | `pkg.model` | `fit`, `plots` (planned) | fit |
| 3 | `pkg.report` | `tables` | write |
| 3 | `pkg.extra` (planned) | – | later |
<!-- layers:end -->
"""

#: A graph that follows SYNTHETIC_TABLE.
CLEAN = {
    "pkg.base": set(),
    "pkg.data": {"pkg.data.tidy"},
    "pkg.data.io": {"pkg.base"},
    "pkg.data.tidy": {"pkg.data.io"},
    "pkg.model": {"pkg.model.fit"},
    "pkg.model.fit": {"pkg.data", "pkg.base"},
    "pkg.report": {"pkg.report.tables"},
    "pkg.report.tables": {"pkg.model.fit", "pkg.data.tidy"},
}


def _with(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out = {k: set(v) for k, v in CLEAN.items()}
    for k, v in edges.items():
        out.setdefault(k, set()).update(v)
    return out


def test_the_checker_passes_a_graph_that_follows_the_table():
    assert layering_problems(CLEAN, parse_layers(SYNTHETIC_TABLE)) == []


def test_the_checker_fails_on_a_deliberate_circle():
    circle = _with({"pkg.data.io": {"pkg.data.tidy"}})  # tidy -> io -> tidy, inside a package
    problems = layering_problems(circle, parse_layers(SYNTHETIC_TABLE))
    assert problems == ["import circle: pkg.data.io -> pkg.data.tidy -> pkg.data.io"]


def test_the_checker_fails_on_a_deliberate_back_up_import():
    back_up = _with({"pkg.data.tidy": {"pkg.report.tables"}})  # data (1) -> report (3)
    problems = layering_problems(back_up, parse_layers(SYNTHETIC_TABLE))
    assert any("pkg.data.tidy (layer 1) imports pkg.report.tables from the higher layer 3" in p
               for p in problems), problems
    # ... which also closes a circle through the report
    assert any(p.startswith("import circle:") for p in problems), problems


def test_the_checker_fails_on_an_import_between_entries_of_one_layer():
    sideways = _with({"pkg.report.tables": {"pkg.extra"}, "pkg.extra": set()})
    problems = layering_problems(sideways, parse_layers(SYNTHETIC_TABLE))
    assert any("both are in layer 3" in p for p in problems), problems


def test_the_checker_fails_on_a_module_missing_from_the_table_and_on_stale_entries():
    unlisted = _with({"pkg.data.cache": set(), "pkg.other": set()})
    problems = layering_problems(unlisted, parse_layers(SYNTHETIC_TABLE))
    assert "pkg.data.cache: not listed among the modules of pkg.data in ARCHITECTURE.md" in problems
    assert "pkg.other: not in the layer table of ARCHITECTURE.md" in problems
    gone = {k: v for k, v in CLEAN.items() if k != "pkg.data.io"}
    gone["pkg.data.tidy"] = set()
    problems = layering_problems(gone, parse_layers(SYNTHETIC_TABLE))
    assert problems == ["pkg.data.io: listed in ARCHITECTURE.md but there is no such module"]


def test_planned_entries_may_be_missing_but_not_present_and_still_planned():
    # pkg.model.plots and pkg.extra are planned and absent in CLEAN: accepted (first test);
    built = _with({"pkg.model.plots": {"pkg.model.fit"}, "pkg.extra": {"pkg.model"}})
    problems = layering_problems(built, parse_layers(SYNTHETIC_TABLE))
    assert sorted(problems) == [
        "pkg.extra: exists but is marked planned in ARCHITECTURE.md",
        "pkg.model.plots: exists but is marked planned in ARCHITECTURE.md",
    ]
