"""The sans-I/O events: fields by name only, message kinds as an Enum whose values are the
labels of the outputs."""

from __future__ import annotations

import pytest

from sim.protocol.api import AppDone, MessageKind, Send, Step
from sim.protocol.harness import Harness


def test_events_take_their_fields_by_name_only():
    with pytest.raises(TypeError):
        Send("provider", b"<x/>", "urn:a", MessageKind.APP_REQUEST)  # type: ignore[misc]
    with pytest.raises(TypeError):
        AppDone(True, b"payload")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Step((), ())  # type: ignore[misc]
    send = Send(to="provider", data=b"<x/>", action="urn:a", kind=MessageKind.APP_REQUEST)
    assert (send.to, send.action) == ("provider", "urn:a")


def test_a_message_kind_is_its_output_label():
    assert MessageKind.APP_REQUEST == "app-request"
    assert f"{MessageKind.RSTR_SCT:<10}|" == "rstr-sct  |"
    assert str(MessageKind.FAULT) == "fault"


def test_every_message_of_a_session_carries_a_message_kind(make):
    outcome = Harness(make("sct")).session([b"a"])
    kinds = [d.send.kind for d in outcome.deliveries]
    assert kinds and all(type(kind) is MessageKind for kind in kinds)


def test_a_message_is_a_token_service_exchange_unless_it_is_an_application_message_or_fault(
    make,
):
    """``base.send`` marks every message but application requests, responses and faults as
    an exchange with a token service (the STS, an SCT issuer), in every strategy."""
    from sim.protocol import STRATEGY_NAMES
    from sim.protocol.sending import send

    [event] = send("sts", b"<x/>", action="urn:a", kind=MessageKind.RST_ISSUE, tls=True)
    assert event.token_service and event.tls and not event.reply
    [event] = send("client-0", b"<x/>", action="urn:a", kind=MessageKind.APP_RESPONSE, reply=True)
    assert not event.token_service and event.reply
    application = {MessageKind.APP_REQUEST, MessageKind.APP_RESPONSE, MessageKind.FAULT}
    kinds = set()
    for name in STRATEGY_NAMES:
        for delivery in Harness(make(name)).session([b"a"]).deliveries:
            sent = delivery.send
            kinds.add(sent.kind)
            assert sent.token_service == (sent.kind not in application), (name, sent.kind)
    assert len(kinds - application) >= 8  # issue, SCT, renew, cancel, TLSNego legs
