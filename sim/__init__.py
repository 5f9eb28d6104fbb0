"""wssim: a discrete-event simulator of WS-Trust / WS-SecureConversation / WS-Security
session strategies that exchanges real SOAP messages over modeled links."""

__version__ = "0.1.0"
