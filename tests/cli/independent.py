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
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
NS = {"xenc": XENC, "ds": DS, "wsse": WSSE, "wsu": WSU, "saml2": SAML2, "saml1": SAML1}
#: the message signature: the ds:Signature child of the wsse:Security header (an assertion
#: inside the header carries its own, the STS's, earlier in document order)
MESSAGE_SIGNATURE = (
    "/*/*[local-name()='Header']/*[local-name()='Security']/*[local-name()='Signature']"
)
ASSERTION_SIGNATURE = "/*/*[local-name()='Signature']"
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
    xmlsec1: str,
    document: bytes,
    key_args: list[str],
    tmp: Path,
    node_xpath: str = MESSAGE_SIGNATURE,
) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` of the signature ``node_xpath`` selects (the message's, by
    default), WS-Security and SAML ids declared."""
    path = tmp / "verify.xml"
    path.write_bytes(document)
    ids = ["--id-attr:ID", f"{SAML2}:Assertion", "--id-attr:AssertionID", f"{SAML1}:Assertion"]
    for node in (
        f"{WSU}:Timestamp",
        f"{SOAP12}:Body",
        f"{SOAP11}:Body",
        f"{WSA}:Action",
        f"{WSA}:To",
        f"{WSA}:MessageID",
        f"{WSA}:RelatesTo",
        f"{WSSE}:BinarySecurityToken",
        f"{WSSE}:UsernameToken",
    ):
        ids += ["--id-attr:Id", node]
    return subprocess.run(
        [xmlsec1, "--verify", "--node-xpath", node_xpath, *ids, *key_args, str(path)],
        capture_output=True,
        text=True,
    )


def assertions(root: etree._Element) -> list[etree._Element]:
    """The SAML assertions (1.1 and 2.0) a message carries."""
    return [*root.iter(f"{{{SAML2}}}Assertion"), *root.iter(f"{{{SAML1}}}Assertion")]


def verify_assertion(
    xmlsec1: str, assertion: etree._Element, sts_cert: Path, tmp: Path
) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` of an assertion's enveloped signature, with the STS certificate."""
    document = etree.tostring(assertion)
    return verify_signature(
        xmlsec1, document, ["--pubkey-cert-pem", str(sts_cert)], tmp, ASSERTION_SIGNATURE
    )


def message_signature(root: etree._Element) -> etree._Element | None:
    """The ds:Signature of the message's wsse:Security header, if it has one."""
    found = root.xpath(MESSAGE_SIGNATURE)
    return found[0] if found else None


def signing_key_args(
    root: etree._Element, keys: dict[str, bytes], certs: Path, sender: str, tmp: Path
) -> list[str]:
    """xmlsec1 key arguments for the message's signature: an HMAC key from the key log when
    the signature refers to a logged key (by Reference URI or KeyIdentifier); for RSA, the
    key the SAML assertion it names confirms (holder-of-key), else the sender's certificate
    from certs/."""
    signature = message_signature(root)
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
    str_ = signature.find("ds:KeyInfo/wsse:SecurityTokenReference", NS)
    ref = str_.find("wsse:Reference", NS) if str_ is not None else None
    identifier = str_.findtext("wsse:KeyIdentifier", namespaces=NS) if str_ is not None else None
    key_id = ref.get("URI").lstrip("#") if ref is not None else (identifier or "").strip()
    if "hmac" in method:
        path = tmp / "hmac.bin"
        path.write_bytes(keys[key_id])
        return ["--hmackey", str(path)]
    for assertion in assertions(root):
        if key_id and key_id in (assertion.get("ID"), assertion.get("AssertionID")):
            path = tmp / "holder.pem"
            path.write_bytes(_confirmed_public_key_pem(assertion))
            return ["--pubkey-pem", str(path)]
    return ["--pubkey-cert-pem", str(certs / f"{sender}.pem")]


def _confirmed_public_key_pem(assertion: etree._Element) -> bytes:
    """The RSA public key in the assertion's subject confirmation (ds:RSAKeyValue), as PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

    value = next(assertion.iter(f"{{{DS}}}RSAKeyValue"))
    modulus = int.from_bytes(base64.b64decode(value.findtext("ds:Modulus", namespaces=NS)), "big")
    exponent = int.from_bytes(base64.b64decode(value.findtext("ds:Exponent", namespaces=NS)), "big")
    key = RSAPublicNumbers(exponent, modulus).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
