"""Attacks from outside: forged bytes fed to live receivers.

Each test runs real engines in a live session (the in-memory harness, or the engines driven
by hand), takes the bytes of real messages, forges them as an attacker on the wire would,
feeds them to a live receiver and checks the refusal: a SOAP fault with a typed code from a
server, a failed application message and a named check from a client. Where the refusal
must come before costly work, the receiver's ledger for the forged message is checked too.
"""
