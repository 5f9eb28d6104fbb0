"""Building blocks for wire tests: a signed WS-Security message and xmlsec1 verification."""

from __future__ import annotations

import subprocess
from pathlib import Path

import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

from sim.wire import dsig, ns, soap, wss
from sim.wire.keys import Identity
from sim.wire.xmlutil import fragment

#: (id attribute, element) pairs xmlsec1 must treat as ids in WS-Security messages
ID_ATTRS = [
    ("Id", f"{ns.WSU}:Timestamp"),
    ("Id", f"{ns.SOAP12}:Body"),
    ("Id", f"{ns.WSSE}:BinarySecurityToken"),
    ("Id", f"{ns.WSSE}:UsernameToken"),
    ("Id", f"{ns.WSA}:Action"),
    ("Id", f"{ns.WSA}:To"),
]


def signed_message(identity: Identity, now: float = 10.0, payload: str = "hello & <world>"):
    """An envelope with Timestamp, BST and an RSA-SHA1 signature over Body and Timestamp."""
    env = soap.new_envelope()
    soap.add_addressing(env, action="urn:wssim:app:Echo", to="https://provider/")
    security = wss.add_security_header(env)
    ts = add_timestamp(security, now)
    bst = fragment(wss.binary_security_token_text(identity)[0])
    security.append(bst)
    etree.SubElement(env.body, f"{{{ns.APP}}}Echo").text = payload
    bst_id = bst.get(ns.qname(ns.WSU, "Id"))
    signature = dsig.sign(
        [env.body, ts],
        identity.private_key,
        algorithm=ns.SignatureAlg.RSA_SHA1,
        key_info=fragment(wss.str_reference_text(f"#{bst_id}", ns.ValueType.X509V3.value)),
    )
    security.append(signature)
    return env


def add_timestamp(security, now: float, ttl: float = 300.0):
    """A wsu:Timestamp (Created = now, Expires = now + ttl) put first in ``security``."""
    timestamp = fragment(wss.timestamp_text(now, ttl))
    security.insert(0, timestamp)
    return timestamp


def xmlsec1_verify(tool: str, tmp: Path, document: bytes, *key_args: str, id_attrs=ID_ATTRS):
    """Run ``xmlsec1 --verify``; returns (returncode, stderr)."""
    path = tmp / "doc.xml"
    path.write_bytes(document)
    args = [tool, "--verify"]
    for attr, node in id_attrs:
        args += [f"--id-attr:{attr}", node]
    result = subprocess.run([*args, *key_args, str(path)], capture_output=True, text=True)
    return result.returncode, result.stderr


def xmlsec_private_keys(identity: Identity, directory: Path) -> xmlsec.KeysManager:
    """python-xmlsec's keys manager holding ``identity``'s private key (written as PKCS#8
    PEM into ``directory``): what an independent receiver decrypts with."""
    pem = directory / f"{identity.name}.key"
    pem.write_bytes(
        identity.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(str(pem), xmlsec.constants.KeyDataFormatPem))
    return manager
