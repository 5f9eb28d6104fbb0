"""``sim/errors.py`` is below every layer: it imports nothing of wssim, and the wire layer
knows the namespace of each fault code prefix."""

from __future__ import annotations

import ast
from pathlib import Path

import sim.errors as errors
from sim.wire import ns, soap


def test_the_errors_module_imports_nothing_of_wssim():
    tree = ast.parse(Path(errors.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.split(".")[0] == "sim"]


def test_a_fault_code_is_written_in_its_specification_namespace():
    expected = {
        errors.InvalidSecurity: ns.WSSE,
        errors.InvalidRequest: ns.WST,
        errors.BadContextToken: ns.WSC,
    }
    for fault_class, namespace in expected.items():
        envelope = soap.read_envelope(soap.build_fault(fault_class("reason")))
        [code] = [el for el in envelope.body.iter() if el.text == fault_class("r").code]
        assert code.nsmap[fault_class.prefix] == namespace
    assert {cls.prefix for cls in errors.FAULTS_BY_CODE.values()} == set(soap.FAULT_NAMESPACES)
