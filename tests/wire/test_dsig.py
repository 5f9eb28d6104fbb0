"""XML Signature: independent verification by xmlsec1, and every refusal rule."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os
import re
import subprocess
from collections.abc import Callable

import pytest
from lxml import etree

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity, UnsupportedAlgorithm
from sim.wire import checks, dsig, ns, soap, wss
from sim.wire.ledger import Ledger
from sim.wire.ns import SignatureAlg
from tests.wire.helpers import ID_ATTRS, add_timestamp, signed_message, xmlsec1_verify


def test_rsa_signature_verifies_with_xmlsec1(keystore, xmlsec1, tmp_path):
    client = keystore.identity("client-0")
    env = signed_message(client)
    (tmp_path / "c.pem").write_bytes(client.pem)
    code, err = xmlsec1_verify(
        xmlsec1, tmp_path, env.to_bytes(), "--pubkey-cert-pem", str(tmp_path / "c.pem")
    )
    assert code == 0, err


@pytest.mark.parametrize("algorithm", [SignatureAlg.HMAC_SHA1, SignatureAlg.HMAC_SHA256])
def test_hmac_signature_with_a_derived_key_verifies_with_xmlsec1(xmlsec1, tmp_path, algorithm):
    key = crypto.derive_key(os.urandom(32), nonce=os.urandom(16))
    env = soap.new_envelope()
    security = wss.add_security_header(env)
    ts = add_timestamp(security, 0.0)
    etree.SubElement(env.body, f"{{{ns.APP}}}Ping").text = "x"
    security.append(
        dsig.sign(
            [env.body, ts],
            key,
            algorithm=algorithm,
            digest=ns.DigestAlg.SHA256,
            inclusive_prefixes=("s",),
        )
    )
    (tmp_path / "k.bin").write_bytes(key)
    code, err = xmlsec1_verify(
        xmlsec1, tmp_path, env.to_bytes(), "--hmackey", str(tmp_path / "k.bin")
    )
    assert code == 0, err


def _reparsed(env):
    return soap.read_envelope(env.to_bytes())


def _signature(env):
    return wss.find_security_header(env).find(ns.qname(ns.DS, "Signature"))


def test_verification_returns_the_signed_elements_and_records_the_ledger(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    ledger = Ledger()
    verified = dsig.verify(_signature(env), key=client.public_key, ledger=ledger)
    assert verified.covers(env.body)
    assert not verified.covers(copy.deepcopy(env.body))
    counts = ledger.counts()
    assert counts["rsa_verify"] == 1 and counts["digest"] == 2 and counts["c14n"] == 3


def _tamper(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def test_a_changed_byte_in_the_body_fails_the_digest(keystore):
    client = keystore.identity("client-0")
    data = _tamper(signed_message(client).to_bytes(), b"hello", b"jello")
    env = soap.read_envelope(data)
    with pytest.raises(FailedCheck, match="digest"):
        dsig.verify(_signature(env), key=client.public_key)


def test_a_changed_signature_value_fails(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    value = _signature(env).find(ns.qname(ns.DS, "SignatureValue"))
    raw = bytearray(base64.b64decode(value.text))
    raw[5] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(FailedCheck, match="signature"):
        dsig.verify(_signature(env), key=client.public_key)


def test_truncated_hmac_output_length_is_refused():
    env = soap.new_envelope()
    key = os.urandom(32)
    signature = dsig.sign([env.body], key, algorithm=SignatureAlg.HMAC_SHA1)
    env.header.append(signature)
    method = signature.find(f".//{ns.qname(ns.DS, 'SignatureMethod')}")
    etree.SubElement(method, ns.qname(ns.DS, "HMACOutputLength")).text = "80"
    with pytest.raises(InvalidSecurity, match="CVE-2009-0217"):
        dsig.verify(signature, key=key)


def test_algorithm_outside_the_policy_is_refused(keystore):
    client = keystore.identity("client-0")
    env = soap.new_envelope()
    signature = dsig.sign([env.body], client.private_key, algorithm=SignatureAlg.RSA_SHA256)
    env.header.append(signature)
    with pytest.raises(UnsupportedAlgorithm):
        dsig.verify(signature, key=client.public_key, policy=dsig.SignaturePolicy())
    sha256 = dsig.SignaturePolicy(signature_algorithms=frozenset({SignatureAlg.RSA_SHA256}))
    assert dsig.verify(signature, key=client.public_key, policy=sha256).covers(env.body)


def test_rsa_key_below_the_policy_minimum_is_refused(keystore):
    small = keystore.identity("weak-client", bits=1024)
    env = soap.new_envelope()
    signature = dsig.sign([env.body], small.private_key, algorithm=SignatureAlg.RSA_SHA1)
    env.header.append(signature)
    with pytest.raises(InvalidSecurity, match="outside"):
        dsig.verify(signature, key=small.public_key, policy=dsig.SignaturePolicy(min_rsa_bits=2048))


def test_duplicate_ids_are_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    env.header.append(copy.deepcopy(env.body))
    with pytest.raises(InvalidSecurity, match="duplicate id"):
        dsig.verify(_signature(env), key=client.public_key)


@pytest.mark.parametrize("uri", ["", "#missing", "http://evil/x", "#xpointer(/)"])
def test_references_that_do_not_name_one_element_are_refused(keystore, uri):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    _signature(env).find(f".//{ns.qname(ns.DS, 'Reference')}").set("URI", uri)
    with pytest.raises(InvalidSecurity):
        dsig.verify(_signature(env), key=client.public_key)


def test_xsw_body_moved_to_a_header_and_replaced_is_refused(keystore):
    """XSW: the signed Body moves into a header wrapper; a forged Body takes its place."""
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    original = env.body
    wrapper = etree.SubElement(env.header, f"{{{ns.APP}}}Wrapper")
    forged = etree.Element(original.tag)
    etree.SubElement(forged, f"{{{ns.APP}}}Echo").text = "transfer everything"
    env.root.replace(original, forged)
    wrapper.append(original)
    _assert_the_body_is_refused_as_wrapped(env, client)  # the signature still verifies


def _assert_the_body_is_refused_as_wrapped(env, client) -> None:
    """``env``, sent and read again, verifies, and its Body is refused as not the signed one."""
    env = soap.read_envelope(etree.tostring(env.root))
    verified = dsig.verify(_signature(env), key=client.public_key)
    with pytest.raises(FailedCheck) as refused:
        checks.require_body_signed(env, verified)
    assert refused.value.check == "wrapping"


def test_xsw_signed_body_nested_inside_the_forged_body_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    original = env.body
    forged = etree.Element(original.tag)
    env.root.replace(original, forged)
    wrapper = etree.SubElement(forged, f"{{{ns.APP}}}Wrapper")
    wrapper.append(original)
    etree.SubElement(forged, f"{{{ns.APP}}}Echo").text = "forged"
    _assert_the_body_is_refused_as_wrapped(env, client)


def test_xsw_timestamp_moved_out_of_the_security_header_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    security = wss.find_security_header(env)
    ts = security.find(wss.TIMESTAMP)
    holder = etree.SubElement(env.header, f"{{{ns.APP}}}Holder")
    holder.append(ts)
    security.insert(0, add_timestamp(etree.Element("x"), 99999.0))  # fresh, unsigned
    env = soap.read_envelope(etree.tostring(env.root))
    verified = dsig.verify(_signature(env), key=client.public_key)
    consumed = wss.find_security_header(env).find(wss.TIMESTAMP)
    with pytest.raises(FailedCheck) as refused:
        checks.require_signed(verified, consumed, "the Timestamp")
    assert refused.value.check == "wrapping"
    moved = env.header.find(f"{{{ns.APP}}}Holder")[0]
    with pytest.raises(FailedCheck) as refused:
        checks.require_in_security_header(env, moved, "the Timestamp")
    assert refused.value.check == "wrapping"


def test_xsw_duplicate_body_with_the_same_id_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    twin = copy.deepcopy(env.body)
    twin[0].text = "forged"
    env.header.append(twin)
    with pytest.raises(InvalidSecurity, match="duplicate id"):
        dsig.verify(_signature(env), key=client.public_key, ids=None)


@pytest.mark.parametrize(
    "old, new",
    [
        (b"<u:Created>2026-01-01T00:00:10", b"<u:Created>2026-01-01T00:00:11"),
        (b"<u:Expires>2026-01-01T00:05:10", b"<u:Expires>2026-01-01T01:05:10"),
        (b"<ds:DigestValue>", b"<ds:DigestValue>AAAA"),
        (b'Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>', b"/>"),
    ],
    ids=["timestamp-created", "timestamp-expires", "digest-value", "c14n-transform"],
)
def test_a_changed_byte_in_any_signed_part_is_a_typed_fault(keystore, old, new):
    from sim.errors import SecurityFault

    client = keystore.identity("client-0")
    data = signed_message(client).to_bytes()
    assert old in data, data
    try:
        env = soap.read_envelope(data.replace(old, new, 1))
        dsig.verify(_signature(env), key=client.public_key)
    except SecurityFault:
        return
    pytest.fail("tampered message verified")


def test_signed_message_size_does_not_depend_on_time_or_payload_ids(keystore):
    client = keystore.identity("client-0")
    sizes = {len(signed_message(client, now=now).to_bytes()) for now in (0.0, 1.5, 86399.999)}
    assert len(sizes) == 1


def test_xsw_second_timestamp_in_the_security_header_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    security = wss.find_security_header(env)
    add_timestamp(security, 99999.0)  # an unsigned, fresh twin before the signed one
    env = soap.read_envelope(etree.tostring(env.root))
    with pytest.raises(InvalidSecurity):
        wss.read_timestamp(wss.find_security_header(env))


def test_xsw_token_moved_into_a_wrapper_header_is_refused(keystore):
    client = keystore.identity("client-0")
    env = _reparsed(signed_message(client))
    bst = wss.find_security_header(env).find(ns.qname(ns.WSSE, "BinarySecurityToken"))
    etree.SubElement(env.header, f"{{{ns.APP}}}Wrapper").append(bst)
    env = soap.read_envelope(etree.tostring(env.root))
    moved = env.header.find(f"{{{ns.APP}}}Wrapper")[0]
    with pytest.raises(FailedCheck) as refused:
        checks.require_in_security_header(env, moved, "the signing token")
    assert refused.value.check == "wrapping"


def test_a_replayed_signed_message_is_refused_by_its_signature_value(keystore):
    client = keystore.identity("client-0")
    data = signed_message(client).to_bytes()
    cache = checks.ReplayCache(capacity=100, ttl=600.0)
    first = dsig.verify(_signature(soap.read_envelope(data)), key=client.public_key)
    cache.check_and_add(first.value, now=10.0)
    again = dsig.verify(_signature(soap.read_envelope(data)), key=client.public_key)
    with pytest.raises(InvalidSecurity) as refused:
        cache.check_and_add(again.value, now=11.0)
    assert refused.value.check == "replay"


# --- interoperability: what third-party signers write ---------------------------------------

EXC = "http://www.w3.org/2001/10/xml-exc-c14n#"
DS_NS = ns.DS


def _hmac_signed(key: bytes, *, inclusive_prefixes=()) -> soap.Envelope:
    """An envelope with a Timestamp and a Body signed with HMAC-SHA1 by our signer."""
    env = soap.new_envelope()
    soap.add_addressing(env, action="urn:wssim:app:Echo", to="https://provider/")
    security = wss.add_security_header(env)
    ts = add_timestamp(security, 0.0)
    etree.SubElement(env.body, f"{{{ns.APP}}}Echo").text = "hello"
    security.append(
        dsig.sign(
            [env.body, ts],
            key,
            algorithm=SignatureAlg.HMAC_SHA1,
            inclusive_prefixes=inclusive_prefixes,
        )
    )
    return env


def _xmlsec1_sign(tool, tmp_path, template: bytes, key: bytes) -> bytes:
    """``template`` signed by xmlsec1 with the HMAC ``key`` (it recomputes every DigestValue
    and the SignatureValue): an independent signer."""
    (tmp_path / "tpl.xml").write_bytes(template)
    (tmp_path / "k.bin").write_bytes(key)
    args = [tool, "--sign", "--hmackey", str(tmp_path / "k.bin")]
    for attr, node in ID_ATTRS:
        args += [f"--id-attr:{attr}", node]
    args += ["--output", str(tmp_path / "signed.xml"), str(tmp_path / "tpl.xml")]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return (tmp_path / "signed.xml").read_bytes()


def _resign(env: soap.Envelope, key: bytes) -> None:
    """Recompute the HMAC SignatureValue over the (changed) SignedInfo, as an attacker holding
    the key would."""
    signature = _signature(env)
    value = hmac.digest(key, crypto.exc_c14n(signature[0]), "sha1")
    signature.find(ns.qname(DS_NS, "SignatureValue")).text = base64.b64encode(value).decode()


def test_inclusive_namespaces_in_the_canonicalization_method_are_honoured(xmlsec1, tmp_path):
    """The WSS4J/CXF default layout: ec:InclusiveNamespaces inside SignedInfo's
    CanonicalizationMethod. The prefixes listed ("s", "a": the Envelope's, not used inside
    SignedInfo) are in the canonical SignedInfo that xmlsec1 signs, so the signature verifies
    only if the receiver honours the list."""
    key = os.urandom(32)
    env = _hmac_signed(key)
    method = _signature(env).find(f".//{ns.qname(DS_NS, 'CanonicalizationMethod')}")
    inclusive = etree.SubElement(method, f"{{{EXC}}}InclusiveNamespaces", nsmap={"ec": EXC})
    inclusive.set("PrefixList", "s a")
    signed = _xmlsec1_sign(xmlsec1, tmp_path, env.to_bytes(), key)
    code, err = xmlsec1_verify(xmlsec1, tmp_path, signed, "--hmackey", str(tmp_path / "k.bin"))
    assert code == 0, err
    envelope = soap.read_envelope(signed)
    verified = dsig.verify(_signature(envelope), key=key)
    assert verified.covers(envelope.body)
    # honoured, not ignored: without the PrefixList the canonical SignedInfo differs
    ignored = soap.read_envelope(signed.replace(b' PrefixList="s a"', b""))
    with pytest.raises(FailedCheck, match="signature"):
        dsig.verify(_signature(ignored), key=key)


def _no_transforms(data: bytes) -> bytes:
    return re.sub(rb"<ds:Transforms>.*?</ds:Transforms>", b"", data)


def test_a_reference_without_transforms_is_refused_where_xmlsec1_digests_inclusive_c14n(
    xmlsec1, tmp_path
):
    """XMLDSig 4.3.3.2: without Transforms a same-document reference is digested over its
    inclusive C14N 1.0 form (as xmlsec1 does); we accept only the exclusive C14N transform
    (the WS-I Basic Security Profile's rule) and refuse the reference with a typed fault,
    before the key is even resolved."""
    key = os.urandom(32)
    template = _no_transforms(_hmac_signed(key).to_bytes())
    assert b"<ds:Transforms>" not in template
    signed = _xmlsec1_sign(xmlsec1, tmp_path, template, key)
    code, err = xmlsec1_verify(xmlsec1, tmp_path, signed, "--hmackey", str(tmp_path / "k.bin"))
    assert code == 0, err  # a valid signature, for xmlsec1
    resolved = []
    with pytest.raises(UnsupportedAlgorithm, match="no exclusive C14N transform") as refused:
        dsig.verify(
            _signature(soap.read_envelope(signed)), key=lambda info: resolved.append(info) or key
        )
    assert refused.value.check == "algorithm" and resolved == []


def test_a_reference_without_transforms_digested_as_exclusive_c14n_is_refused(xmlsec1, tmp_path):
    """The disagreement the campaign found: a signer digesting a reference without Transforms
    over its exclusive form was accepted, where xmlsec1 (inclusive C14N 1.0) refuses it."""
    key = os.urandom(32)
    env = soap.read_envelope(_no_transforms(_hmac_signed(key).to_bytes()))
    _resign(env, key)
    (tmp_path / "k.bin").write_bytes(key)
    code, _ = xmlsec1_verify(
        xmlsec1, tmp_path, env.to_bytes(), "--hmackey", str(tmp_path / "k.bin")
    )
    assert code != 0
    with pytest.raises(UnsupportedAlgorithm):
        dsig.verify(_signature(env), key=key)


def test_an_enveloped_signature_without_exclusive_c14n_is_refused(keystore):
    """Enveloped-signature alone leaves a node-set, digested with inclusive C14N 1.0 too."""
    sts = keystore.identity("sts")
    root = etree.fromstring(b'<a:Thing xmlns:a="urn:a" ID="t1"><a:v>x</a:v></a:Thing>')
    signature = dsig.sign([root], sts.private_key, algorithm=SignatureAlg.RSA_SHA1, enveloped=True)
    root.append(signature)
    transform = signature.find(f".//{ns.qname(DS_NS, 'Transform')}[2]")
    transform.getparent().remove(transform)
    policy = dsig.SignaturePolicy(allow_enveloped=True)
    with pytest.raises(UnsupportedAlgorithm, match="no exclusive C14N transform"):
        dsig.verify(signature, key=sts.public_key, policy=policy)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (b"<s:Envelope ", b'<s:Envelope xmlns:rel="relative/uri" ', "in scope of SignedInfo"),
        (b"hello</", b'<r:x xmlns:r="relative"/>hello</', "in the Body only"),
    ],
)
def test_a_relative_namespace_uri_is_a_typed_fault(xmlsec1, tmp_path, old, new, where):
    """C14N 1.0 section 2.1: canonicalization MUST fail on a relative namespace URI; both
    backends refuse it (check ``c14n``), as xmlsec1 (libxml2) does."""
    key = os.urandom(32)
    data = _hmac_signed(key).to_bytes()
    assert old in data
    forged = data.replace(old, new, 1)
    (tmp_path / "k.bin").write_bytes(key)
    code, _ = xmlsec1_verify(xmlsec1, tmp_path, forged, "--hmackey", str(tmp_path / "k.bin"))
    assert code != 0
    with pytest.raises(InvalidSecurity, match="relative") as refused:
        dsig.verify(_signature(soap.read_envelope(forged)), key=key)
    assert refused.value.check == "c14n"


# --- what is read before the key, bounded; the signature before the references -------------


def _with_references(data: bytes, count: int) -> bytes:
    first = re.search(rb"<ds:Reference .*?</ds:Reference>", data).group(0)
    return data.replace(first, first * count, 1)


_TRANSFORM = f'<ds:Transform Algorithm="{EXC}"/>'.encode()


def _with_prefix_list(prefixes: bytes) -> Callable[[bytes], bytes]:
    def forge(data: bytes) -> bytes:
        return data.replace(
            _TRANSFORM,
            f'<ds:Transform Algorithm="{EXC}"><ec:InclusiveNamespaces xmlns:ec="{EXC}" '
            f'PrefixList="{prefixes.decode()}"/></ds:Transform>'.encode(),
            1,
        )

    return forge


def _with_declarations(count: int) -> Callable[[bytes], bytes]:
    def forge(data: bytes) -> bytes:
        declarations = b"".join(b' xmlns:n%d="urn:n:%d"' % (i, i) for i in range(count))
        return data.replace(b"<s:Envelope", b"<s:Envelope" + declarations, 1)

    return forge


BEYOND = {
    "33-references": lambda data: _with_references(data, 33),
    "3-transforms": lambda data: data.replace(_TRANSFORM, _TRANSFORM * 3, 1),
    "33-prefixes": _with_prefix_list(b" ".join(b"p%d" % i for i in range(33))),
    "1025-byte-prefix-list": _with_prefix_list(b"p" * 1025),
    "65-namespace-declarations": _with_declarations(65 - 3),  # s, a, u are declared already
}
WITHIN = {
    "32-references": lambda data: _with_references(data, 32 - 1),
    "32-prefixes": _with_prefix_list(b" ".join(b"p%d" % i for i in range(32))),
    "1024-byte-prefix-list": _with_prefix_list(b"p" * 1024),
    "64-namespace-declarations": _with_declarations(64 - 3 - 2),  # and ds, o in the header
}


@pytest.mark.parametrize("forge", BEYOND.values(), ids=BEYOND)
def test_beyond_a_bound_the_signature_is_refused_before_its_key_or_any_c14n(forge):
    key = os.urandom(32)
    env = soap.read_envelope(forge(_hmac_signed(key).to_bytes()))
    ledger, resolved = Ledger(), []
    with pytest.raises(InvalidSecurity) as refused:
        dsig.verify(_signature(env), key=lambda info: resolved.append(info) or key, ledger=ledger)
    assert refused.value.check == "limits"
    assert resolved == [] and ledger.entries == []


@pytest.mark.parametrize("forge", WITHIN.values(), ids=WITHIN)
def test_at_a_bound_a_signature_made_so_verifies(forge):
    """The bounds refuse nothing a signer within them makes (the same bytes, re-signed)."""
    key = os.urandom(32)
    env = soap.read_envelope(forge(_hmac_signed(key).to_bytes()))
    for reference in _signature(env).iter(ns.qname(DS_NS, "Reference")):
        transform = reference.find(f".//{ns.qname(DS_NS, 'Transform')}")
        inclusive = transform.find(f"{{{EXC}}}InclusiveNamespaces")
        prefixes = inclusive.get("PrefixList").split() if inclusive is not None else ()
        target = dsig.index_ids(env.root)[reference.get("URI")[1:]]
        canonical = crypto.exc_c14n(target, inclusive_prefixes=prefixes)
        reference.find(ns.qname(DS_NS, "DigestValue")).text = base64.b64encode(
            hashlib.sha1(canonical).digest()
        ).decode()
    _resign(env, key)
    assert dsig.verify(_signature(env), key=key).covers(env.body)


def test_the_signature_value_is_verified_before_any_reference_is_digested():
    """A changed Body and a SignatureValue that does not verify: the signature is what
    fails, and no reference was canonicalized (WSS4J's order)."""
    key = os.urandom(32)
    data = _hmac_signed(key).to_bytes().replace(b"hello", b"jello", 1)
    env = soap.read_envelope(data)
    _resign(env, os.urandom(32))  # some other key
    ledger = Ledger()
    with pytest.raises(FailedCheck, match="signature"):
        dsig.verify(_signature(env), key=key, ledger=ledger)
    assert [op for op, _ in ledger.entries] == ["c14n", "hmac"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"</ds:DigestValue>", b"<!---->A</ds:DigestValue>", "ds:DigestValue holds a comment"),
        (b"</ds:SignatureValue>", b"<!---->A</ds:SignatureValue>", "ds:SignatureValue holds"),
        (b"<ds:DigestValue>", b"<ds:DigestValue>!", "ds:DigestValue is not valid base64"),
        (b"<ds:SignatureValue>", b"<ds:SignatureValue>!", "ds:SignatureValue is not valid"),
        (
            b'sha1"/><ds:DigestValue>',
            b'sha1"><x/></ds:DigestMethod><ds:DigestValue>',
            "unexpected x in ds:DigestMethod",
        ),
        (b"<ds:DigestValue>", b"<x/><ds:DigestValue>", "unexpected x in the ds:Reference"),
        (b"</ds:Reference>", b"</ds:Reference><x/>", "unexpected x in ds:SignedInfo"),
        (b"</ds:DigestValue>", b"</ds:DigestValue><x/>", "unexpected x in the ds:Reference"),
        (b'"/></ds:Transforms>', b'"><x/></ds:Transform></ds:Transforms>', "unexpected x in"),
    ],
)
def test_what_signed_info_holds_is_read_whole_and_in_its_place(old, new, message):
    key = os.urandom(32)
    data = _hmac_signed(key).to_bytes()
    assert old in data
    env = soap.read_envelope(data.replace(old, new, 1))
    with pytest.raises(InvalidSecurity, match=message):
        dsig.verify(_signature(env), key=key)


