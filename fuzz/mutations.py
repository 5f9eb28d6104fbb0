"""Deterministic mutations of real messages: byte-level and XML-aware.

Every mutation is drawn from a ``random.Random``: the same seed and the same message
structure give the same mutation (the messages' random ids and keys may differ from one run
to another; their sizes and shapes do not). Each returns the mutated bytes and a short
description of what it did, for the report of a finding.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Callable

from lxml import etree

from sim.wire import ns

#: Byte strings inserted by the byte-level mutations: markup fragments, entity forms,
#: encodings and characters that a reader may mishandle.
TOKENS = (
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"&a;",
    b"&#0;",
    b"&#x110000;",
    b"&lt;",
    b"<x/>",
    b"<!---->",
    b"<?pi x?>",
    b"<![CDATA[x]]>",
    b"]]>",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xef\xbb\xbf",
    b"<",
    b">",
    b'"',
    b"'",
    b"=",
    b" ",
    b'xmlns:a="urn:x"',
    b'xmlns=""',
    b"<?xml version='1.0' encoding='UTF-7'?>",
    b"\xc2\xb2",  # superscript two: str.isdigit() says yes, int() says no
    b"\xd9\xa3",  # ARABIC-INDIC DIGIT THREE
)

#: Values the XML-aware mutations put in place of an element's text or an attribute.
VALUES = (
    "",
    " ",
    "\n\t",
    "0",
    "-1",
    "1",
    "4294967296",
    "99999999999999999999999999999999999",
    "²",
    "٣",
    "1e309",
    "nan",
    "0x10",
    "AAAA",
    "AA==",
    "A",
    "!!!!",
    "a" * 5000,
    "2026-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "2026-W01-1",
    "#",
    "#id-missing",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue",
    "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/Issue",
    "urn:wssim:app:ProcessResponse",
    "relative/uri",
    "urn:x PrefixList a b c d e f g",
)

#: Attributes worth setting on any element: ids, references, algorithms, types.
ATTRIBUTES = (
    ns.qname(ns.WSU, "Id"),
    "Id",
    "ID",
    "AssertionID",
    "URI",
    "Algorithm",
    "ValueType",
    "EncodingType",
    "Type",
    "MustUnderstand",
    ns.qname(ns.SOAP12, "mustUnderstand"),
    "PrefixList",
    "Value",
)

_BOUNDARY = re.compile(rb"[<>]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

Mutation = Callable[[random.Random, bytes], tuple[bytes, str]]


# --- byte level -------------------------------------------------------------------------


def flip(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    body = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(body))
        body[position] ^= rng.randint(1, 255)
    return bytes(body), "flip bytes"


def cut(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    start = rng.randrange(len(data))
    length = rng.choice((1, 2, 8, 64, 512))
    return data[:start] + data[start + length :], f"cut {length} bytes at {start}"


def duplicate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    start = rng.randrange(len(data))
    length = rng.choice((1, 16, 128, 1024))
    return data[:start] + data[start : start + length] + data[start:], f"dup {length} at {start}"


def insert(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    token = rng.choice(TOKENS)
    # Mostly at a tag boundary or inside text, where a reader is likeliest to trip.
    if rng.random() < 0.5:
        boundaries = [match.start() for match in _BOUNDARY.finditer(data)]
        position = rng.choice(boundaries) + rng.randint(0, 1) if boundaries else 0
    else:
        position = rng.randrange(len(data) + 1)
    return data[:position] + token + data[position:], f"insert {token!r} at {position}"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    end = rng.randrange(len(data))
    return data[:end], f"truncate to {end}"


BYTE_MUTATIONS: tuple[Mutation, ...] = (flip, cut, duplicate, insert, truncate)


# --- XML-aware ---------------------------------------------------------------------------


def _tree(data: bytes):
    root = etree.fromstring(data, _PARSER)
    elements = [el for el in root.iter() if isinstance(el.tag, str)]
    return root, elements


def _name(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else str(el.tag)


def drop_element(rng, root, elements) -> str:
    el = rng.choice(elements[1:])
    el.getparent().remove(el)
    return f"drop <{_name(el)}>"


def duplicate_element(rng, root, elements) -> str:
    el = rng.choice(elements[1:])
    copy = etree.fromstring(etree.tostring(el, with_tail=False))
    el.addnext(copy) if rng.random() < 0.5 else el.addprevious(copy)
    return f"duplicate <{_name(el)}>"


def move_element(rng, root, elements) -> str:
    el = rng.choice(elements[1:])
    inside = set(el.iter())
    target = rng.choice([t for t in elements if t not in inside])
    el.getparent().remove(el)
    target.insert(rng.randint(0, len(target)), el)
    return f"move <{_name(el)}> into <{_name(target)}>"


def wrap_element(rng, root, elements) -> str:
    """An XML Signature Wrapping move: the element put inside a new one, or a copy of it
    hidden elsewhere while the original is changed."""
    el = rng.choice(elements[1:])
    wrapper = etree.Element(rng.choice(("{urn:attacker}Wrapper", el.tag)))
    el.addprevious(wrapper)
    wrapper.append(
        el if rng.random() < 0.5 else etree.fromstring(etree.tostring(el, with_tail=False))
    )
    return f"wrap <{_name(el)}>"


def swap_elements(rng, root, elements) -> str:
    first, second = rng.sample(elements[1:], 2)
    if first in second.iterancestors() or second in first.iterancestors():
        return move_element(rng, root, elements)
    placeholder = etree.Comment("x")
    first.getparent().replace(first, placeholder)
    second.getparent().replace(second, first)
    placeholder.getparent().replace(placeholder, second)
    return f"swap <{_name(first)}> and <{_name(second)}>"


def insert_comment(rng, root, elements) -> str:
    """A comment inside an element's text (exclusive C14N drops it: the digest holds)."""
    with_text = [el for el in elements if el.text and el.text.strip()] or elements
    el = rng.choice(with_text)
    text = el.text or ""
    cut_at = rng.randint(0, len(text))
    el.text = text[:cut_at]
    comment = etree.Comment(rng.choice(("", "x", " injected ")))
    comment.tail = text[cut_at:] + rng.choice(("", "", "X", "0", "-billing"))
    el.insert(0, comment)
    return f"comment in the text of <{_name(el)}> at {cut_at}"


