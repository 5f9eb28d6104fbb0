"""The WS-Security Kerberos Token Profile 1.1 token (a BinarySecurityToken holding a GSS
AP-REQ, and the references to it: by wsu:Id, or by the SHA-1 of its octets once sent), and
the keytab a trace writes for other Kerberos tools."""

from __future__ import annotations

from lxml import etree

from sim.crypto import krb5
from sim.crypto.krb5 import Enctype, SessionKey
from sim.errors import InvalidSecurityToken, UnsupportedSecurityToken
from sim.wire import ns, wss
from sim.wire.kerberos import Principal, token_sha1
from sim.wire.xmlutil import b64, b64_of, new_id


def token_element(token: bytes):
    """A wsse:BinarySecurityToken of ValueType ``#GSS_Kerberosv5_AP_REQ`` holding the GSS
    AP-REQ ``token``; its wsu:Id is ``element.get(WSU_ID)``."""
    token_id = new_id("KRB-")
    return etree.fromstring(
        f'<o:BinarySecurityToken xmlns:o="{ns.WSSE}" xmlns:u="{ns.WSU}" '
        f'ValueType="{ns.KERBEROS_AP_REQ}" EncodingType="{ns.EncodingType.BASE64.value}" '
        f'u:Id="{token_id}">{b64(token)}</o:BinarySecurityToken>'
    )


def read_token_element(bst) -> bytes:
    """The GSS AP-REQ a Kerberos BinarySecurityToken holds, or a typed fault."""
    if bst.get("ValueType") != ns.KERBEROS_AP_REQ:
        raise UnsupportedSecurityToken("not a Kerberos v5 AP-REQ token", check="kerberos")
    encoding = bst.get("EncodingType")
    if encoding is not None and encoding != ns.EncodingType.BASE64.value:
        raise InvalidSecurityToken("a BinarySecurityToken must be base64 encoded")
    return b64_of(bst, "wsse:BinarySecurityToken")


def token_reference(token_id: str):
    """The STR a message's keys derive from when the token travels in it."""
    return wss.str_reference_text(f"#{token_id}", ns.KERBEROS_AP_REQ, ns.KERBEROS_AP_REQ)


def sha1_reference(token: bytes) -> str:
    """The STR naming a token sent before by the SHA-1 of its octets."""
    return wss.str_key_identifier_text(
        token_sha1(token), ns.KERBEROS_AP_REQ_SHA1, ns.KERBEROS_AP_REQ
    )


def keytab_bytes(keys: list[tuple[Principal, SessionKey]], kvno: int = 1) -> bytes:
    """A keytab file (MIT's format 0x0502) holding ``keys``, as ``kadmin ktadd`` writes it:
    what a trace hands to other Kerberos tools (``klist -k``, ``kvno -k``)."""

    def counted(value: str | bytes) -> bytes:
        raw = value.encode() if isinstance(value, str) else value
        return len(raw).to_bytes(2, "big") + raw

    out = b"\x05\x02"
    for principal, key in keys:
        entry = (
            len(principal.components).to_bytes(2, "big")
            + counted(principal.realm)
            + b"".join(counted(part) for part in principal.components)
            + principal.name_type.to_bytes(4, "big")
            + (0).to_bytes(4, "big")  # timestamp
            + bytes([kvno % 256])
            + int(key.enctype).to_bytes(2, "big")
            + counted(key.value)
            + kvno.to_bytes(4, "big")
        )
        out += len(entry).to_bytes(4, "big") + entry
    return out


def principal_named(text: str) -> Principal:
    """The Principal of ``name/instance@REALM``."""
    name, _, realm = text.rpartition("@")
    return Principal(tuple(name.split("/")), realm)


def keytab_of(service_keys: list[tuple[str, bytes]]) -> bytes:
    """The keytab of a key log's service keys: (``principal enctype-name``, key bytes)."""
    keys = []
    for text, value in service_keys:
        name, _, enctype = text.partition(" ")
        keys.append((principal_named(name), SessionKey(krb5.enctype_named(enctype), value)))
    return keytab_bytes(keys)


def key_log_id(principal: Principal, enctype: Enctype) -> str:
    """How the key log names a long-term key: ``principal enctype-name``."""
    name = next(n for n, e in krb5.ENCTYPE_NAMES.items() if e is enctype)
    return f"{principal} {name}"
