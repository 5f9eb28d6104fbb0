"""WS-Security 1.0/1.1 header: Timestamp, UsernameToken, BinarySecurityToken,
SecurityTokenReference and SignatureConfirmation, built and read."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from sim.errors import (
    FailedAuthentication,
    InvalidSecurity,
    InvalidSecurityToken,
    MessageExpired,
)
from sim.wire import ns
from sim.wire.keys import Identity
from sim.wire.ledger import Ledger
from sim.wire.ns import EncodingType, PasswordType, TokenType, ValueType
from sim.wire.soap import Envelope
from sim.wire.xmlutil import (
    b64,
    b64_of,
    children_by_tag,
    ensure_id,
    escape,
    format_time,
    fragment,
    fresh_bytes,
    new_id,
    one_child,
    parse_int,
    parse_time,
    required,
    sub,
    text_of,
    unb64,
    whole_text,
)

if TYPE_CHECKING:  # checks imports this module
    from sim.wire.checks import ReplayCache

SECURITY = ns.qname(ns.WSSE, "Security")
TIMESTAMP = ns.qname(ns.WSU, "Timestamp")
USERNAME_TOKEN = ns.qname(ns.WSSE, "UsernameToken")
BINARY_SECURITY_TOKEN = ns.qname(ns.WSSE, "BinarySecurityToken")
STR = ns.qname(ns.WSSE, "SecurityTokenReference")
SIGNATURE_CONFIRMATION = ns.qname(ns.WSSE11, "SignatureConfirmation")
_CREATED = ns.qname(ns.WSU, "Created")
_EXPIRES = ns.qname(ns.WSU, "Expires")
_TIMESTAMP_PARTS = {_CREATED: "wsu:Created", _EXPIRES: "wsu:Expires"}


def add_security_header(envelope: Envelope, children: str = "") -> etree._Element:
    """Put the wsse:Security header :func:`security_header_text` writes (holding the
    elements ``children`` spells) first in the Header of ``envelope``, built as a tree, and
    return it."""
    version = envelope.version
    prefix = version.prefix
    header = fragment(
        f'<{prefix}:Header xmlns:{prefix}="{version.value}" xmlns:u="{ns.WSU}">'
        f"{security_header_text(version.value, prefix, children)}</{prefix}:Header>"
    )
    security = header[0]
    envelope.header.insert(0, security)
    return security


def security_header_text(version: str, prefix: str, children: str) -> str:
    """A wsse:Security header (mustUnderstand) holding the elements ``children`` spells (in
    the order WSS 1.1 section 5 asks: every token before each reference to it), as it
    appears under a SOAP Header whose Envelope declares the SOAP (``prefix``), WS-Addressing
    and wsu prefixes. A declaration inside ``children`` of a prefix already bound so there
    (or wsse's ``o``) is dropped, as lxml drops it from an element moved under that header."""
    must = "1" if version == ns.SOAP11 else "true"
    for declaration in (*_IN_SCOPE_DECLARATIONS, f' xmlns:{prefix}="{version}"'):
        # replace() returns the string itself when it finds nothing: no "in" scan first
        children = children.replace(declaration, "")
    return (
        f'<o:Security xmlns:o="{ns.WSSE}" {prefix}:mustUnderstand="{must}">{children}</o:Security>'
    )


_IN_SCOPE_DECLARATIONS = (
    f' xmlns:o="{ns.WSSE}"',
    f' xmlns:u="{ns.WSU}"',
    f' xmlns:a="{ns.WSA}"',
)


def find_security_header(envelope: Envelope) -> etree._Element:
    """The one wsse:Security header of the message (several, or none, is refused)."""
    return one_child(envelope.header, SECURITY, "wsse:Security header")


# --- Timestamp --------------------------------------------------------------------------


@dataclass(frozen=True)
class Timestamp:
    created: float
    expires: float | None
    element: etree._Element


def timestamp_text(now: float, ttl: float = 300.0, ts_id: str | None = None) -> str:
    """A wsu:Timestamp (Created = now, Expires = now + ttl) with wsu:Id ``ts_id`` (a fresh
    one by default), in exclusive canonical form."""
    return (
        f'<u:Timestamp xmlns:u="{ns.WSU}" u:Id="{ts_id or new_id("TS-")}">'
        f"<u:Created>{format_time(now)}</u:Created>"
        f"<u:Expires>{format_time(now + ttl)}</u:Expires></u:Timestamp>"
    )


def read_timestamp(security: etree._Element) -> Timestamp | None:
    ts = one_child(security, TIMESTAMP, "wsu:Timestamp", required=False)
    if ts is None:
        return None
    parts = children_by_tag(ts, _TIMESTAMP_PARTS)
    created_el = required(parts, _CREATED, "wsu:Created")
    created = parse_time(whole_text(created_el, "wsu:Created"), "wsu:Created")
    expires_el = parts.get(_EXPIRES)
    expires = (
        parse_time(whole_text(expires_el, "wsu:Expires"), "wsu:Expires")
        if expires_el is not None
        else None
    )
    return Timestamp(created, expires, ts)


def check_freshness(
    timestamp: Timestamp | None, now: float, *, skew: float = 300.0, max_age: float = 300.0
) -> None:
    """Refuse a missing, future, expired or too old Timestamp (wsse:MessageExpired)."""
    if timestamp is None:
        raise InvalidSecurity("the message has no wsu:Timestamp", check="timestamp")
    if timestamp.created > now + skew:
        raise MessageExpired("wsu:Created lies in the future", check="timestamp")
    if timestamp.expires is not None and timestamp.expires < now - skew:
        raise MessageExpired("the message has expired", check="timestamp")
    if timestamp.expires is not None and timestamp.expires < timestamp.created:
        raise MessageExpired("wsu:Expires precedes wsu:Created", check="timestamp")
    if now - timestamp.created > max_age + skew:
        raise MessageExpired("the message is older than allowed", check="timestamp")


# --- UsernameToken ----------------------------------------------------------------------


@dataclass(frozen=True)
class UsernameToken:
    username: str
    password: str | None
    password_type: PasswordType | None
    nonce: bytes | None
    created: float | None
    salt: bytes | None
    iteration: int | None
    element: etree._Element


def password_digest(nonce: bytes, created: str, password: str) -> bytes:
    """UsernameToken Profile: Base64(SHA1(nonce || created || password)) before encoding."""
    return hashlib.sha1(nonce + created.encode() + password.encode()).digest()


def build_username_token(
    username: str,
    *,
    password: str | None = None,
    digest: bool = False,
    now: float | None = None,
    salt: bytes | None = None,
    iteration: int | None = None,
) -> etree._Element:
    """A wsse:UsernameToken: PasswordText, PasswordDigest (Nonce + Created), or the
    key-derivation form (wsse11:Salt + wsse11:Iteration, no password)."""
    token = etree.Element(USERNAME_TOKEN, nsmap={"o": ns.WSSE, "u": ns.WSU})
    ensure_id(token, prefix="UT-")
    sub(token, ns.qname(ns.WSSE, "Username"), text=username)
    if password is not None and digest:
        nonce = fresh_bytes(16)
        created = format_time(now or 0.0)
        sub(
            token,
            ns.qname(ns.WSSE, "Password"),
            {"Type": PasswordType.DIGEST.value},
            text=b64(password_digest(nonce, created, password)),
        )
        sub(
            token,
            ns.qname(ns.WSSE, "Nonce"),
            {"EncodingType": EncodingType.BASE64.value},
            text=b64(nonce),
        )
        sub(token, ns.qname(ns.WSU, "Created"), text=created)
    elif password is not None:
        sub(token, ns.qname(ns.WSSE, "Password"), {"Type": PasswordType.TEXT.value}, text=password)
    if salt is not None:
        if len(salt) != 16 or salt[0] not in (1, 2):
            raise ValueError("salt must be 16 bytes starting with 0x01 (MAC) or 0x02 (encryption)")
        sub(token, ns.qname(ns.WSSE11, "Salt"), text=b64(salt), nsmap={"k": ns.WSSE11})
        sub(
            token,
            ns.qname(ns.WSSE11, "Iteration"),
            text=str(iteration or 1000),
            nsmap={"k": ns.WSSE11},
        )
    return token


def read_username_token(token: etree._Element, *, max_iteration: int = 1_000_000) -> UsernameToken:
    """A wsse:UsernameToken, every value from its element's whole text; an Iteration above
    ``max_iteration`` (the receiver's limit: the key derivation costs one HMAC each) is a
    typed fault, raised before any work is done."""
    if token.tag != USERNAME_TOKEN:
        raise InvalidSecurityToken(f"not a wsse:UsernameToken: {token.tag}")
    username = text_of(token, ns.qname(ns.WSSE, "Username"), "wsse:Username") or ""
    pw_el = one_child(token, ns.qname(ns.WSSE, "Password"), "wsse:Password", required=False)
    password = password_type = None
    if pw_el is not None:
        try:
            password_type = PasswordType(pw_el.get("Type", PasswordType.TEXT.value))
        except ValueError:
            raise InvalidSecurityToken(
                f"unknown password type {pw_el.get('Type')[:100]!r}"
            ) from None
        # a PasswordText is compared as sent (its spaces are part of it)
        password = whole_text(pw_el, "wsse:Password", strip=password_type is not PasswordType.TEXT)
    nonce_text = text_of(token, ns.qname(ns.WSSE, "Nonce"), "wsse:Nonce", required=False)
    created_text = text_of(token, ns.qname(ns.WSU, "Created"), "wsu:Created", required=False)
    salt_text = text_of(token, ns.qname(ns.WSSE11, "Salt"), "wsse11:Salt", required=False)
    iteration_text = text_of(
        token, ns.qname(ns.WSSE11, "Iteration"), "wsse11:Iteration", required=False
    )
    iteration = None
    if iteration_text is not None:
        try:
            iteration = parse_int(iteration_text, "wsse11:Iteration", low=1, high=max_iteration)
        except InvalidSecurity as exc:
            raise InvalidSecurityToken(exc.reason) from None
    return UsernameToken(
        username=username,
        password=password,
        password_type=password_type,
        nonce=unb64(nonce_text, "wsse:Nonce") if nonce_text is not None else None,
        created=parse_time(created_text, "wsu:Created") if created_text is not None else None,
        salt=unb64(salt_text, "wsse11:Salt") if salt_text is not None else None,
        iteration=iteration,
        element=token,
    )


def authenticate_username_token(
    token: UsernameToken,
    passwords: dict[str, str],
    *,
    now: float | None = None,
    replay: ReplayCache | None = None,
    ledger: Ledger | None = None,
    skew: float = 300.0,
    max_age: float = 300.0,
) -> None:
    """Check a PasswordText or PasswordDigest against a password store (FailedAuthentication).

    A PasswordDigest is checked as WSS4J checks it: its wsu:Created must be fresh (no further
    in the future than ``skew``, no older than ``max_age`` + ``skew``; wsse:MessageExpired)
    and its Nonce seen once (cached in ``replay``, the node's or farm's replay store, until
    the token could no longer be accepted): a digest captured once cannot be sent again.
    Without ``now`` and ``replay`` a PasswordDigest is refused.
    """
    expected = passwords.get(token.username)
    if expected is None or token.password is None:
        raise FailedAuthentication("unknown user or no password", check="authentication")
    if token.password_type is PasswordType.DIGEST:
        if token.nonce is None or token.created is None:
            raise FailedAuthentication("PasswordDigest needs Nonce and Created")
        if now is None or replay is None:
            raise FailedAuthentication(
                "a PasswordDigest needs a receiver that checks its Created and Nonce"
            )
        if token.created > now + skew:
            raise MessageExpired(
                "the UsernameToken's wsu:Created lies in the future", check="timestamp"
            )
        if now - token.created > max_age + skew:
            raise MessageExpired("the UsernameToken is older than allowed", check="timestamp")
        created_text = text_of(token.element, ns.qname(ns.WSU, "Created"), "wsu:Created") or ""
        digest = b64(password_digest(token.nonce, created_text, expected))
        if not hmac.compare_digest(digest.encode(), token.password.encode()):
            raise FailedAuthentication("wrong password", check="authentication")
        # Only a token that authenticates is remembered: a forged one cannot fill the store
        # with other users' nonces (its digest is wrong without the password).
        replay.check_and_add(_NONCE_KEY + token.nonce, now, created=token.created, ledger=ledger)
    elif not hmac.compare_digest(token.password.encode(), expected.encode()):
        raise FailedAuthentication("wrong password", check="authentication")


#: Replay-store keys of UsernameToken nonces (apart from message identifiers and signatures).
_NONCE_KEY = b"wsse:Nonce\x00"


# --- BinarySecurityToken ------------------------------------------------------------------


def binary_security_token_text(identity: Identity) -> tuple[str, str]:
    """An X.509v3 wsse:BinarySecurityToken holding ``identity``'s certificate, and its
    wsu:Id."""
    token_id = new_id("X509-")
    return (
        f'<o:BinarySecurityToken xmlns:o="{ns.WSSE}" xmlns:u="{ns.WSU}" '
        f'ValueType="{ValueType.X509V3.value}" EncodingType="{EncodingType.BASE64.value}" '
        f'u:Id="{token_id}">{b64(identity.der)}</o:BinarySecurityToken>'
    ), token_id


def read_binary_security_token(bst: etree._Element) -> bytes:
    """The DER certificate of an X.509v3 BinarySecurityToken."""
    value_type = bst.get("ValueType")
    if value_type != ValueType.X509V3.value:
        shown = None if value_type is None else value_type[:100]
        raise InvalidSecurityToken(f"unsupported BinarySecurityToken type {shown!r}")
    encoding = bst.get("EncodingType")
    if encoding is not None and encoding != EncodingType.BASE64.value:
        raise InvalidSecurityToken("a BinarySecurityToken must be base64 encoded")
    return b64_of(bst, "wsse:BinarySecurityToken")


# --- SecurityTokenReference --------------------------------------------------------------


#: The wsse11:TokenType an STR must carry for the token a ValueType names (BSP 1.1 R3069: a
#: reference to an EncryptedKey says so), when the caller names none.
_TOKEN_TYPES = {
    ValueType.ENCRYPTED_KEY.value: TokenType.ENCRYPTED_KEY.value,
    ValueType.ENCRYPTED_KEY_SHA1.value: TokenType.ENCRYPTED_KEY.value,
}


def _str_start(value_type: str | None, token_type: str | None) -> str:
    token_type = token_type or _TOKEN_TYPES.get(value_type or "")
    if token_type is None:
        return f'<o:SecurityTokenReference xmlns:o="{ns.WSSE}">'
    return (
        f'<o:SecurityTokenReference xmlns:o="{ns.WSSE}" xmlns:k="{ns.WSSE11}" '
        f'k:TokenType="{escape(token_type)}">'
    )


def str_reference_text(
    uri: str, value_type: str | None = None, token_type: str | None = None
) -> str:
    """An STR with a direct Reference to ``uri`` (``#id`` or an SCT identifier); its
    wsse11:TokenType is ``token_type``, or the one ``value_type`` calls for."""
    value = f' ValueType="{escape(value_type)}"' if value_type else ""
    return (
        f'{_str_start(value_type, token_type)}<o:Reference URI="{escape(uri)}"{value}/>'
        "</o:SecurityTokenReference>"
    )


def str_key_identifier_text(
    value: str | bytes, value_type: str, token_type: str | None = None
) -> str:
    """An STR with a KeyIdentifier (SAML assertion id, ThumbprintSHA1, EncryptedKeySHA1);
    its wsse11:TokenType is ``token_type``, or the one ``value_type`` calls for."""
    encoding = ""
    if isinstance(value, bytes):
        encoding = f' EncodingType="{EncodingType.BASE64.value}"'
        value = b64(value)
    return (
        f"{_str_start(value_type, token_type)}<o:KeyIdentifier "
        f'ValueType="{escape(value_type)}"{encoding}>{escape(value)}</o:KeyIdentifier>'
        "</o:SecurityTokenReference>"
    )


def str_issuer_serial(identity: Identity):
    """An STR naming a certificate by ds:X509IssuerSerial."""
    ref = etree.Element(STR, nsmap={"o": ns.WSSE})
    data = sub(ref, ns.qname(ns.DS, "X509Data"), nsmap={"ds": ns.DS})
    serial = sub(data, ns.qname(ns.DS, "X509IssuerSerial"))
    sub(serial, ns.qname(ns.DS, "X509IssuerName"), text=identity.issuer_name)
    sub(serial, ns.qname(ns.DS, "X509SerialNumber"), text=str(identity.serial_number))
    return ref


@dataclass(frozen=True)
class TokenReference:
    """What an STR points at: one of ``uri``, ``key_identifier`` or ``issuer_serial``."""

    uri: str | None = None
    value_type: str | None = None
    key_identifier: bytes | str | None = None
    issuer_serial: tuple[str, int] | None = None


_REFERENCE = ns.qname(ns.WSSE, "Reference")
_KEY_IDENTIFIER = ns.qname(ns.WSSE, "KeyIdentifier")
_X509_DATA = ns.qname(ns.DS, "X509Data")


def read_str(ref: etree._Element) -> TokenReference:
    """What a SecurityTokenReference points at (its one reference element; text beside it
    is ignored, as the fast reader, sim/wire/plain_shape.py, ignores it)."""
    if ref.tag != STR:
        raise InvalidSecurityToken(f"expected a SecurityTokenReference, got {ref.tag}")
    kinds = [child for child in ref if isinstance(child.tag, str)]
    if len(kinds) != 1:
        raise InvalidSecurityToken("a SecurityTokenReference holds exactly one reference")
    child = kinds[0]
    tag = child.tag
    if tag == _REFERENCE:
        uri = child.get("URI")
        if not uri:
            raise InvalidSecurityToken("wsse:Reference without URI")
        return TokenReference(uri=uri, value_type=child.get("ValueType"))
    if tag == _KEY_IDENTIFIER:
        value_type = child.get("ValueType")
        text = whole_text(child, "wsse:KeyIdentifier")
        if child.get("EncodingType") == EncodingType.BASE64.value:
            return TokenReference(
                value_type=value_type, key_identifier=unb64(text, "wsse:KeyIdentifier")
            )
        return TokenReference(value_type=value_type, key_identifier=text)
    if tag == _X509_DATA:
        serial = one_child(child, ns.qname(ns.DS, "X509IssuerSerial"), "ds:X509IssuerSerial")
        name = text_of(serial, ns.qname(ns.DS, "X509IssuerName"), "ds:X509IssuerName") or ""
        number = text_of(serial, ns.qname(ns.DS, "X509SerialNumber"), "ds:X509SerialNumber")
        try:  # RFC 5280: at most 20 octets, below 10**49
            value = parse_int(number, "ds:X509SerialNumber", low=0, high=10**49 - 1)
        except InvalidSecurity as exc:
            raise InvalidSecurityToken(exc.reason) from None
        return TokenReference(issuer_serial=(name, value))
    raise InvalidSecurityToken(f"unsupported token reference {child.tag}")


def encrypted_key_sha1(cipher_value: bytes) -> bytes:
    """The EncryptedKeySHA1 identifier: SHA-1 of the EncryptedKey's octets (CipherValue)."""
    return hashlib.sha1(cipher_value).digest()


# --- SignatureConfirmation -----------------------------------------------------------------


def add_signature_confirmation(security: etree._Element, value: bytes | None) -> etree._Element:
    """A wsse11:SignatureConfirmation echoing a request's signature value."""
    el = sub(security, SIGNATURE_CONFIRMATION, nsmap={"k": ns.WSSE11})
    ensure_id(el, prefix="SC-")
    if value is not None:
        el.set("Value", base64.b64encode(value).decode())
    return el


def read_signature_confirmations(security: etree._Element) -> list[bytes | None]:
    out: list[bytes | None] = []
    for el in security:
        if el.tag == SIGNATURE_CONFIRMATION:
            value = el.get("Value")
            out.append(unb64(value, "SignatureConfirmation/@Value") if value else None)
    return out
