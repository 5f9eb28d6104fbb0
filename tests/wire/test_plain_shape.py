"""The fast reader of the plain derived-key shape gives the general reader's outcome.

Every message here is a real one (``protect_symmetric``), mutated one part at a time: each
element removed, repeated, given a comment, a child or text; each attribute and value
changed; ids made to collide. Each is read twice, by ``unprotect_symmetric`` as it is and
with the fast reader switched off: the outcome must be the same — the typed fault and its
text, or the keys, ledger entries (in order), signed elements and decrypted document. The
kernel's shape walk is checked against its pure-Python twin on every one of them. Requests
are read as a service reads them, replies as a client does (derived keys are directional).
"""

from __future__ import annotations

import copy

import pytest
from lxml import etree

import sim.crypto._reference as reference
import sim.protocol.protection as p
import sim.protocol.unprotect as unprotect
from sim.errors import BadContextToken, SecurityFault
from sim.wire import checks, layout, ns, plain_shape, sc, soap, wss, xenc
from sim.wire.ledger import Ledger
from sim.wire.ns import ValueType
from sim.wire.suites import with_data_encryption
from tests.crypto.kernels import fastshape, requires_kernel

SECRET = bytes(range(32))
CONTEXT = "urn:uuid:ctx"


def _message(relates_to: str | None = None, suite_=p.DEFAULT_SUITE) -> bytes:
    envelope = soap.new_envelope()
    soap.add_addressing(
        envelope, action="urn:wssim:app:Process", to="https://p.example/s", relates_to=relates_to
    )
    p.put_payload(envelope, b"payload & <more> " * 20)
    return p.protect_symmetric(
        envelope,
        secret=SECRET,
        source_reference=lambda: wss.str_reference_text(CONTEXT, ValueType.SCT.value),
        now=12.5,
        ledger=Ledger(),
        suite_=suite_,
    )


MESSAGE = _message()
REPLY = _message(relates_to="urn:uuid:request")


def _secret(reference):
    if reference.uri != CONTEXT:
        raise BadContextToken("unknown security context", check="context")
    return SECRET


REQUEST, REPLY_WAY = sc.Direction.REQUEST, sc.Direction.REPLY


def _outcome(
    data: bytes,
    *,
    fast: bool,
    monkeypatch,
    now: float = 13.0,
    secret_for=_secret,
    direction: sc.Direction = REQUEST,
    causes: list | None = None,
    suite_=p.DEFAULT_SUITE,
):
    """What reading ``data`` gives: the fault, or what was established and charged.
    ``causes`` collects what failed inside a decryption stage (never part of the outcome:
    the peer sees one fault)."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(plain_shape, "read", lambda *args, **kwargs: None)
        ledger = Ledger()
        try:
            envelope = soap.read_envelope(data)
            checked = p.unprotect_symmetric(
                envelope,
                secret_for=secret_for,
                now=now,
                ledger=ledger,
                replay=checks.ReplayCache(),
                direction=direction,
                suite_=suite_,
            )
        except SecurityFault as fault:
            if causes is not None and fault.check == "decryption":
                cause = fault.__cause__
                causes.append(str(cause))
            return ("fault", type(fault).__name__, str(fault), fault.check, ledger.entries)
    verified = checked.verified
    return (
        "read",
        ledger.entries,
        verified.key,
        verified.value,
        verified.algorithm,
        [etree.tostring(target) for target in verified.references],
        etree.tostring(checked.envelope.root),
    )


def _security_and_body(root):
    header = root[0]
    security = next(child for child in header if child.tag == wss.SECURITY)
    return security, root[1]


def _mutants(data: bytes):
    """(name, bytes) of every one-part change of the message's Security header and Body."""
    root = etree.fromstring(data)
    security, body = _security_and_body(root)
    parts = [el for top in (security, body) for el in top.iter() if isinstance(el.tag, str)]
    for index, _ in enumerate(parts):

        def change(edit, index=index):
            tree = copy.deepcopy(root)
            security, body = _security_and_body(tree)
            parts = [el for top in (security, body) for el in top.iter() if isinstance(el.tag, str)]
            edit(parts[index], tree)
            return etree.tostring(tree)

        name = etree.QName(parts[index]).localname
        if parts[index] not in (security, body):
            yield f"{index}-{name}-removed", change(lambda el, t: el.getparent().remove(el))
            yield f"{index}-{name}-repeated", change(lambda el, t: el.addnext(copy.deepcopy(el)))
            yield (
                f"{index}-{name}-comment-before",
                change(lambda el, t: el.addprevious(etree.Comment("c"))),
            )
        yield f"{index}-{name}-comment-inside", change(lambda el, t: el.append(etree.Comment("c")))
        yield f"{index}-{name}-child", change(lambda el, t: etree.SubElement(el, "extra"))
        yield (
            f"{index}-{name}-whitespace",
            change(
                lambda el, t: setattr(el, "text", (el.text or "") + " ") if len(el) == 0 else None
            ),
        )
        if len(parts[index]) == 0 and parts[index].text:
            yield (
                f"{index}-{name}-text-changed",
                change(
                    lambda el, t: setattr(
                        el, "text", el.text[:-3] + ("AAA" if el.text[-3:] != "AAA" else "BBB")
                    )
                ),
            )
            yield f"{index}-{name}-text-not-base64", change(lambda el, t: setattr(el, "text", "*"))
        for attribute in parts[index].attrib:
            key = etree.QName(attribute).localname
            yield (
                f"{index}-{name}-@{key}-removed",
                change(lambda el, t, a=attribute: el.attrib.pop(a)),
            )
            yield (
                f"{index}-{name}-@{key}-changed",
                change(lambda el, t, a=attribute: el.set(a, el.get(a) + "x")),
            )
    # an id another element holds already
    yield "timestamp-id-of-the-body", _with_timestamp_id_of_body(root)
    # DerivedKeyTokens: what the one-part changes above cannot write
    yield "dkts-algorithm-p_sha1", _with_dkts(root, lambda dkt: dkt.set("Algorithm", sc.DK_P_SHA1))
    yield "dkts-algorithm-other", _with_dkts(root, lambda dkt: dkt.set("Algorithm", "urn:x"))
    for local, value in (("Offset", "1025"), ("Offset", "\u00b2"), ("Length", "200")):
        yield (
            f"dkts-{local}-{value!r}",
            _with_dkts(root, lambda dkt, name=local, v=value: _set_child(dkt, name, v)),
        )
    for direction in sc.Direction:
        label = sc.LABELS[direction].decode()
        yield (
            f"dkts-label-{direction.value}",
            _with_dkts(root, lambda dkt, v=label: _set_child(dkt, "Label", v)),
        )


