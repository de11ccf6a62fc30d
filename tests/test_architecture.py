"""The shape of the package: veil's modules import only their own layer and
the layers below it, and no import circle exists, not even through an
import made inside a function. A new module must be given its layer here.

Read from the source with `ast`, never by importing it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import veil
import veil.errors

PACKAGE = Path(veil.__file__).parent

# Lowest first. A module matches the longest prefix listed (a package name
# stands for every module in it).
LAYERS: list[tuple[str, ...]] = [
    ("veil.errors", "veil.options", "veil.detections", "veil.report", "veil.background", "veil.changes"),
    ("veil.netns", "veil.media", "veil.plan", "veil.detection", "veil.detection.models", "veil.jobs"),
    ("veil.detection.engine", "veil.detection.quantize", "veil.detection.detect"),
    ("veil.detection.retinaface", "veil.detection.gpu", "veil.detection.schedule"),
    ("veil.detection.second_look", "veil.text", "veil.track", "veil.masks", "veil.recognition"),
    ("veil.integrity", "veil.detection.choose"),
    ("veil.detection.devices", "veil.plan.make"),
    ("veil.verify_text",),
    ("veil.verify",),
    ("veil.pipeline", "veil.pipeline.output"),
    ("veil.pipeline.photo",),
    ("veil.pipeline.clip", "veil.pipeline.render"),
    ("veil.pipeline.parts",),
    ("veil.pipeline.anonymizer",),
    ("veil.batch", "veil.batch.journal", "veil.batch.workers"),
    ("veil.batch.raypool",),
    ("veil.batch.run",),
    ("veil.review",),
    ("veil.arguments", "veil.terminal"),
    ("veil.cli",),
    ("veil", "veil.__main__"),
]


@cache
def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The veil modules `name` imports anywhere in it (at the top, in a
    function, or for type checking only)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*above, base] if base else above)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            # `from veil.x import y`: the module y if it is one, else veil.x itself
            found |= submodules if len(submodules) == len(node.names) else {base, *submodules}
    return {target for target in found & known if target != name}


@cache
def graph() -> dict[str, set[str]]:
    names = module_names()
    return {name: imports(name, path, set(names)) for name, path in names.items()}


def layer(name: str) -> int:
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if name == prefix or name.startswith(prefix + ".")
    ]
    if not matches:
        raise LookupError(name)
    return max(matches)[1]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `edges`: its strongly connected components of
    more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
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
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle() -> None:
    assert cycles(graph()) == []


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for name in module_names():
        try:
            layer(name)
        except LookupError:
            unplaced.append(name)
    assert not unplaced, "give these modules a layer in LAYERS: " + ", ".join(unplaced)


@pytest.mark.parametrize("name", sorted(module_names()))
def test_imports_go_down(name: str) -> None:
    upward = [target for target in sorted(graph()[name]) if layer(target) > layer(name)]
    assert not upward, f"{name} (layer {layer(name)}) imports from above: {upward}"


def test_every_exception_lives_in_errors_and_is_a_veil_error() -> None:
    """One tree (`veil.errors`): a caller catches VeilError and has every
    failure veil raises on purpose."""
    tree = ast.parse((PACKAGE / "errors.py").read_text())
    ours = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    assert all(issubclass(getattr(veil.errors, name), veil.errors.VeilError) for name in ours)
    elsewhere = []
    for name, path in module_names().items():
        if name == "veil.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {
                base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases
            }
            if bases & (ours | {"Exception", "BaseException"}) or any(b.endswith("Error") for b in bases):
                elsewhere.append(f"{name}.{node.name}")
    assert not elsewhere, f"exceptions outside veil/errors.py: {elsewhere}"
