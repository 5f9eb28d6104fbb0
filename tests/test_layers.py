"""Imports point one way: a layer imports only the layers below it (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"

#: package (second part of the module name) -> layer; a module imports only lower or equal ones
LAYERS = {
    "errors": 0,
    "_kernel": 1,
    "_fastcrypto": 1,
    "_fastshape": 1,
    "crypto": 1,
    "wire": 2,
    "protocol": 3,
    "engine": 4,
    "cli": 5,
    "report": 5,
    "results": 5,
    "testbed": 5,
    "sweep": 5,
}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "sim":
        return None
    if len(parts) < 2 or parts[1] == "__init__":  # the package: its version, the kernel check
        return LAYERS["_kernel"]
    return LAYERS.get(parts[1])


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


MODULES = sorted(p for p in SIM.rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SIM.parent)))
def test_a_module_imports_only_its_own_layer_and_those_below(path):
    module = ".".join(path.relative_to(SIM.parent).with_suffix("").parts)
    own = _layer(module)
    assert own is not None, f"{module}: a package missing from the layer table"
    upward = [name for name in _imports(path) if (_layer(name) or 0) > own]
    assert not upward, f"{module} (layer {own}) imports from above: {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    wire = tmp_path / "sim" / "wire"
    wire.mkdir(parents=True)
    (wire / "bad.py").write_text("from sim.engine.run import simulate\n")
    assert [n for n in _imports(wire / "bad.py") if _layer(n) > _layer("sim.wire.bad")]
