"""The package imports in one direction: no cycle, and no core module imports a layer above it.

The import graph is read from the source with ``ast`` (nothing is imported, so the test takes
milliseconds): every ``import`` / ``from ... import`` anywhere in a module counts, at module level
or inside a function, relative ones resolved; only imports under ``if TYPE_CHECKING:`` are left
out (they never run). ``from albertkit.x import y`` is an edge to ``albertkit.x.y`` when that is a
module, else to ``albertkit.x``.

The layers (docs/architecture.md), lowest first; a module may import its own layer or lower ones:

    hub, layout, utils, cpu -> config -> checkpoint, quantization -> modeling (and albertkit.keras)
    -> fused, fast, optim, batching, distributed -> tokenization, formats -> pipelines, training -> finetuning,
    pretraining, model_card -> serving, the command modules and the CLI

(hub sits below config: ``AlbertConfig.from_pretrained`` resolves hub names, and hub imports nothing.)
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "albertkit"

# Rank of each core module or package (a package's rank covers its submodules); lower ranks may not
# import higher ones.
LAYERS: dict[str, int] = {
    "albertkit.hub": 0,
    "albertkit.layout": 0,
    "albertkit.utils": 0,
    "albertkit.cpu": 0,
    "albertkit.config": 1,
    "albertkit.checkpoint": 2,
    "albertkit.quantization": 2,
    "albertkit.modeling": 3,
    "albertkit.keras": 3,  # the same models in Keras, over the same layout facts
    "albertkit.fused": 4,
    "albertkit.fast": 4,
    "albertkit.optim": 4,
    "albertkit.batching": 4,  # pad + predict in batches: used by pipelines, training, fine-tuning, pretraining
    "albertkit.distributed": 4,
    "albertkit.tokenization": 5,
    "albertkit.formats": 5,  # outside formats -> config + weights + tokenizer
    "albertkit.pipelines": 6,
    "albertkit.training": 6,
    "albertkit.finetuning": 7,
    "albertkit.pretraining": 7,
    "albertkit.model_card": 7,
    "albertkit.serving": 8,
    "albertkit.cli": 8,
    "albertkit.export_commands": 8,
}
COMMANDS = 8  # any module named *commands is a front end: the top layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imported_modules(source: str, name: str, known: set[str], *, is_package: bool = False) -> set[str]:
    """The albertkit modules that module ``name`` (text ``source``) imports anywhere (TYPE_CHECKING blocks aside)."""
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(source, name)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known and m != name}


@functools.lru_cache(maxsize=1)  # read once for all the tests here (about 0.3 s on a quiet core)
def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in files}
    return {
        module_name(p): imported_modules(p.read_text(encoding="utf-8"), module_name(p), known, is_package=p.name == "__init__.py")
        for p in files
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = dfs(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def layer_of(module: str) -> int | None:
    if module.rpartition(".")[2].endswith("commands"):
        return COMMANDS
    while module:
        if module in LAYERS:
            return LAYERS[module]
        module = module.rpartition(".")[0]
    return None


def test_graph_reader_sees_function_level_and_relative_imports() -> None:
    # The reader itself: an import hidden in a function body, or spelled relatively, is still an edge.
    graph = import_graph()
    assert "albertkit.config" in graph and len(graph) > 50
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from albertkit import fast\n"
        "def f():\n    from albertkit.modeling import AlbertModel\n    from . import base\n    from ..hub import resolve_file\n"
    )
    known = set(graph)
    found = imported_modules(source, "albertkit.pipelines.x", known)
    assert found == {"albertkit.modeling", "albertkit.pipelines.base", "albertkit.hub"}
    # the same text as a package's __init__: "." is the package itself
    found = imported_modules(source, "albertkit.pipelines", known, is_package=True)
    assert found == {"albertkit.modeling", "albertkit.pipelines.base", "albertkit.hub"}


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle inside albertkit: " + " -> ".join(cycle or [])


def test_core_modules_import_only_their_layer_or_below() -> None:
    wrong = []
    for module, targets in import_graph().items():
        own = layer_of(module)
        if own is None:
            continue
        for target in sorted(targets):
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                wrong.append(f"{module} (layer {own}) imports {target} (layer {theirs})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_checkpoint_does_not_know_the_model_classes() -> None:
    # Named in issue 13: loading adapts keys through torch-free layout facts, never through modeling.
    assert "albertkit.modeling" not in import_graph()["albertkit.checkpoint"]
    assert "albertkit.fast" not in import_graph()["albertkit.checkpoint"]


def test_every_module_has_a_layer() -> None:
    # A new module must be placed in LAYERS (or be a *commands front end): an unranked module would
    # escape the layer check above. The package root and __main__ re-export / run the CLI.
    unranked = [m for m in import_graph() if layer_of(m) is None and m not in ("albertkit", "albertkit.__main__")]
    assert not unranked, f"add these to LAYERS in tests/test_import_layers.py: {unranked}"
