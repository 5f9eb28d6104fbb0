"""The receivers' document walks (shape limits, id index): kernel and twin agree, and both
agree with a plain lxml walk written here as the independent oracle."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

import sim.crypto as crypto
from tests.crypto.kernels import requires_kernel
from tests.crypto.xmlgen import random_document

WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def oracle_ids(root) -> dict[str, etree._Element]:
    ids = {}
    for el in root.iter(etree.Element):
        for name in (f"{{{WSU}}}Id", "Id", "ID", "AssertionID"):
            if el.get(name) is not None:
                ids.setdefault(el.get(name), el)
    return ids


def test_ids_are_found_under_every_id_attribute(backend):
    root = etree.fromstring(
        f'<r xmlns:u="{WSU}" xmlns:x="urn:x"><a u:Id="one"/><b Id="two"/><c ID="three"/>'
        '<d AssertionID="four"/><e x:Id="not-an-id"/><f id="nor-this"/>'
        '<g Id="a&amp;b&#233;"/><!-- c --><?pi x?></r>'.encode()
    )
    ids, duplicate = backend.id_index(root)
    assert duplicate is None
    assert {k: v.tag for k, v in ids.items()} == {
        "one": "a",
        "two": "b",
        "three": "c",
        "four": "d",
        "a&b\u00e9": "g",
    }
    assert ids["one"] is root[0]


def test_a_duplicate_id_is_reported(backend):
    root = etree.fromstring(f'<r xmlns:u="{WSU}"><a u:Id="x"/><b><c Id="x"/></b></r>'.encode())
    assert backend.id_index(root)[1] == "x"


def test_one_element_may_carry_the_same_id_twice(backend):
    root = etree.fromstring(f'<r xmlns:u="{WSU}"><a u:Id="x" Id="x"/></r>'.encode())
    ids, duplicate = backend.id_index(root)
    assert duplicate is None and list(ids) == ["x"]


def test_the_index_covers_only_the_subtree(backend):
    root = etree.fromstring(b'<r Id="top"><a><b Id="inner"/></a><c Id="sibling"/></r>')
    ids, _ = backend.id_index(root[0])
    assert list(ids) == ["inner"]


@pytest.mark.parametrize(
    ("document", "limits", "expected"),
    [
        ("<a><b><c/></b></a>", (2, 100, 5), ("depth", 2, "c")),
        ("<a><b/><c/><d/></a>", (5, 3, 5), ("elements", 3, "d")),
        ('<a><b x="1" y="2" z="3"/></a>', (5, 100, 2), ("attributes", 3, "b")),
        ('<a><b x="1" y="2"/><c><d/></c></a>', (3, 4, 2), None),
        ("<a>" + "<b>" * 63 + "</b>" * 63 + "</a>", (64, 100, 0), None),
    ],
)
def test_shape_violations_name_the_first_offender(backend, document, limits, expected):
    problem = backend.shape_violation(etree.fromstring(document.encode()), *limits)
    if expected is None:
        assert problem is None
    else:
        assert (problem[0], problem[1], problem[2].tag) == expected


def test_shape_walk_stays_in_the_subtree(backend):
    root = etree.fromstring(b"<r><a><b/></a><c><d><e/></d></c></r>")
    assert backend.shape_violation(root[0], 2, 2, 0) is None
    assert backend.shape_violation(root, 2, 100, 0)[2].tag == "b"


@requires_kernel
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), limit=st.integers(1, 12))
def test_kernel_and_twin_agree_on_random_documents(seed, limit):
    from sim.crypto import _reference
    from tests.crypto.kernels import fastcrypto

    rng = random.Random(seed)
    root = random_document(rng)
    for el in root.iter(etree.Element):
        if rng.random() < 0.4:
            el.set(
                rng.choice([f"{{{WSU}}}Id", "Id", "ID", "AssertionID"]), f"id{rng.randint(0, 9)}"
            )
    kernel, twin = fastcrypto.id_index(root), _reference.id_index(root)
    assert kernel[1] == twin[1]
    assert kernel[0].keys() == twin[0].keys()
    assert all(kernel[0][k] is twin[0][k] for k in kernel[0])
    if twin[1] is None:
        assert twin[0] == oracle_ids(root)
    for limits in ((limit, 1000, 10), (100, limit, 10), (100, 1000, limit % 4)):
        a = fastcrypto.shape_violation(root, *limits)
        b = _reference.shape_violation(root, *limits)
        assert (a is None) == (b is None)
        if a is not None:
            assert a[:2] == b[:2] and a[2] is b[2]


def test_facade_checks_arguments():
    root = etree.fromstring(b"<a/>")
    with pytest.raises(TypeError):
        crypto.id_index("<a/>")
    with pytest.raises(ValueError):
        crypto.shape_violation(root, max_depth=0, max_elements=1, max_attributes=1)
