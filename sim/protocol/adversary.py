"""An adversary on a link, sans-I/O: from a captured message it forges the bytes of an attack.

Attacks (names fixed by DESIGN.md): ``steal-token`` (a captured token presented by another
client: a bearer assertion as is; a holder-of-key assertion or a security context with a key
the attacker does not have), ``replay`` (the same bytes again), ``wrap`` (XML Signature
Wrapping: the signed Body moved into a header, a forged Body in its place), ``tamper`` (one
byte changed inside a protected value). The engine delivers the forgery to the receiver and
counts whether it was accepted or which check refused it.
"""

from __future__ import annotations

import os

from lxml import etree

from sim.protocol import protection as p
from sim.protocol.base import APP_ACTION, PROVIDER_ADDRESS
from sim.wire import ns, saml, soap, wss
from sim.wire.ledger import NullLedger
from sim.wire.ns import ValueType
from sim.wire.xmlparse import parse

ATTACKS = ("steal-token", "replay", "wrap", "tamper")
FORGED_PAYLOAD = b"transfer everything to mallory"


def forge(attack: str, captured: bytes, now: float) -> bytes | None:
    """The attack's message built from ``captured``, or None when it does not apply (no
    token to steal in this message)."""
    if attack == "replay":
        return captured
    if attack == "tamper":
        return _tamper(captured)
    if attack == "wrap":
        return _wrap(captured)
    if attack == "steal-token":
        return _steal(captured, now)
    raise ValueError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")


def _tamper(data: bytes) -> bytes:
    for marker in (b"SignatureValue>", b"CipherValue>", b"DigestValue>", b"Payload>"):
        index = data.find(marker)
        while index >= 0:
            opening = data.rfind(b"<", 0, index)
            if data[opening + 1 : opening + 2] != b"/":
                position = index + len(marker) + 4
                flipped = b"A" if data[position : position + 1] != b"A" else b"B"
                return data[:position] + flipped + data[position + 1 :]
            index = data.find(marker, index + 1)
    return data[:-20] + b"X" + data[-19:]


def _wrap(data: bytes) -> bytes:
    root = parse(data)
    envelope_ns = etree.QName(root).namespace
    header = root.find(f"{{{envelope_ns}}}Header")
    body = root.find(f"{{{envelope_ns}}}Body")
    if header is None or body is None:
        return data
    forged = etree.Element(body.tag, nsmap=body.nsmap)
    holder = etree.SubElement(forged, ns.qname(ns.APP, "Request"), nsmap={"app": ns.APP})
    etree.SubElement(holder, p.PAYLOAD).text = p.b64(FORGED_PAYLOAD)
    root.replace(body, forged)
    wrapper = etree.SubElement(header, ns.qname(ns.APP, "Wrapper"), nsmap={"app": ns.APP})
    wrapper.append(body)  # the signed original, still resolvable by its Id
    return etree.tostring(root)


def _steal(data: bytes, now: float) -> bytes | None:
    root = parse(data)
    assertion = next(root.iter(saml.ASSERTION2, saml.ASSERTION1), None)
    sct_reference = _context_reference(root)
    if assertion is None and sct_reference is None:
        return None
    envelope = soap.new_envelope()
    soap.add_addressing(envelope, action=APP_ACTION, to=PROVIDER_ADDRESS)
    p.put_payload(envelope, FORGED_PAYLOAD)
    guessed_key = os.urandom(32)  # the attacker has the token, not its key
    if assertion is not None:
        confirmation = assertion.find(f".//{{{ns.SAML2}}}SubjectConfirmation")
        method = confirmation.get("Method") if confirmation is not None else None
        holder = assertion.find(f".//{{{ns.SAML1}}}ConfirmationMethod")
        bearer = method == ns.Confirmation.BEARER.value or (
            holder is not None and holder.text == ns.SAML1_CONFIRMATION[ns.Confirmation.BEARER]
        )
        if bearer:
            security, _ = p.security_header(envelope, now)
            security.append(assertion)
            return envelope.to_bytes()
        assertion_id = saml.assertion_id(assertion)
        value_type = (
            ValueType.SAML2_ID if assertion.tag == saml.ASSERTION2 else ValueType.SAML_ASSERTION_ID
        ).value
        return p.protect_symmetric(
            envelope,
            secret=guessed_key,
            source_reference=lambda: wss.str_key_identifier(assertion_id, value_type),
            now=now,
            ledger=NullLedger(),
            tokens=[assertion],
        )
    identifier = sct_reference
    return p.protect_symmetric(
        envelope,
        secret=guessed_key,
        source_reference=lambda: wss.str_reference(identifier, ValueType.SCT.value),
        now=now,
        ledger=NullLedger(),
    )


def _context_reference(root) -> str | None:
    for reference in root.iter(ns.qname(ns.WSSE, "Reference")):
        if reference.get("ValueType") == ValueType.SCT.value:
            return reference.get("URI")
    return None