def _set_child(dkt, local: str, value: str) -> None:
    dkt.find(f"{{{ns.WSC}}}{local}").text = value


def _with_dkts(root, edit) -> bytes:
    tree = copy.deepcopy(root)
    for dkt in tree.iter(sc.DKT):
        edit(dkt)
    return etree.tostring(tree)


def _with_timestamp_id_of_body(root) -> bytes:
    tree = copy.deepcopy(root)
    security, body = _security_and_body(tree)
    wsu_id = "{{{}}}Id".format(
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    )
    security[0].set(wsu_id, body.get(wsu_id))
    return etree.tostring(tree)


MUTANTS = list(_mutants(MESSAGE))


def test_the_fast_reader_reads_what_our_senders_write():
    for data, direction in ((MESSAGE, REQUEST), (REPLY, REPLY_WAY)):
        envelope = soap.read_envelope(data)
        security = wss.find_security_header(envelope)
        assert layout.find(security, envelope.body)
        timestamp, verified = plain_shape.read(
            envelope.root,
            security,
            envelope.body,
            secret_for=_secret,
            now=13.0,
            ledger=Ledger(),
            suite_=p.DEFAULT_SUITE,
            policy=unprotect._signature_policy(p.DEFAULT_SUITE),
            direction=direction,
        )
        assert verified.covers(envelope.body) and verified.covers(timestamp.element)


WRONG_PLAINTEXT = "the plaintext is not well-formed UTF-8 XML"


def test_the_mutations_take_the_fast_reader_to_its_every_step(monkeypatch):
    """Many changed messages pass the fast reader's first checks, so that the comparisons
    below also cover its decryption, digests and HMAC, not only its giving way. What failed
    inside the decryption stage is seen here only through the fault's cause: the peer sees
    one fault for all of them."""
    outcomes = []
    checked = plain_shape._checked

    def counting(*args):
        found = checked(*args)
        outcomes.append(found)
        return found

    monkeypatch.setattr(plain_shape, "_checked", counting)
    causes: list[str] = []
    results = [
        _outcome(data, fast=True, monkeypatch=monkeypatch, causes=causes) for _, data in MUTANTS
    ]
    assert len(outcomes) >= 50
    assert any("does not match" in cause for cause in causes)  # a reference digest
    assert "signature value does not verify" in causes  # the HMAC
    # a wrong derived key: its plaintext fails the padding check, or (about one key in 16,
    # whose last byte happens to be a valid pad length) the parse
    wrong_key = {"the padding or authentication tag is invalid", WRONG_PLAINTEXT}
    assert wrong_key & set(causes)
    faults = {
        result[2:4] for result in results if result[0] == "fault" and result[3] == "decryption"
    }
    assert faults == {(xenc.DECRYPTION_FAILED, "decryption")}
    assert any(result[0] == "read" for result in results)


