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
