"""XML Encryption: round trips, decryption by python-xmlsec, and refusals."""

from __future__ import annotations

import os

import pytest
import xmlsec
from lxml import etree

from sim.errors import FailedCheck, UnsupportedAlgorithm
from sim.wire import ns, soap, xenc
from sim.wire.ledger import Ledger
from sim.wire.ns import EncryptionAlg, KeyTransportAlg
from sim.wire.wss import str_issuer_serial

PAYLOAD = "<app:Order xmlns:app='urn:wssim:app'><app:Item n='1'>caf\u00e9 &amp; more</app:Item></app:Order>"
XMLSEC_KEYS = {16: xmlsec.constants.KeyDataAes, 32: xmlsec.constants.KeyDataAes}


def _envelope():
    env = soap.new_envelope()
    env.body.append(etree.fromstring(PAYLOAD))
    return env


@pytest.mark.parametrize(
    "algorithm",
    [
        EncryptionAlg.AES128_CBC,
        EncryptionAlg.AES256_CBC,
        EncryptionAlg.AES128_GCM,
        EncryptionAlg.AES256_GCM,
    ],
)
@pytest.mark.parametrize("content", [False, True])
def test_encrypted_data_decrypts_with_python_xmlsec(algorithm, content):
    env = _envelope()
    key = os.urandom(xenc.KEY_BYTES[algorithm])
    target = env.body if content else env.body[0]
    xenc.encrypt_element(target, key, algorithm=algorithm, content=content)
    root = etree.fromstring(env.to_bytes())
    data = root.find(f".//{xenc.ENCRYPTED_DATA}")
    ctx = xmlsec.EncryptionContext()
    ctx.key = xmlsec.Key.from_binary_data(XMLSEC_KEYS[len(key)], key)
    decrypted = ctx.decrypt(data)
    body = root[1]
    order = body[0] if len(body) else decrypted
    assert etree.QName(order).localname == "Order"
    assert "caf\u00e9 & more" in etree.tostring(order, encoding="unicode", method="text")


@pytest.mark.parametrize("transport", list(KeyTransportAlg))
def test_encrypted_key_decrypts_with_python_xmlsec(keystore, tmp_path, transport):
    provider = keystore.identity("provider")
    env = _envelope()
    key = os.urandom(32)
    data = xenc.encrypt_element(env.body[0], key, algorithm=EncryptionAlg.AES256_CBC)
    ek = xenc.build_encrypted_key(
        key,
        provider.public_key,
        key_info=None,
        algorithm=transport,
        data_references=[data.get("Id")],
    )
    key_info = etree.SubElement(data, ns.qname(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    data.insert(1, key_info)
    key_info.append(ek)
    root = etree.fromstring(env.to_bytes())
    pem = tmp_path / "provider.key"
    from cryptography.hazmat.primitives import serialization

    pem.write_bytes(
        provider.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(str(pem), xmlsec.constants.KeyDataFormatPem))
    decrypted = xmlsec.EncryptionContext(manager).decrypt(root.find(f".//{xenc.ENCRYPTED_DATA}"))
    assert etree.QName(decrypted).localname == "Order"


@pytest.mark.parametrize("transport", list(KeyTransportAlg))
def test_round_trip_with_encrypted_key_and_ledger(keystore, transport):
    provider = keystore.identity("provider")
    env = _envelope()
    key, ledger = os.urandom(32), Ledger()
    data = xenc.encrypt_element(env.body[0], key, ledger=ledger)
    ek = xenc.build_encrypted_key(
        key,
        provider.public_key,
        key_info=str_issuer_serial(provider),
        algorithm=transport,
        data_references=[data.get("Id")],
        ledger=ledger,
    )
    env.header.append(ek)
    received = soap.read_envelope(env.to_bytes())
    policy = xenc.EncryptionPolicy(key_transport=frozenset(KeyTransportAlg))
    info = xenc.read_encrypted_key(received.header[0], policy)
    assert info.data_references == (data.get("Id"),)
    session = xenc.decrypt_key(
        info, provider.private_key, expected_bytes=32, policy=policy, ledger=ledger
    )
    restored = xenc.decrypt_element(
        xenc.read_encrypted_data(received.body[0], policy), session, ledger=ledger
    )
    assert restored.findtext(f"{{{ns.APP}}}Item") == "caf\u00e9 & more"
    assert {"aes_encrypt", "aes_decrypt", "rsa_encrypt", "rsa_decrypt"} <= set(ledger.counts())


@pytest.mark.parametrize("algorithm", [EncryptionAlg.AES256_CBC, EncryptionAlg.AES256_GCM])
def test_a_flipped_ciphertext_byte_fails_without_crashing(algorithm):
    env = _envelope()
    key = os.urandom(32)
    data = xenc.encrypt_element(env.body[0], key, algorithm=algorithm)
    info = xenc.read_encrypted_data(data, xenc.EncryptionPolicy())
    for position in (-1, -17, len(info.cipher) // 2):
        cipher = bytearray(info.cipher)
        cipher[position] ^= 0x55
        broken = xenc.EncryptedDataInfo(data, algorithm, False, None, bytes(cipher))
        try:
            restored = xenc.decrypt_element(broken, key)
        except FailedCheck:
            continue
        # CBC without integrity may still yield well-formed XML; it is then not the original
        assert etree.tostring(restored) != PAYLOAD.encode()
        restored.getparent().replace(restored, data)


def test_wrong_session_key_is_failed_check():
    env = _envelope()
    data = xenc.encrypt_element(env.body[0], os.urandom(32), algorithm=EncryptionAlg.AES256_GCM)
    with pytest.raises(FailedCheck):
        xenc.decrypt_element(
            xenc.read_encrypted_data(data, xenc.EncryptionPolicy()), os.urandom(32)
        )


def test_algorithm_outside_the_policy_is_refused():
    env = _envelope()
    data = xenc.encrypt_element(env.body[0], os.urandom(16), algorithm=EncryptionAlg.AES128_CBC)
    policy = xenc.EncryptionPolicy(data_algorithms=frozenset({EncryptionAlg.AES256_CBC}))
    with pytest.raises(UnsupportedAlgorithm):
        xenc.read_encrypted_data(data, policy)


def test_encrypted_header_round_trip():
    env = _envelope()
    block = etree.SubElement(env.header, f"{{{ns.APP}}}Secret")
    block.text = "s3cret"
    key = os.urandom(32)
    wrapper = xenc.encrypt_header(block, key)
    assert b"s3cret" not in env.to_bytes()
    restored = xenc.decrypt_header(wrapper, key, xenc.EncryptionPolicy())
    assert restored.text == "s3cret" and restored.getparent() is env.header


def test_content_encryption_keeps_markup_characters_of_leading_text():
    env = soap.new_envelope()
    env.body.text = "a < b & c > d"
    env.body.append(etree.fromstring(PAYLOAD))
    key = os.urandom(32)
    data = xenc.encrypt_element(env.body, key, algorithm=EncryptionAlg.AES256_CBC, content=True)
    info = xenc.read_encrypted_data(data, xenc.EncryptionPolicy())
    body = xenc.decrypt_element(info, key)
    assert body.text == "a < b & c > d"
    assert etree.QName(body[0]).localname == "Order"
