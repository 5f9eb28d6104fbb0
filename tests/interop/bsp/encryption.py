"""BSP 1.1 rules on XML Encryption and on the tokens themselves."""

from __future__ import annotations

from lxml import etree

from tests.interop.bsp.message import (
    BASE64,
    DATA_ALGORITHMS,
    DS,
    KEY_TRANSPORT,
    KEY_WRAP,
    SOAP12,
    WSSE,
    WSSE11,
    WSU,
    X509V3,
    XENC,
    Message,
    _where,
    q,
    rule,
)

# --- XML Encryption --------------------------------------------------------------------------


def _encrypted_keys(m: Message) -> list[etree._Element]:
    return list(m.outside_assertions(q(XENC, "EncryptedKey")))


@rule("R3228", "no EncryptedData is a child of the SOAP Header")
def r3228(m):
    header = m.root.find(q(SOAP12, "Header"))
    return [] if header is None else [_where(e) for e in header.findall(q(XENC, "EncryptedData"))]


@rule("R3208", "an EncryptedKey precedes the EncryptedData its ReferenceList names")
def r3208(m):
    bad = []
    for key in _encrypted_keys(m):
        for reference in key.iter(q(XENC, "DataReference")):
            data = m.ids.get((reference.get("URI") or "#")[1:])
            if data is not None and m.order[data] < m.order[key]:
                bad.append(f"{_where(data)} precedes {_where(key)}")
    return bad


@rule("R3209/R5622/R5623/R5602/R5603", "an EncryptedKey: no Type, MimeType, Encoding, Recipient")
def r3209(m):
    bad = []
    for key in _encrypted_keys(m):
        present = [a for a in ("Type", "MimeType", "Encoding", "Recipient") if key.get(a)]
        if present or key.find(q(XENC, "EncryptionMethod")) is None:
            bad.append(f"{_where(key)}: {present or 'no EncryptionMethod'}")
    return bad


@rule("R5621/R5625/R5626", "an EncryptedKey's algorithm is RSA key transport or AES/3DES wrap")
def r5621(m):
    return [
        f"{_where(key)}: {method.get('Algorithm')}"
        for key in _encrypted_keys(m)
        for method in key.findall(q(XENC, "EncryptionMethod"))
        if method.get("Algorithm") not in KEY_TRANSPORT | KEY_WRAP
    ]


@rule("R5601/R5620", "an EncryptedData's algorithm is AES-128/256-CBC or 3DES-CBC")
def r5620(m):
    bad = []
    for data in m.outside_assertions(q(XENC, "EncryptedData")):
        method = data.find(q(XENC, "EncryptionMethod"))
        if method is None or method.get("Algorithm") not in DATA_ALGORITHMS:
            bad.append(f"{_where(data)}: {None if method is None else method.get('Algorithm')}")
    return bad


@rule("R5629/R5424/R5426", "an EncryptedData no EncryptedKey names has a KeyInfo with one STR")
def r5629(m):
    named = {
        (r.get("URI") or "#")[1:]
        for key in _encrypted_keys(m)
        for r in key.iter(q(XENC, "DataReference"))
    }
    bad = []
    for data in m.outside_assertions(q(XENC, "EncryptedData")):
        info = data.find(q(DS, "KeyInfo"))
        if info is None and data.get("Id") not in named:
            bad.append(f"{_where(data)} has no KeyInfo")
        elif info is not None and (
            len(info) != 1 or info[0].tag != q(WSSE, "SecurityTokenReference")
        ):
            bad.append(f"{_where(data)}: KeyInfo")
    return bad


@rule("R5608/R3006", "a DataReference URI is a Shorthand XPointer to an EncryptedData")
def r5608(m):
    return [
        f"DataReference {r.get('URI')!r}"
        for r in m.outside_assertions(q(XENC, "DataReference"))
        if not (r.get("URI") or "").startswith("#")
        or (
            m.ids.get(r.get("URI")[1:]) is not None
            and m.ids[r.get("URI")[1:]].tag != q(XENC, "EncryptedData")
        )
    ]


# --- tokens ---------------------------------------------------------------------------------


@rule("R3029/R3030/R3031/R3033", "a BinarySecurityToken: Base64Binary, an X509v3 ValueType")
def r3029(m):
    return [
        _where(b)
        for b in m.outside_assertions(q(WSSE, "BinarySecurityToken"))
        if b.get("EncodingType") != BASE64
        or not b.get("ValueType")
        or ("x509" in b.get("ValueType").lower() and b.get("ValueType") != X509V3)
    ]


def _username_tokens(m: Message) -> list[etree._Element]:
    return list(m.outside_assertions(q(WSSE, "UsernameToken")))


@rule("R4222/R4223/R4225/R4201", "a UsernameToken: one Password (with a Type), Created, Nonce")
def r4222(m):
    bad = []
    for token in _username_tokens(m):
        for local, ns in (("Password", WSSE), ("Created", WSU), ("Nonce", WSSE)):
            if len(token.findall(q(ns, local))) > 1:
                bad.append(f"{_where(token)}: two {local}")
        password = token.find(q(WSSE, "Password"))
        if password is not None and not password.get("Type"):
            bad.append(f"{_where(token)}: Password without Type")
    return bad


@rule("R4220/R4221", "a Nonce is Base64Binary")
def r4220(m):
    return [
        _where(t)
        for t in _username_tokens(m)
        for n in t.findall(q(WSSE, "Nonce"))
        if n.get("EncodingType") != BASE64
    ]


@rule(
    "R4217/R4218/R4215", "a key-derivation UsernameToken: Salt, Iteration >= 1000, no KeyIdentifier"
)
def r4217(m):
    bad = []
    for s in m.strs:
        target = m.target(s)
        if target is None or target.tag != q(WSSE, "UsernameToken"):
            continue
        iteration = target.findtext(q(WSSE11, "Iteration"))
        if target.find(q(WSSE11, "Salt")) is None or not iteration or int(iteration) < 1000:
            bad.append(f"{_where(target)}: Salt/Iteration")
        if s.find(q(WSSE, "KeyIdentifier")) is not None:
            bad.append("KeyIdentifier to a UsernameToken")
    return bad
