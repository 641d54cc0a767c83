"""The package's layers import downwards only, and no two packages of one layer import each other.

    core  <-  envs, vector  <-  rollout, recording, datasets  <-  skills, world_models, policies
          <-  bridges, distributed  <-  cli

Every `import` and `from ... import` of an `embodylab` module counts, the lazy ones inside functions too
(a lazy upward import is still an upward dependency). The README's "Layout" section says the same.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import embodylab

PACKAGE_ROOT = Path(embodylab.__file__).parent
LAYERS = {
    "core": 0,
    "envs": 1,
    "vector": 1,
    "rollout": 2,
    "recording": 2,
    "datasets": 2,
    "skills": 3,
    "world_models": 3,
    "policies": 3,
    "bridges": 4,
    "distributed": 4,
    "cli": 5,
}
ROOT_MAY_IMPORT = 1
"""`embodylab/__init__.py` registers the env ids and exposes `make_vec`: it may import layers 0 and 1."""


def module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = PACKAGE_ROOT) -> set[str]:
    """The `embodylab` modules `path` imports, resolving relative imports."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
    return {m for m in found if m == "embodylab" or m.startswith("embodylab.")}


def layer_of(module: str) -> str | None:
    """The layer name of an `embodylab.<layer>...` module; None for the root package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    return {module_name(p, root): imported_modules(p, root) for p in sorted(root.rglob("*.py"))}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Upward imports, imports of an unknown layer, and cycles between packages of one layer."""
    problems = []
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        source_layer = layer_of(source)
        if source_layer is not None and source_layer not in LAYERS:
            problems.append(f"{source}: its package {source_layer!r} has no layer (add it to LAYERS)")
            continue
        source_rank = ROOT_MAY_IMPORT if source_layer is None else LAYERS[source_layer]
        for target in sorted(targets):
            target_layer = layer_of(target)
            if target_layer is None:
                problems.append(f"{source} imports the root package {target}; import the module itself")
                continue
            if target_layer not in LAYERS:
                continue  # reported as a source when it is a module of the package
            if LAYERS[target_layer] > source_rank:
                problems.append(
                    f"{source} (layer {source_layer or 'embodylab'}, rank {source_rank}) imports {target} "
                    f"(layer {target_layer}, rank {LAYERS[target_layer]}): an upward import"
                )
            elif source_layer is not None and target_layer != source_layer:
                edges[source_layer].add(target_layer)
    reach = {a: _reachable(a, edges) for a in edges}
    for a in sorted(reach):
        for b in sorted(reach[a]):
            if a < b and a in reach.get(b, ()):
                problems.append(f"packages {a} and {b} (one layer) import each other: a circular import")
    return problems


def _reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    """The packages `start` imports, directly or through others."""
    seen, todo = set(), list(edges.get(start, ()))
    while todo:
        package = todo.pop()
        if package not in seen:
            seen.add(package)
            todo.extend(edges.get(package, ()))
    return seen


def test_every_module_imports_downwards_only():
    problems = layer_violations(import_graph())
    assert not problems, "\n".join(problems)


def test_no_library_module_imports_the_cli():
    importers = [
        m for m, targets in import_graph().items() if any(t.startswith("embodylab.cli") for t in targets)
    ]
    assert all(m.startswith("embodylab.cli") for m in importers), importers


def test_the_checker_catches_an_upward_and_a_circular_import(tmp_path):
    fake = tmp_path / "embodylab"
    (fake / "core").mkdir(parents=True)
    (fake / "skills").mkdir()
    (fake / "policies").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "core" / "scene.py").write_text("def f():\n    from embodylab.policies import rl\n")
    (fake / "skills" / "__init__.py").write_text("from embodylab.policies.rl import train\n")
    (fake / "policies" / "__init__.py").write_text("")
    (fake / "policies" / "rl.py").write_text("from ..skills import experts\n")
    problems = layer_violations(import_graph(fake))
    assert any("embodylab.core.scene" in p and "upward" in p for p in problems), problems
    assert any("policies and skills" in p and "circular" in p for p in problems), problems