def flip_binary(rng, root, elements) -> str:
    """A byte of some base64 content changed and encoded again (a certificate, a key, a
    cipher text, a digest): the bytes stay well-formed base64, what they hold does not."""
    coded = [
        el
        for el in elements
        if el.text and len(el.text) >= 8 and len(el.text) % 4 == 0 and _BASE64.fullmatch(el.text)
    ]
    if not coded:
        return change_text(rng, root, elements)
    el = rng.choice(coded)
    data = bytearray(base64.b64decode(el.text))
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    el.text = base64.b64encode(bytes(data)).decode()
    return f"binary content of <{_name(el)}>"


def insert_processing_instruction(rng, root, elements) -> str:
    el = rng.choice(elements)
    pi = etree.ProcessingInstruction("pi", "x")
    el.insert(rng.randint(0, len(el)), pi)
    return f"processing instruction in <{_name(el)}>"


def change_text(rng, root, elements) -> str:
    el = rng.choice(elements)
    choice = rng.random()
    if choice < 0.6:
        el.text = rng.choice(VALUES)
    elif choice < 0.8:
        el.text = rng.choice([other.text for other in elements if other.text] or [""])
    else:
        el.text = (el.text or "") * rng.choice((2, 50))
    return f"text of <{_name(el)}>"


def change_tail(rng, root, elements) -> str:
    """Text after an element, inside its parent (mixed content where the schema has none)."""
    el = rng.choice(elements[1:])
    el.tail = rng.choice(VALUES[1:]) if rng.random() < 0.8 else "x"
    return f"text after <{_name(el)}>"


def change_attribute(rng, root, elements) -> str:
    el = rng.choice(elements)
    names = list(el.attrib)
    choice = rng.random()
    if names and choice < 0.3:
        name = rng.choice(names)
        del el.attrib[name]
        return f"drop @{name} of <{_name(el)}>"
    if names and choice < 0.7:
        name = rng.choice(names)
        el.set(name, rng.choice(VALUES))
        return f"change @{name} of <{_name(el)}>"
    name = rng.choice(ATTRIBUTES)
    ids = [v for other in elements for k, v in other.attrib.items() if k.endswith("Id")]
    value = rng.choice(ids) if ids and rng.random() < 0.5 else rng.choice(VALUES)
    el.set(name, value)
    return f"set @{name} of <{_name(el)}>"


def rename_element(rng, root, elements) -> str:
    el = rng.choice(elements)
    other = rng.choice(elements)
    choice = rng.random()
    if choice < 0.4:
        el.tag = other.tag  # the name of another element
    elif choice < 0.7:
        el.tag = etree.QName("urn:attacker", etree.QName(el).localname).text
    else:
        el.tag = etree.QName(etree.QName(el).namespace or "", "Renamed").text
    return f"rename <{_name(el)}>"


def splice_element(rng, root, elements, others: list[bytes] | None = None) -> str:
    """An element of another message of the same strategy put in this one."""
    if not others:
        return duplicate_element(rng, root, elements)
    _, donor_elements = _tree(rng.choice(others))
    donor = rng.choice(donor_elements[1:] or donor_elements)
    target = rng.choice(elements)
    target.insert(rng.randint(0, len(target)), donor)
    return f"splice <{_name(donor)}> into <{_name(target)}>"


XML_MUTATIONS = (
    drop_element,
    duplicate_element,
    move_element,
    wrap_element,
    swap_elements,
    insert_comment,
    insert_processing_instruction,
    flip_binary,
    flip_binary,
    change_text,
    change_tail,
    change_attribute,
    rename_element,
    splice_element,
)


def mutate(rng: random.Random, data: bytes, others: list[bytes] | None = None) -> tuple[bytes, str]:
    """One mutation of ``data``: byte-level (40 %) or XML-aware (60 %: one to three tree
    edits, the tree serialized again)."""
    # a KDC message is DER, not XML: bytes are all there is to mutate
    if rng.random() < 0.4 or not data.startswith(b"<"):
        return rng.choice(BYTE_MUTATIONS)(rng, data)
    others = [other for other in others or () if other.startswith(b"<")]
    root, elements = _tree(data)
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if len(elements) < 3:
            break
        mutation = rng.choice(XML_MUTATIONS)
        if mutation is splice_element:
            done.append(splice_element(rng, root, elements, others))
        else:
            done.append(mutation(rng, root, elements))
        elements = [el for el in root.iter() if isinstance(el.tag, str)]
    return etree.tostring(root), "; ".join(done) or "reserialize"