def test_signed_info_in_another_order_is_refused():
    key = os.urandom(32)
    env = _hmac_signed(key)
    signed_info = _signature(env)[0]
    signed_info.insert(0, signed_info[1])  # SignatureMethod first
    with pytest.raises(InvalidSecurity, match="where ds:CanonicalizationMethod belongs"):
        dsig.verify(_signature(env), key=key)


def test_comments_between_the_parts_of_signed_info_are_harmless():
    """C14N drops them from what is signed, and they hold no value: read past them."""
    key = os.urandom(32)
    data = _hmac_signed(key).to_bytes()
    data = data.replace(b"<ds:Reference ", b"<!-- x --><ds:Reference ").replace(
        b"<ds:DigestValue>", b"<!-- y --><ds:DigestValue>"
    )
    env = soap.read_envelope(data)
    assert dsig.verify(_signature(env), key=key).covers(env.body)


@pytest.mark.parametrize("enveloped", [False, True])
@pytest.mark.parametrize("prefixes", [(), ("saml2", "xs")])
@pytest.mark.parametrize("signature_id", [None, "SIG-1"])
def test_the_signed_info_signed_is_the_canonical_form_of_the_one_written(
    enveloped, prefixes, signature_id
):
    """sign_text signs the SignedInfo in the canonical form it writes without parsing it:
    exactly the exclusive C14N of the SignedInfo a receiver parses from its text."""
    key, ledger = os.urandom(32), Ledger()
    text = dsig.sign_text(
        [("a-1", b"d" * 20), ("b-2", b"e" * 20)],
        key,
        algorithm=SignatureAlg.HMAC_SHA1,
        key_info=None,
        inclusive_prefixes=prefixes,
        enveloped=enveloped,
        signature_id=signature_id,
        ledger=ledger,
    )
    signature = etree.fromstring(text)
    canonical = crypto.exc_c14n(signature[0])
    assert ledger.entries == [("c14n", len(canonical)), ("hmac", len(canonical))]
    assert base64.b64decode(signature[1].text) == hmac.digest(key, canonical, "sha1")
    assert len(signature) == 2  # no ds:KeyInfo without key_info
    assert signature.get("Id") == signature_id


def test_a_tree_signature_is_the_text_signature_over_the_elements_digests(keystore):
    """sign digests the elements where they stand and writes what sign_text writes."""
    client = keystore.identity("client-0")
    env = signed_message(client)
    security = wss.find_security_header(env)
    timestamp = security.find(wss.TIMESTAMP)
    digests = [
        (part.get(ns.qname(ns.WSU, "Id")), hashlib.sha1(crypto.exc_c14n(part)).digest())
        for part in (env.body, timestamp)
    ]
    written = security.find(ns.qname(ns.DS, "Signature"))
    text = dsig.sign_text(
        digests,
        client.private_key,
        algorithm=SignatureAlg.RSA_SHA1,
        key_info=etree.tostring(written[2][0]).decode(),
    )
    # RSA PKCS#1 v1.5 is deterministic: the same SignedInfo gives the same value
    assert crypto.exc_c14n(etree.fromstring(text)) == crypto.exc_c14n(written)
