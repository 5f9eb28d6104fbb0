"""XML Encryption: round trips, decryption by python-xmlsec, and refusals."""

from __future__ import annotations

import os

import pytest
import xmlsec
from lxml import etree

from sim.errors import FailedCheck, InvalidSecurity, UnsupportedAlgorithm
from sim.wire import ns, soap, xenc
from sim.wire.ledger import Ledger
from sim.wire.ns import EncryptionAlg, KeyTransportAlg
from sim.wire.wss import str_issuer_serial
from sim.wire.xmlutil import b64, fragment
from tests.wire.helpers import xmlsec_private_keys

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
    ek = fragment(
        xenc.encrypted_key_text(
            key,
            provider.public_key,
            key_info=None,
            algorithm=transport,
            data_references=[data.get("Id")],
        )[0]
    )
    key_info = etree.SubElement(data, ns.qname(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    data.insert(1, key_info)
    key_info.append(ek)
    root = etree.fromstring(env.to_bytes())
    manager = xmlsec_private_keys(provider, tmp_path)
    decrypted = xmlsec.EncryptionContext(manager).decrypt(root.find(f".//{xenc.ENCRYPTED_DATA}"))
    assert etree.QName(decrypted).localname == "Order"


@pytest.mark.parametrize("transport", list(KeyTransportAlg))
def test_round_trip_with_encrypted_key_and_ledger(keystore, transport):
    provider = keystore.identity("provider")
    env = _envelope()
    key, ledger = os.urandom(32), Ledger()
    data = xenc.encrypt_element(env.body[0], key, ledger=ledger)
    ek = fragment(
        xenc.encrypted_key_text(
            key,
            provider.public_key,
            key_info=etree.tostring(str_issuer_serial(provider)).decode(),
            algorithm=transport,
            data_references=[data.get("Id")],
            ledger=ledger,
        )[0]
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


# --- rsa-oaep-mgf1p with a ds:DigestMethod (XML Encryption section 5.4.2) ------------------

OAEP_DIGESTS = {
    "sha1": ns.DigestAlg.SHA1.value,
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}


def _pem_files(identity, tmp_path):
    from cryptography.hazmat.primitives import serialization

    private = tmp_path / "key.pem"
    private.write_bytes(
        identity.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = tmp_path / "pub.pem"
    public.write_bytes(
        identity.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.mark.parametrize("digest", list(OAEP_DIGESTS))
def test_an_oaep_digest_method_written_by_xmlsec_is_honoured(keystore, tmp_path, digest):
    """python-xmlsec (libxmlsec1) encrypts the session key with RSA-OAEP under the digest
    its ds:DigestMethod names; we read that digest and recover the key and the data."""
    provider = keystore.identity("provider")
    _, public = _pem_files(provider, tmp_path)
    doc = etree.fromstring(PAYLOAD)
    template = xmlsec.template.encrypted_data_create(
        doc, xmlsec.constants.TransformAes256Cbc, type=xmlsec.constants.TypeEncElement, ns="xenc"
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    method = encrypted_key.find(f"{{{ns.XENC}}}EncryptionMethod")
    etree.SubElement(method, f"{{{ns.DS}}}DigestMethod", Algorithm=OAEP_DIGESTS[digest])
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(str(public), xmlsec.constants.KeyDataFormatPem))
    context = xmlsec.EncryptionContext(manager)
    context.key = xmlsec.Key.generate(
        xmlsec.constants.KeyDataAes, 256, xmlsec.constants.KeyDataTypeSession
    )
    data = context.encrypt_xml(template, doc)
    info = xenc.read_encrypted_key(data.find(f".//{xenc.ENCRYPTED_KEY}"), xenc.EncryptionPolicy())
    assert info.oaep_digest == OAEP_DIGESTS[digest]
    ledger = Ledger()
    session = xenc.decrypt_key(info, provider.private_key, expected_bytes=32, ledger=ledger)
    holder = etree.Element("holder")
    holder.append(data)
    restored = xenc.decrypt_element(
        xenc.read_encrypted_data(data, xenc.EncryptionPolicy()), session, ledger=ledger
    )
    assert restored.findtext(f"{{{ns.APP}}}Item") == "caf\u00e9 & more"


@pytest.mark.parametrize("digest", list(OAEP_DIGESTS))
def test_our_oaep_digest_method_decrypts_with_python_xmlsec(keystore, tmp_path, digest):
    provider = keystore.identity("provider")
    private, _ = _pem_files(provider, tmp_path)
    env = _envelope()
    key = os.urandom(32)
    data = xenc.encrypt_element(env.body[0], key, algorithm=EncryptionAlg.AES256_CBC)
    ek = fragment(
        xenc.encrypted_key_text(
            key, provider.public_key, key_info=None, oaep_digest=OAEP_DIGESTS[digest]
        )[0]
    )
    assert (
        ek.find(f"{{{ns.XENC}}}EncryptionMethod/{{{ns.DS}}}DigestMethod").get("Algorithm")
        == (OAEP_DIGESTS[digest])
    )
    key_info = etree.SubElement(data, ns.qname(ns.DS, "KeyInfo"), nsmap={"ds": ns.DS})
    data.insert(1, key_info)
    key_info.append(ek)
    root = etree.fromstring(env.to_bytes())
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(str(private), xmlsec.constants.KeyDataFormatPem))
    decrypted = xmlsec.EncryptionContext(manager).decrypt(root.find(f".//{xenc.ENCRYPTED_DATA}"))
    assert etree.QName(decrypted).localname == "Order"


def _encrypted_key_with_method(keystore, children: str):
    provider = keystore.identity("provider")
    text, _ = xenc.encrypted_key_text(os.urandom(32), provider.public_key, key_info=None)
    ek = etree.fromstring(text)
    method = ek.find(f"{{{ns.XENC}}}EncryptionMethod")
    for child in list(method):
        method.remove(child)
    for child in etree.fromstring(f'<w xmlns:ds="{ns.DS}" xmlns:xenc="{ns.XENC}">{children}</w>'):
        method.append(child)
    return ek


@pytest.mark.parametrize(
    ("children", "fault", "text"),
    [
        ('<ds:DigestMethod Algorithm="urn:md5"/>', UnsupportedAlgorithm, "not supported"),
        (
            '<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><ds:DigestMethod/>',
            InvalidSecurity,
            "appears 2 times",
        ),
        ("<xenc:KeySize>256</xenc:KeySize>", InvalidSecurity, "unexpected"),
        (
            '<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"><x/></ds:DigestMethod>',
            InvalidSecurity,
            "must be empty",
        ),
        ("<xenc:OAEPparams>*</xenc:OAEPparams>", InvalidSecurity, "base64"),
    ],
)
def test_a_bad_oaep_method_is_refused_by_name(keystore, children, fault, text):
    with pytest.raises(fault, match=text):
        xenc.read_encrypted_key(
            _encrypted_key_with_method(keystore, children), xenc.EncryptionPolicy()
        )


def test_an_oaep_digest_outside_the_policy_is_refused(keystore):
    ek = _encrypted_key_with_method(
        keystore, f'<ds:DigestMethod Algorithm="{OAEP_DIGESTS["sha512"]}"/>'
    )
    policy = xenc.EncryptionPolicy(oaep_digests=frozenset({OAEP_DIGESTS["sha1"]}))
    with pytest.raises(UnsupportedAlgorithm, match="not allowed"):
        xenc.read_encrypted_key(ek, policy)


def test_an_encrypted_key_that_does_not_decrypt_gives_a_random_key_not_an_error(keystore):
    """Key transport is no oracle (Manger's attack on OAEP, Bleichenbacher's on PKCS#1
    v1.5): a CipherValue that does not decrypt, or a digest other than the one used, yields
    a key of the expected size; the data decryption then fails with the one fault."""
    provider = keystore.identity("provider")
    env = _envelope()
    key = os.urandom(32)
    data = xenc.encrypt_element(env.body[0], key)
    text, _ = xenc.encrypted_key_text(
        key, provider.public_key, key_info=None, oaep_digest=OAEP_DIGESTS["sha256"]
    )
    info = xenc.read_encrypted_key(etree.fromstring(text), xenc.EncryptionPolicy())
    wrong_digest = xenc.EncryptedKeyInfo(
        info.element, info.algorithm, None, info.cipher, (), OAEP_DIGESTS["sha1"]
    )
    garbled = xenc.EncryptedKeyInfo(
        info.element, info.algorithm, None, bytes(len(info.cipher)), (), info.oaep_digest
    )
    assert xenc.decrypt_key(info, provider.private_key, expected_bytes=32) == key
    for bad in (wrong_digest, garbled):
        ledger = Ledger()
        session = xenc.decrypt_key(bad, provider.private_key, expected_bytes=32, ledger=ledger)
        assert len(session) == 32 and session != key
        assert ledger.entries == [("rsa_decrypt", provider.public_key.key_size)]
    with pytest.raises(FailedCheck, match=xenc.DECRYPTION_FAILED):
        xenc.decrypt_element(xenc.read_encrypted_data(data, xenc.EncryptionPolicy()), session)


# --- one fault and one charge for every decryption failure ---------------------------------


def _content(algorithm, plaintext: bytes, key: bytes):
    """An EncryptedData (Type Content) in a Body, holding ``plaintext`` as encrypted."""
    env = soap.new_envelope()
    text, _ = xenc.encrypted_data_text(
        plaintext, key, algorithm=algorithm, content=True, data_id="ED-1"
    )
    env.body.append(etree.fromstring(text))
    return xenc.read_encrypted_data(env.body[0], xenc.EncryptionPolicy())


@pytest.mark.parametrize(
    "algorithm", [EncryptionAlg.AES128_CBC, EncryptionAlg.AES256_CBC, EncryptionAlg.AES256_GCM]
)
def test_every_decryption_failure_is_one_fault_with_one_charge(algorithm):
    """A wrong padding or tag, plaintext that is not well-formed or not UTF-8, an Element
    that is not one element, and a failure after decryption (the digest, say): the same
    fault, and the same ledger, which only the ciphertext's size decides."""
    key = os.urandom(xenc.KEY_BYTES[algorithm])
    size = 16 * 6 - 1  # the same ciphertext size for every plaintext below
    well_formed = b"<a>" + b"x" * (size - 7) + b"</a>"
    cases = {
        "good plaintext, then a digest fails": (well_formed, key, True),
        "wrong key (padding or tag)": (well_formed, os.urandom(len(key)), False),
        "not well-formed": (b"<a>" + b"x" * (size - 3), key, False),
        "not UTF-8": (b"<a>" + b"\xff" * (size - 7) + b"</a>", key, False),
        "an entity": (b"<a>&ent;" + b"x" * (size - 12) + b"</a>", key, False),
    }
    outcomes = set()
    for name, (plaintext, decrypt_with, then_fail) in cases.items():
        assert len(plaintext) == size, name
        info = _content(algorithm, plaintext, key)
        ledger = Ledger()
        ledger.record("cache_lookup")  # before the stage: kept
        with (
            pytest.raises(FailedCheck) as raised,
            xenc.DecryptionStage(ledger, [info]) as stage,
        ):
            restored = stage.decrypt(info, decrypt_with)
            assert (restored is not None) == then_fail, name
            if then_fail:
                ledger.record("c14n", 1234)  # work whose size the plaintext decides
                raise FailedCheck("digest of #Body does not match", check="digest")
        fault = raised.value
        outcomes.add((type(fault), str(fault), fault.check, tuple(ledger.entries)))
    ((kind, text, check, entries),) = outcomes
    assert (kind, text, check) == (FailedCheck, xenc.DECRYPTION_FAILED, "decryption")
    operation = "aes_gcm_decrypt" if algorithm in xenc.GCM else "aes_decrypt"
    bound = xenc.plaintext_bound(algorithm, info.cipher)
    assert entries == (
        ("cache_lookup", 0),
        (operation, len(info.cipher)),
        ("xml_parse", bound),
        ("c14n", bound),
        ("digest", bound),
    )


def test_an_element_that_does_not_decrypt_to_one_element_is_the_one_fault():
    env = _envelope()
    key = os.urandom(32)
    data = xenc.encrypt_element(env.body[0], key)
    info = xenc.read_encrypted_data(data, xenc.EncryptionPolicy())
    two = xenc.encrypt_bytes(info.algorithm, key, b"<a/><b/>", None)
    with pytest.raises(FailedCheck, match=xenc.DECRYPTION_FAILED) as raised:
        xenc.decrypt_element(xenc.EncryptedDataInfo(data, info.algorithm, False, None, two), key)
    assert "not one element" in str(raised.value.__cause__)
    assert env.body[0] is data  # left in place


def test_a_stage_without_encrypted_parts_lets_faults_through():
    ledger = Ledger()
    with pytest.raises(UnsupportedAlgorithm, match="x"), xenc.DecryptionStage(ledger, []):
        ledger.record("c14n", 5)
        raise UnsupportedAlgorithm("x", check="algorithm")
    assert ledger.entries == [("c14n", 5)]


def test_a_bug_inside_the_stage_is_not_a_refusal():
    info = _content(EncryptionAlg.AES128_CBC, b"<a/>", bytes(16))
    with pytest.raises(KeyError), xenc.DecryptionStage(Ledger(), [info]):
        raise KeyError("a bug")


def test_decrypted_content_outside_what_the_signature_verified_is_refused():
    env = _envelope()
    key = os.urandom(32)
    header_block = etree.SubElement(env.header, f"{{{ns.APP}}}Extra")
    etree.SubElement(header_block, f"{{{ns.APP}}}Inner").text = "unsigned"
    data = xenc.encrypt_element(header_block[0], key)
    info = xenc.read_encrypted_data(data, xenc.EncryptionPolicy())
    with (
        pytest.raises(FailedCheck, match=xenc.DECRYPTION_FAILED) as raised,
        xenc.DecryptionStage(Ledger(), [info]) as stage,
    ):
        assert stage.decrypt(info, key) is not None
        stage.require_signed([env.body])
    assert "not signed" in str(raised.value.__cause__)
    stage = xenc.DecryptionStage(Ledger(), [info])
    stage.restored = [header_block[0]]
    stage.require_signed([header_block])  # inside a signed element: fine


@pytest.mark.parametrize(
    ("algorithm", "size"),
    [
        (EncryptionAlg.AES128_CBC, 16),
        (EncryptionAlg.AES128_CBC, 40),
        (EncryptionAlg.AES256_GCM, 27),
    ],
)
def test_a_ciphertext_of_an_impossible_length_is_refused_before_decrypting(algorithm, size):
    data = _content(algorithm, b"<a/>", bytes(xenc.KEY_BYTES[algorithm])).element
    data.find(f".//{{{ns.XENC}}}CipherValue").text = b64(bytes(size))
    with pytest.raises(InvalidSecurity, match=r"wrong length|too short") as raised:
        xenc.read_encrypted_data(data, xenc.EncryptionPolicy())
    assert raised.value.check == "cipher-length"


@pytest.mark.parametrize(
    "algorithm",
    [EncryptionAlg.AES128_GCM, EncryptionAlg.AES192_GCM, EncryptionAlg.AES256_GCM],
)
def test_gcm_is_charged_as_gcm_and_decrypts_with_python_xmlsec(algorithm):
    env = _envelope()
    key = os.urandom(xenc.KEY_BYTES[algorithm])
    ledger = Ledger()
    data = xenc.encrypt_element(env.body[0], key, algorithm=algorithm, ledger=ledger)
    assert [op for op, _ in ledger.entries] == ["xml_serialize", "aes_gcm_encrypt"]
    cipher = xenc.read_encrypted_data(data, xenc.EncryptionPolicy()).cipher
    assert len(cipher) == 12 + ledger.entries[0][1] + 16  # IV, ciphertext, tag
    root = etree.fromstring(env.to_bytes())
    ctx = xmlsec.EncryptionContext()
    ctx.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, key)
    decrypted = ctx.decrypt(root.find(f".//{xenc.ENCRYPTED_DATA}"))
    assert etree.QName(decrypted).localname == "Order"
    ledger = Ledger()
    restored = xenc.decrypt_element(
        xenc.read_encrypted_data(data, xenc.EncryptionPolicy()), key, ledger=ledger
    )
    assert etree.QName(restored).localname == "Order"
    assert ledger.entries[0] == ("aes_gcm_decrypt", len(cipher))


def test_the_charge_of_a_refused_stage_includes_the_signature_check(keystore):
    """Decryption, parse, the SignedInfo's canonicalization and signature check, the digest
    of what decrypted: in sizes the public parts fix (ciphertext, SignedInfo, key)."""
    info = _content(EncryptionAlg.AES128_CBC, b"<a/>" * 10, bytes(16))
    signature = etree.fromstring(
        f'<ds:Signature xmlns:ds="{ns.DS}"><ds:SignedInfo>x</ds:SignedInfo></ds:Signature>'
    )
    size = xenc.charged_size(signature[0])
    # the markup's size, counted in a linear walk (lxml's serialization is quadratic in the
    # namespaces in scope); close to the serialized size
    assert 0.5 <= size / len(etree.tostring(signature[0])) <= 2
    bound = xenc.plaintext_bound(info.algorithm, info.cipher)
    rsa_key = keystore.identity("provider").public_key
    for key, check in ((bytes(24), ("hmac", size)), (rsa_key, ("rsa_verify", rsa_key.key_size))):
        stage = xenc.DecryptionStage(Ledger(), [info], (signature, key))
        assert stage.charge() == [
            ("aes_decrypt", len(info.cipher)),
            ("xml_parse", bound),
            ("c14n", size),
            check,
            ("c14n", bound),
            ("digest", bound),
        ]
