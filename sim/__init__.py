"""wssim: a discrete-event simulator of WS-Trust / WS-SecureConversation / WS-Security
session strategies that exchanges real SOAP messages over modeled links."""

__version__ = "0.1.0"

from sim import _kernel

_kernel.check_built()  # the pure-Python backend is several times slower: say so
