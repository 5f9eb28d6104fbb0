"""Verify and decrypt a wssim trace with independent tools only: python-xmlsec (libxmlsec1)
decrypts with keys from keylog.jsonl, the xmlsec1 command verifies the signatures with a
key from keylog.jsonl (HMAC) or a certificate from certs/ (RSA). No wssim code is used."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import xmlsec
from lxml import etree

WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
XENC = "http://www.w3.org/2001/04/xmlenc#"
DS = "http://www.w3.org/2000/09/xmldsig#"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
NS = {"xenc": XENC, "ds": DS, "wsse": WSSE, "wsu": WSU}
AES = {
    16: xmlsec.constants.KeyDataAes,
    24: xmlsec.constants.KeyDataAes,
    32: xmlsec.constants.KeyDataAes,
}


def read_trace(trace: Path) -> tuple[list[dict], dict[str, bytes]]:
    entries = [json.loads(line) for line in (trace / "trace.jsonl").read_text().splitlines()]
    keys = {}
    for line in (trace / "keylog.jsonl").read_text().splitlines():
        record = json.loads(line)
        keys[record["id"]] = base64.b64decode(record["key"])
    return entries, keys


def _key_id_of(encrypted: etree._Element, root: etree._Element) -> str | None:
    """The key log id of the key that encrypts ``encrypted``: the token its KeyInfo refers to,
    or the EncryptedKey whose ReferenceList names it."""
    for ref in encrypted.iterfind("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS):
        return ref.get("URI").lstrip("#")
    data_id = encrypted.get("Id")
    for key in root.iter(f"{{{XENC}}}EncryptedKey"):
        uris = [r.get("URI") for r in key.iterfind("xenc:ReferenceList/xenc:DataReference", NS)]
        if f"#{data_id}" in uris:
            return key.get("Id")
    return None


def decrypt_all(root: etree._Element, keys: dict[str, bytes]) -> int:
    """Decrypt every EncryptedData in place with python-xmlsec; returns how many."""
    count = 0
    while True:
        pending = [e for e in root.iter(f"{{{XENC}}}EncryptedData") if _key_id_of(e, root) in keys]
        if not pending:
            return count
        encrypted = pending[0]
        key = keys[_key_id_of(encrypted, root)]
        context = xmlsec.EncryptionContext()
        context.key = xmlsec.Key.from_binary_data(AES[len(key)], key)
        context.decrypt(encrypted)
        count += 1


def verify_signature(
    xmlsec1: str, document: bytes, key_args: list[str], tmp: Path
) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` of the first ds:Signature, WS-Security ids declared."""
    path = tmp / "verify.xml"
    path.write_bytes(document)
    ids = []
    for node in (
        f"{WSU}:Timestamp",
        f"{SOAP12}:Body",
        f"{SOAP11}:Body",
        f"{WSA}:Action",
        f"{WSA}:To",
        f"{WSA}:MessageID",
        f"{WSSE}:BinarySecurityToken",
        f"{WSSE}:UsernameToken",
    ):
        ids += ["--id-attr:Id", node]
    return subprocess.run(
        [xmlsec1, "--verify", *ids, *key_args, str(path)], capture_output=True, text=True
    )


def signing_key_args(
    root: etree._Element, keys: dict[str, bytes], certs: Path, sender: str, tmp: Path
) -> list[str]:
    """xmlsec1 key arguments for the message's signature: an HMAC key from the key log when
    the signature refers to a logged key, else the sender's certificate from certs/."""
    signature = root.find(f".//{{{DS}}}Signature")
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
    if "hmac" in method:
        ref = signature.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS)
        key = keys[ref.get("URI").lstrip("#")]
        path = tmp / "hmac.bin"
        path.write_bytes(key)
        return ["--hmackey", str(path)]
    return ["--pubkey-cert-pem", str(certs / f"{sender}.pem")]
