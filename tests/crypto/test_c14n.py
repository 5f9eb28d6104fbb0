"""Exclusive C14N: specification examples, edge cases, and random documents against libxml2."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

import sim.crypto as crypto
from tests.crypto.vectors import load
from tests.crypto.xmlgen import random_document, random_subtree


def libxml2_exc_c14n(el, prefixes=(), with_comments=False) -> bytes:
    return etree.tostring(
        el,
        method="c14n",
        exclusive=True,
        with_comments=with_comments,
        inclusive_ns_prefixes=list(prefixes) or None,
    )


@pytest.mark.parametrize("vector", load("exc_c14n"), ids=lambda v: v["source"][:40])
def test_specification_examples(backend, vector):
    el = etree.fromstring(vector["document"].encode()).xpath(vector["xpath"])[0]
    prefixes = tuple(vector["inclusive_prefixes"])
    assert backend.exc_c14n(el, prefixes, False).decode() == vector["expected"]


EDGE_CASES = [
    # (document, xpath of the apex, inclusive prefixes)
    (
        '<a xmlns:x="urn:x"><b x:attr="1" attr="2" z="&#9;&#10;&#13;&quot;&amp;&lt;&gt;"/></a>',
        "//b",
        (),
    ),
    ("<a>text with &amp; &lt; &gt; &#13; \u00e9\u4e2d</a>", "/a", ()),
    ("<a><![CDATA[<cdata> & ]]></a>", "/a", ()),
    ("<a><!-- c1 --><?pi  data ?><?empty?>t<!--c2--></a>", "/a", ()),
    ('<a xml:lang="en" xml:space="preserve"><b xml:lang="fr"><c/></b></a>', "//b", ()),
    ('<a xmlns="urn:d"><b xmlns=""><c xmlns="urn:e"/></b></a>', "//*[local-name()='b']", ()),
    ('<p:a xmlns:p="urn:p" xmlns:q="urn:q"><p:b q:x="1"/></p:a>', "//*[local-name()='b']", ("q",)),
    (
        '<p:a xmlns:p="urn:p" xmlns:q="urn:p"><p:b q:x="1" p:y="2"/></p:a>',
        "//*[local-name()='b']",
        (),
    ),
    ('<a xmlns:p="urn:p"><b><c><p:d/></c></b></a>', "//b", ("p", "absent")),
    ("<a>" + "<b>" * 200 + "deep" + "</b>" * 200 + "</a>", "/a", ()),
]


@pytest.mark.parametrize("with_comments", [False, True])
@pytest.mark.parametrize(("document", "xpath", "prefixes"), EDGE_CASES)
def test_edge_cases_match_libxml2(backend, document, xpath, prefixes, with_comments):
    el = etree.fromstring(document.encode()).xpath(xpath)[0]
    expected = libxml2_exc_c14n(el, prefixes, with_comments)
    assert backend.exc_c14n(el, prefixes, with_comments) == expected


def test_trees_built_with_lxml_match_libxml2(backend):
    root = etree.Element("{urn:f}root", nsmap={None: "urn:f", "x": "urn:x"})
    child = etree.SubElement(root, "plain")  # no namespace, default in scope
    etree.SubElement(child, "{urn:x}leaf", {"{urn:x}attr": "v", "a": "\r\n"}).text = "\r"
    child.append(etree.Comment("c\r"))
    child.append(etree.ProcessingInstruction("pi", "d\r"))
    for el in (root, child):
        for with_comments in (False, True):
            assert backend.exc_c14n(el, (), with_comments) == libxml2_exc_c14n(
                el, (), with_comments
            )


@settings(max_examples=300, deadline=None)
@given(rng=st.randoms(use_true_random=False), with_comments=st.booleans(), data=st.data())
def test_random_documents_match_libxml2_for_both_backends(rng, with_comments, data):
    from sim import _fastcrypto
    from sim.crypto import _reference

    root = random_document(rng)
    el = random_subtree(rng, root)
    prefixes = tuple(data.draw(st.lists(st.sampled_from(["p", "q", "r"]), max_size=3, unique=True)))
    expected = libxml2_exc_c14n(el, prefixes, with_comments)
    assert _fastcrypto.exc_c14n(el, prefixes, with_comments) == expected
    assert _reference.exc_c14n(el, prefixes, with_comments) == expected
    assert (
        _fastcrypto.c14n_digest(el, "sha1", prefixes)
        == hashlib.sha1(libxml2_exc_c14n(el, prefixes)).digest()
    )


@settings(max_examples=200, deadline=None)
@given(rng=st.randoms(use_true_random=False), with_comments=st.booleans())
def test_kernel_and_reference_agree_with_default_in_prefix_list(rng, with_comments):
    # lxml drops "#default" from the PrefixList, so the twins are each other's oracle here.
    from sim import _fastcrypto
    from sim.crypto import _reference

    el = random_subtree(rng, random_document(rng))
    prefixes = ("#default", "q")
    got = _fastcrypto.exc_c14n(el, prefixes, with_comments)
    assert got == _reference.exc_c14n(el, prefixes, with_comments)
    assert (
        _fastcrypto.c14n_digest(el, "sha256", prefixes)
        == hashlib.sha256(_reference.exc_c14n(el, prefixes, False)).digest()
    )


def test_large_body_digest_streams_correctly():
    root = etree.Element("{urn:app}Body", nsmap={"app": "urn:app"})
    for i in range(3000):
        etree.SubElement(root, "{urn:app}Item", n=str(i)).text = "x" * 30
    for algorithm in ("sha1", "sha256"):
        assert (
            crypto.c14n_digest(root, algorithm)
            == hashlib.new(algorithm, libxml2_exc_c14n(root)).digest()
        )


def test_unexpanded_entity_reference_is_refused(backend):
    parser = etree.XMLParser(resolve_entities=False)
    doc = etree.fromstring(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', parser)
    with pytest.raises(ValueError, match="entity reference"):
        backend.exc_c14n(doc, (), False)


def test_soap_message_body_digest_matches_lxml():
    path = Path(__file__).parent.parent / "data" / "crypto" / "soap_message.xml"
    envelope = etree.fromstring(path.read_bytes())
    for el in envelope.iter():
        assert crypto.c14n_digest(el) == hashlib.sha1(libxml2_exc_c14n(el)).digest()
