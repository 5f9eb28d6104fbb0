"""BSP 1.1 rules on Timestamps and security token references."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from tests.interop.bsp.message import (
    ASSERTIONS,
    BASE64,
    ENCRYPTED_KEY_SHA1,
    ENCRYPTED_KEY_TYPE,
    SAML2,
    SAML11_KI,
    SAML11_TOKEN_TYPE,
    SAML20_KI,
    SAML20_TOKEN_TYPE,
    SKI,
    THUMBPRINT,
    TIME,
    VALUE_TYPES,
    WSSE,
    WSSE11,
    WSU,
    XENC,
    Message,
    _where,
    q,
    rule,
)

# --- Timestamp -----------------------------------------------------------------------------


def _timestamps(m: Message) -> list[etree._Element]:
    return [] if m.security is None else m.security.findall(q(WSU, "Timestamp"))


@rule("R3227", "a Security header holds at most one Timestamp")
def r3227(m):
    return ["two Timestamps"] if len(_timestamps(m)) > 1 else []


@rule("R3203", "a Timestamp holds exactly one Created")
def r3203(m):
    return [_where(t) for t in _timestamps(m) if len(t.findall(q(WSU, "Created"))) != 1]


@rule("R3224", "a Timestamp holds at most one Expires")
def r3224(m):
    return [_where(t) for t in _timestamps(m) if len(t.findall(q(WSU, "Expires"))) > 1]


@rule("R3221", "a Timestamp's Created precedes its Expires")
def r3221(m):
    bad = []
    for t in _timestamps(m):
        names = [etree.QName(c).localname for c in t]
        if "Expires" in names and names.index("Created") > names.index("Expires"):
            bad.append(_where(t))
    return bad


@rule("R3222", "a Timestamp holds only Created and Expires")
def r3222(m):
    allowed = {q(WSU, "Created"), q(WSU, "Expires")}
    return [_where(t) for t in _timestamps(m) if any(c.tag not in allowed for c in t)]


@rule("R3217/R3223/R3213/R3215/R3220/R3229", "Created and Expires: UTC, seconds < 60, ms")
def r3217(m):
    bad = []
    for t in _timestamps(m):
        for value in t:
            match = TIME.match(value.text or "")
            if (
                match is None
                or int(match.group(2)) >= 60
                or len(match.group(3) or "") > 3
                or value.get("ValueType") is not None  # R3225/R3226
            ):
                bad.append(f"{etree.QName(value).localname} {value.text!r}")
    return bad


# --- security token references --------------------------------------------------------------


@rule("R3061", "an STR holds exactly one token reference")
def r3061(m):
    return [_where(s) for s in m.strs if len(s) != 1]


@rule("R3062/R5204", "an STR_REFERENCE has a URI, a Shorthand XPointer for an internal token")
def r3062(m):
    bad = []
    for s in m.strs:
        for reference in s.findall(q(WSSE, "Reference")):
            uri = reference.get("URI")
            if not uri or (uri[1:] in m.ids and not uri.startswith("#")):
                bad.append(f"Reference {uri!r}")
    return bad


@rule("R3059/R3058/R5218/R4214", "an STR_REFERENCE's ValueType names the referenced token")
def r3058(m):
    bad = []
    for s in m.strs:
        reference = s.find(q(WSSE, "Reference"))
        target = m.target(s)
        if reference is None or target is None:
            continue
        expected = VALUE_TYPES.get(target.tag)
        if target.tag in (q(XENC, "EncryptedKey"), q(SAML2, "Assertion")):
            continue  # R3059: these may go without one
        if reference.get("ValueType") != expected:
            bad.append(f"Reference to {_where(target)}: ValueType {reference.get('ValueType')}")
    return bad


@rule("R5205", "a token precedes every STR that references it")
def r5205(m):
    bad = []
    for s in m.strs:
        target = m.target(s)
        if target is not None and m.order[target] > m.order[s]:
            bad.append(f"{_where(target)} follows a reference to it")
    return bad


@rule("R3054/R3070/R3071/R6604", "a KeyIdentifier has a ValueType; Base64Binary unless SAML")
def r3054(m):
    bad = []
    for s in m.strs:
        for k in s.findall(q(WSSE, "KeyIdentifier")):
            saml = k.get("ValueType") in (SAML11_KI, SAML20_KI)
            encoding = k.get("EncodingType")
            if not k.get("ValueType") or (saml and encoding) or (not saml and encoding != BASE64):
                bad.append(f"KeyIdentifier {k.get('ValueType')} EncodingType {encoding}")
    return bad


@rule("R5206", "a KeyIdentifier to an X.509 token is a SubjectKeyIdentifier or ThumbprintSHA1")
def r5206(m):
    saml = {SAML11_KI, SAML20_KI, ENCRYPTED_KEY_SHA1}
    return [
        f"KeyIdentifier {k.get('ValueType')}"
        for s in m.strs
        for k in s.findall(q(WSSE, "KeyIdentifier"))
        if k.get("ValueType") not in saml | {THUMBPRINT, SKI}
        and "kerberos" not in (k.get("ValueType") or "").lower()
    ]


def _to_encrypted_key(m: Message, s: etree._Element) -> bool:
    """Whether an STR names an EncryptedKey: one of the message, or by EncryptedKeySHA1."""
    target = m.target(s)
    identifier = s.find(q(WSSE, "KeyIdentifier"))
    return (target is not None and target.tag == q(XENC, "EncryptedKey")) or (
        identifier is not None and identifier.get("ValueType") == ENCRYPTED_KEY_SHA1
    )


@rule("R3069", "an STR to an EncryptedKey has wsse11:TokenType #EncryptedKey")
def r3069(m):
    return [
        "STR to an EncryptedKey without its TokenType"
        for s in m.strs
        if _to_encrypted_key(m, s) and s.get(q(WSSE11, "TokenType")) != ENCRYPTED_KEY_TYPE
    ]


@rule("R3072", "a KeyIdentifier to an EncryptedKey has the ValueType #EncryptedKeySHA1")
def r3072(m):
    return [
        f"KeyIdentifier {k.get('ValueType')} to an EncryptedKey"
        for s in m.strs
        if s.get(q(WSSE11, "TokenType")) == ENCRYPTED_KEY_TYPE
        for k in s.findall(q(WSSE, "KeyIdentifier"))
        if k.get("ValueType") != ENCRYPTED_KEY_SHA1
    ]


_SAML_TOKEN_TYPES = {SAML11_TOKEN_TYPE: "1.1", SAML20_TOKEN_TYPE: "2.0"}


def _saml_strs(m: Message) -> Iterator[tuple[etree._Element, str, bool]]:
    """(STR, SAML version, internal?) of every STR naming an assertion: one of the message,
    or one it does not carry, named by a SAML KeyIdentifier or by a Reference whose STR
    says, by its TokenType, that it names an assertion."""
    for s in m.strs:
        target = m.target(s)
        identifier = s.find(q(WSSE, "KeyIdentifier"))
        value_type = identifier.get("ValueType") if identifier is not None else None
        if target is not None and target.tag in ASSERTIONS:
            yield s, "2.0" if target.tag == q(SAML2, "Assertion") else "1.1", True
        elif value_type in (SAML11_KI, SAML20_KI):
            yield s, "2.0" if value_type == SAML20_KI else "1.1", False
        elif s.get(q(WSSE11, "TokenType")) in _SAML_TOKEN_TYPES:
            yield s, _SAML_TOKEN_TYPES[s.get(q(WSSE11, "TokenType"))], False


@rule("R6611/R6617", "an STR to an assertion has the TokenType of its SAML version")
def r6617(m):
    expected = {"1.1": SAML11_TOKEN_TYPE, "2.0": SAML20_TOKEN_TYPE}
    return [
        f"STR to a SAML {version} assertion: TokenType {s.get(q(WSSE11, 'TokenType'))}"
        for s, version, _ in _saml_strs(m)
        if s.get(q(WSSE11, "TokenType")) != expected[version]
    ]


@rule("R6603/R6616", "a KeyIdentifier to an assertion has the ValueType of its SAML version")
def r6616(m):
    expected = {"1.1": SAML11_KI, "2.0": SAML20_KI}
    bad = []
    for s, version, _ in _saml_strs(m):
        for k in s.findall(q(WSSE, "KeyIdentifier")):
            if k.get("ValueType") != expected[version]:
                bad.append(f"SAML {version} KeyIdentifier {k.get('ValueType')}")
    return bad


@rule(
    "R6610/R6614", "an STR to an assertion in the message is a Reference (SAML 2.0: no ValueType)"
)
def r6610(m):
    bad = []
    for s, version, internal in _saml_strs(m):
        if not internal:
            continue
        reference = s.find(q(WSSE, "Reference"))
        if reference is None:
            bad.append(f"STR to an internal SAML {version} assertion by KeyIdentifier")
        elif version == "2.0" and reference.get("ValueType") is not None:
            bad.append("Reference to a SAML 2.0 assertion with a ValueType")
    return bad


@rule("R6613", "an STR to a SAML 2.0 assertion not in the message is a Reference")
def r6613(m):
    return [
        "STR to an external SAML 2.0 assertion by KeyIdentifier"
        for s, version, internal in _saml_strs(m)
        if version == "2.0" and not internal and s.find(q(WSSE, "Reference")) is None
    ]
