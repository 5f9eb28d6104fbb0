"""Reading a protocol engine's Step: the message it sends and how it ends (the SimPy model
and the testbed's driver both read steps this way)."""

from __future__ import annotations

from sim.protocol.api import AppDone, Send, SessionClosed, Step


def first_events(step: Step) -> tuple[Send | None, AppDone | SessionClosed | None]:
    """A step's first Send (one message is in flight per chain) and its last result."""
    send = result = None
    for event in step.events:
        if isinstance(event, Send):
            send = send or event
        elif isinstance(event, (AppDone, SessionClosed)):
            result = event
    return send, result
