"""``xmlutil.children`` (lxml matching the name in C) finds exactly the direct children whose
``tag`` equals the name asked for, whatever else the element holds."""

from __future__ import annotations

import itertools

import pytest
from lxml import etree

from sim.wire.xmlutil import children, one_child

DOCUMENT = b"""<!DOCTYPE r [<!ENTITY e "entity">]>
<r xmlns:a="urn:a" xmlns:b="urn:b">
  <x/><a:x/><b:x/><x xmlns="urn:a"/><a:y>t</a:y><!--x--><?x pi?>&e;<y xmlns=""/>
  <a:x><x/></a:x><X/><xx/><a:x/><z xmlns="urn:a"><x/></z>
</r>"""
TAGS = [
    "x",
    "{urn:a}x",
    "{urn:b}x",
    "{urn:a}y",
    "y",
    "X",
    "xx",
    "{urn:a}z",
    "z",
    "{urn:c}x",
    "{}x",
    "{}y",
    "*",
    "{*}x",
    "{urn:a}*",
    "{}*",
    "",
    "{urn:a",
    "x y",
    "{urn:a}",
    "{urn:a}x}",
]


def _root():
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    return etree.fromstring(DOCUMENT, parser)


@pytest.mark.parametrize("tag", TAGS)
def test_children_are_those_whose_tag_equals_the_name(tag):
    root = _root()
    for parent in root.iter():
        if not isinstance(parent.tag, str):
            continue
        expected = [child for child in parent if child.tag == tag]
        assert [id(c) for c in children(parent, tag)] == [id(c) for c in expected], tag


def test_a_tree_holding_every_kind_of_node_is_covered():
    kinds = {type(node).__name__ for node in _root()}
    assert {"_Element", "_Comment", "_ProcessingInstruction", "_Entity"} <= kinds


def test_one_child_counts_what_children_finds():
    root = _root()
    assert one_child(root, "{urn:a}y", "a:y").text == "t"
    with pytest.raises(Exception, match="appears 4 times"):
        one_child(root, "{urn:a}x", "a:x")
    assert one_child(root, "{urn:c}x", "c:x", required=False) is None


def test_every_pair_of_siblings_is_found_in_document_order():
    for first, second in itertools.permutations(["<x/>", "<a:x/>", "<!--c-->", "<x>t</x>"], 2):
        root = etree.fromstring(f'<r xmlns:a="urn:a">{first}{second}</r>'.encode())
        for tag in ("x", "{urn:a}x"):
            assert children(root, tag) == [c for c in root if c.tag == tag]
