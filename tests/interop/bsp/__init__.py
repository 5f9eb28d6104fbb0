"""WS-I Basic Security Profile 1.1 requirements that can be read off a message, each a function
returning the message's violations (empty: the rule is met). Written from the profile's text
with lxml alone (no wssim code); ``docs/conformance.md`` lists where our senders meet each one.

Scope: the message's own security (the wsse:Security header, its references, the encrypted
parts); a SAML assertion's insides are the SAML verifier's (test_saml_independent.py)."""

from tests.interop.bsp import encryption, references, signatures
from tests.interop.bsp.message import RULES, Message

__all__ = ["RULES", "Message", "encryption", "references", "signatures"]
