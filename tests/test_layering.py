"""The import graph, computed from the code (every import, module-level or inside a function), holds
the layering: no cycles; data never imports model, callbacks or the entry points, and the network side
of model/ never imports data (only M2SEModule and its predict step join them); metrics import nothing of the project but
the answer grammar and label sets; tasks know neither data nor model."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "m2se"

# Layer -> prefixes of project modules it may not import.
FORBIDDEN = {
    "m2se.data": ("m2se.model", "m2se.callbacks", "m2se.evaluation", "m2se.cli"),
    "m2se.tasks": (
        "m2se.data",
        "m2se.model",
        "m2se.callbacks",
        "m2se.evaluation",
        "m2se.cli",
        "m2se.predictions",
    ),
    "m2se.sources": ("m2se.model", "m2se.callbacks", "m2se.evaluation", "m2se.cli"),
    "m2se.parsing": ("m2se.",),
    "m2se.templates": ("m2se.",),
    "m2se.files": ("m2se.",),
    # The network side knows nothing of records and media; only the LightningModule joins the two.
    "m2se.model": ("m2se.data", "m2se.callbacks", "m2se.evaluation", "m2se.cli"),
}
JOINS = {"m2se.model.module", "m2se.model.answer_lines"}  # answer_lines: M2SEModule's predict step
# The only project modules the metric primitives may import.
METRICS_MAY_IMPORT = ("m2se.metrics", "m2se.parsing", "m2se.dialogue.labels")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Project modules ``path`` imports anywhere in its code (``from m2se.x import y`` names m2se.x.y
    when that is a module, else m2se.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("m2se"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("m2se"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p) for p in FILES}
GRAPH = {module_name(p): imports_of(p) for p in FILES}


def test_the_graph_is_read():
    assert "m2se.tasks.catalog" in GRAPH["m2se.tasks"] and "m2se.parsing" in GRAPH["m2se.tasks.task"]
    assert len(GRAPH) > 60


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected part of the graph with more than one module (or a self-import)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1 or node in graph.get(node, ()):
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_below_them(layer):
    wrong = {
        (module, imported)
        for module, imported_set in GRAPH.items()
        if (module == layer or module.startswith(layer + ".")) and module not in JOINS
        for imported in imported_set
        if imported != module and any(imported.startswith(prefix) for prefix in FORBIDDEN[layer])
    }
    assert wrong == set()


def test_metrics_import_only_the_answer_grammar_and_label_sets():
    wrong = {
        (module, imported)
        for module, imported_set in GRAPH.items()
        if module.startswith("m2se.metrics")
        for imported in imported_set
        if not imported.startswith(METRICS_MAY_IMPORT)
    }
    assert wrong == set()


# A backbone family's two modules, and the modules that may know them by name: their own family's
# (InternVL's checkpoint conversion and original layout), the tiny builders. Everything else reaches a
# family through config (``model.backbone``, ``model.processor``) and the seam's protocols.
FAMILIES = {
    "internvl": ({"m2se.model.internvl", "m2se.data.internvl"}, ("m2se.model.convert", "m2se.model.export_original", "m2se.model.tiny")),
    "qwen_vl": ({"m2se.model.qwen_vl", "m2se.data.qwen_vl"}, ("m2se.model.tiny_qwen",)),
}  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_only_a_familys_own_modules_import_it(family):
    modules, own = FAMILIES[family]
    importers = {
        name
        for name, imported in GRAPH.items()
        if imported & modules and name not in modules and not name.startswith(own)
    }
    assert importers == set(), (
        f"{sorted(importers)} import {family}: reach it through model.backbone/processor"
    )
