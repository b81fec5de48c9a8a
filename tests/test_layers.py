"""The package's imports point one way (docs/architecture.md): a module may import its own layer or
a lower one, never a higher one. Read from the source with ``ast``, lazy imports inside functions
included, so an upward import cannot hide in a function body."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

# lowest first; a module's layer is named by the first part of its dotted name below diqa_edge
LAYERS: list[tuple[str, ...]] = [
    ("errors", "cachedir", "logs", "commands", "fileio", "contract", "identity"),
    ("sdk",),
    ("models",),
    ("eval",),
    ("data", "training", "export"),
    ("bench", "bench_12mp", "bench_fuzz", "bench_phone", "ablation", "web", "cli", "__main__"),
]


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if head in names:
            return rank
    raise AssertionError(f"diqa_edge.{module} belongs to no layer: add it to LAYERS and docs/architecture.md")


def imports_of(path: Path, package: Path) -> set[str]:
    """The package modules ``path`` imports, dotted below the package root (``export.cli``)."""
    parts = path.relative_to(package).with_suffix("").parts
    here = parts[:-1]                      # the package (folder) the module sits in
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = ".".join(base + tuple(filter(None, (node.module or "").split("."))))
            elif (node.module or "").startswith(package.name):
                target = node.module.removeprefix(package.name).lstrip(".")
            else:
                continue
            # `from .. import x` names modules; `from ..a import b` names module a
            found.update([target] if target else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix(package.name + ".") for a in node.names
                         if a.name.startswith(package.name + "."))
    return found


def upward_imports(package: Path) -> list[str]:
    upward = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package).with_suffix("").parts)
        upward += [f"{module} -> {target}" for target in sorted(imports_of(path, package))
                   if layer_of(target) > layer_of(module)]
    return upward


def missing_modules(package: Path) -> list[str]:
    """Package imports that name no module: a move that left an old path behind (lazy imports only
    fail when their function runs)."""
    missing = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package).with_suffix("").parts)
        for target in sorted(imports_of(path, package)):
            where = package.joinpath(*target.split("."))
            if not (where.with_suffix(".py").exists() or (where / "__init__.py").exists()):
                missing.append(f"{module} -> {target}")
    return missing


def test_every_package_import_names_a_module():
    missing = missing_modules(ROOT / "diqa_edge")
    assert not missing, "imports of modules that do not exist (diqa_edge.):\n" + "\n".join(missing)


def test_no_module_imports_a_higher_layer():
    upward = upward_imports(ROOT / "diqa_edge")
    assert not upward, "imports that run upward (diqa_edge.):\n" + "\n".join(upward)


def test_the_walk_finds_an_upward_import_hidden_in_a_function(tmp_path):
    package = tmp_path / "diqa_edge"
    (package / "sdk").mkdir(parents=True)
    (package / "sdk" / "scorer.py").write_text("from ..contract import Contract\n"
                                               "def f():\n    from ..training.trainer import train\n")
    (package / "eval").mkdir()
    (package / "eval" / "gate.py").write_text("import diqa_edge.export.cli\nfrom . import metrics\n")
    (package / "eval" / "__init__.py").write_text("")
    (package / "eval" / "metrics.py").write_text("")
    assert upward_imports(package) == ["eval.gate -> export.cli", "sdk.scorer -> training.trainer"]
    assert missing_modules(package) == ["eval.gate -> export.cli", "sdk.scorer -> contract",
                                        "sdk.scorer -> training.trainer"]