@pytest.mark.parametrize(
    ("data", "direction"), [(MESSAGE, REQUEST), (REPLY, REPLY_WAY)], ids=["request", "reply"]
)
def test_a_plain_message_is_read_as_the_general_reader_reads_it(data, direction, monkeypatch):
    fast = _outcome(data, fast=True, monkeypatch=monkeypatch, direction=direction)
    assert fast[0] == "read"
    assert fast == _outcome(data, fast=False, monkeypatch=monkeypatch, direction=direction)


@pytest.mark.parametrize(
    ("data", "direction"), [(MESSAGE, REPLY_WAY), (REPLY, REQUEST)], ids=["request", "reply"]
)
def test_a_message_read_in_the_other_direction_is_refused_by_both_readers(
    data, direction, monkeypatch
):
    """A request reflected back as a reply (and a reply sent as a request) carries keys of
    the other direction: refused before anything is decrypted, by both readers alike."""
    fast = _outcome(data, fast=True, monkeypatch=monkeypatch, direction=direction)
    assert fast[:4] == ("fault", "InvalidSecurityToken", fast[2], "key-direction")
    assert fast == _outcome(data, fast=False, monkeypatch=monkeypatch, direction=direction)


@pytest.mark.parametrize(
    ("case", "now", "secret_for"),
    [
        ("expired", 10_000.0, _secret),
        ("unknown context", 13.0, lambda ref: _secret(wss.TokenReference(uri="urn:other"))),
        ("wrong secret", 13.0, lambda ref: bytes(32)),
    ],
)
def test_a_refused_plain_message_is_refused_as_the_general_reader_refuses_it(
    case, now, secret_for, monkeypatch
):
    fast = _outcome(MESSAGE, fast=True, monkeypatch=monkeypatch, now=now, secret_for=secret_for)
    assert fast[0] == "fault"
    assert fast == _outcome(
        MESSAGE, fast=False, monkeypatch=monkeypatch, now=now, secret_for=secret_for
    )


@pytest.mark.parametrize(("name", "data"), MUTANTS, ids=[name for name, _ in MUTANTS])
def test_every_changed_message_gets_the_general_readers_outcome(name, data, monkeypatch):
    assert _outcome(data, fast=True, monkeypatch=monkeypatch) == _outcome(
        data, fast=False, monkeypatch=monkeypatch
    )


@requires_kernel
@pytest.mark.parametrize(
    ("name", "data"),
    [("message", MESSAGE), *MUTANTS],
    ids=["message", *(name for name, _ in MUTANTS)],  # the bytes hold random ids
)
def test_the_kernel_walk_finds_what_its_python_twin_finds(name, data):
    try:
        envelope = soap.read_envelope(data)
        security = wss.find_security_header(envelope)
    except SecurityFault:
        return  # not a message anyone reads further
    for element, compiled in (
        (security, layout.SECURITY_LAYOUT),
        (envelope.body, layout.BODY_LAYOUT),
    ):
        kernel = fastshape.match_layout(element, compiled.program)
        twin = reference.match_layout(element, compiled.program)
        assert kernel == twin


GCM = with_data_encryption(p.DEFAULT_SUITE, "aes-gcm")


def test_an_aes_gcm_message_is_read_by_the_fast_reader_as_the_general_reader_reads_it(
    monkeypatch,
):
    data = _message(suite_=GCM)
    read, found = plain_shape.read, []

    def fast_reader(*args, **kwargs):
        found.append(read(*args, **kwargs))
        return found[-1]

    monkeypatch.setattr(plain_shape, "read", fast_reader)
    fast = _outcome(data, fast=True, monkeypatch=monkeypatch, suite_=GCM)
    assert fast[0] == "read" and found[0] is not None  # read by the fast reader
    assert "aes_gcm_decrypt" in {op for op, _ in fast[1]}
    assert fast == _outcome(data, fast=False, monkeypatch=monkeypatch, suite_=GCM)
    root = etree.fromstring(data)
    value = next(root.iter(ns.qname(ns.XENC, "CipherValue")))
    value.text = ("B" if value.text[0] != "B" else "C") + value.text[1:]
    forged = etree.tostring(root)
    refused = _outcome(forged, fast=True, monkeypatch=monkeypatch, suite_=GCM)
    assert refused[2:4] == (xenc.DECRYPTION_FAILED, "decryption")
    assert refused == _outcome(forged, fast=False, monkeypatch=monkeypatch, suite_=GCM)
