"""Secure parsing of messages from peers: no DTD, no entities, no network, bounded size."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

import sim.crypto as crypto
from sim.errors import MalformedMessage
from sim.wire.ledger import Ledger, Op


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what a receiver accepts before looking at the content."""

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 64
    max_elements: int = 20_000
    max_attributes: int = 32


DEFAULT_LIMITS = ParseLimits()

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=False,
    collect_ids=False,
)


def parse(
    data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS, ledger: Ledger | None = None
) -> etree._Element:
    """Parse ``data`` into the root element, refusing anything a SOAP peer has no business sending.

    Refused with :class:`MalformedMessage`: more than ``max_bytes``, anything but UTF-8
    (so that the DOCTYPE scan cannot be evaded by another encoding), any DOCTYPE (so no entity
    declarations: billion laughs and external entities never get to the parser), text that is
    not well-formed UTF-8 XML, nesting deeper than ``max_depth``, more than ``max_elements``
    elements or ``max_attributes`` attributes on one element.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise MalformedMessage(f"a message must be bytes, not {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise MalformedMessage(f"message of {len(data)} bytes exceeds {limits.max_bytes}")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data:
        raise MalformedMessage("only UTF-8 messages are accepted")
    # "!" is rare in messages (base64 has none), so one memchr usually settles it; a
    # two-byte search for "<!" would stop at every "<".
    bang = b"!" in data
    if bang and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        raise MalformedMessage("document type declarations are not allowed")
    if ledger is not None:
        ledger.record(Op.XML_PARSE, len(data))
    try:
        root = etree.fromstring(bytes(data), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from None
    if root is None:
        raise MalformedMessage("empty document")
    # Without a "!" there is no "<!DOCTYPE" (in any spelling the scan above missed).
    if bang and root.getroottree().docinfo.doctype:
        raise MalformedMessage("document type declarations are not allowed")
    _check_shape(root, limits)
    return root


def _check_shape(root: etree._Element, limits: ParseLimits) -> None:
    problem = crypto.shape_violation(
        root,
        max_depth=limits.max_depth,
        max_elements=limits.max_elements,
        max_attributes=limits.max_attributes,
    )
    if problem is None:
        return
    kind, value, el = problem
    if kind == "depth":
        raise MalformedMessage(f"nesting deeper than {value} elements")
    if kind == "elements":
        raise MalformedMessage(f"more than {value} elements")
    raise MalformedMessage(
        f"element {el.tag} has {value} attributes (limit {limits.max_attributes})"
    )


def serialize(root: etree._Element, ledger: Ledger | None = None) -> bytes:
    """The bytes of a message, as sent."""
    data = etree.tostring(root, encoding="utf-8", xml_declaration=False)
    if ledger is not None:
        ledger.record(Op.XML_SERIALIZE, len(data))
    return data
