"""The package's layers: no module imports a layer above its own (checked from the source).

    0 core        errors, io, labels, config, device, precision, text
    1 building    nn, losses, metrics, viz, brush
    2 data        data
    3 runs        stages, checkpoint, run, pretrained
    4 train       train
    5 measuring   evaluation, interop (but interop.cli)
    6 app         editing, runtime, inspection, widgets, notebook, diagrams, inspect_training, manifold, photo
    7 cli         __main__, pipeline, summary, bench, gpu_check, interop.cli

Every import counts, also those inside functions: a lazy import hides a cycle, it does not remove it.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "maskgan"

LAYERS = {
    "maskgan": 0, "maskgan.errors": 0, "maskgan.io": 0, "maskgan.labels": 0, "maskgan.config": 0,
    "maskgan.device": 0, "maskgan.precision": 0, "maskgan.text": 0,
    "maskgan.nn": 1, "maskgan.losses": 1, "maskgan.metrics": 1, "maskgan.viz": 1, "maskgan.brush": 1,
    "maskgan.composite": 1, "maskgan.stats": 1,
    "maskgan.data": 2,
    "maskgan.stages": 3, "maskgan.checkpoint": 3, "maskgan.run": 3, "maskgan.pretrained": 3,
    "maskgan.train": 4,
    "maskgan.evaluation": 5, "maskgan.interop": 5,
    "maskgan.editing": 6, "maskgan.runtime": 6, "maskgan.inspection": 6, "maskgan.widgets": 6, "maskgan.notebook": 6,
    "maskgan.diagrams": 6, "maskgan.inspect_training": 6, "maskgan.manifold": 6, "maskgan.photo": 6,
    "maskgan.__main__": 7, "maskgan.pipeline": 7, "maskgan.summary": 7, "maskgan.bench": 7, "maskgan.photo_bench": 7,
    "maskgan.gpu_check": 7,
    "maskgan.interop.cli": 7,
}


def layer_of(module: str) -> int:
    """The layer of a module: its own entry, else its nearest listed parent package's."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in LAYERS:
            return LAYERS[name]
    raise KeyError(module)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import of the kit's own modules in a file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "maskgan"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "maskgan":
                continue
            # "from . import x" / "from .pkg import mod": the imported names may be modules
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((node.lineno, sub if _is_module(sub) else target))
    return found


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / Path(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def upward_imports(files) -> list[str]:
    problems = []
    for path in files:
        me = module_name(path)
        for line, target in imports_of(path):
            if layer_of(target) > layer_of(me):
                problems.append(f"{me} (layer {layer_of(me)}) imports {target} (layer {layer_of(target)}) "
                                f"at {path.name}:{line}")
    return problems


def test_every_module_of_the_kit_has_a_layer():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))  # raises KeyError for a module outside the map


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(sorted(PACKAGE.rglob("*.py"))) == []


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    fake = PACKAGE / "nn" / "_upward_probe.py"
    try:
        fake.write_text("def f():\n    from ..train import train\n")
        problems = upward_imports([fake])
    finally:
        fake.unlink()
    assert problems == ["maskgan.nn._upward_probe (layer 1) imports maskgan.train (layer 4) at _upward_probe.py:2"]


@pytest.mark.parametrize("module", ["maskgan.train.loop", "maskgan.config", "maskgan.train.parser"])
def test_former_cycles_are_gone(module):
    path = PACKAGE.parent / Path(*module.split(".")).with_suffix(".py")
    targets = {t for _, t in imports_of(path)}
    assert "maskgan.summary" not in targets and not any(t.startswith("maskgan.evaluation") for t in targets)
    assert layer_of(module) >= max((layer_of(t) for t in targets), default=0)
