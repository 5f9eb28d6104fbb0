"""The TLS of ``sct-tlsnego`` (``sct_tlsnego.py``): Python's ``ssl`` over memory BIOs, with
the provider's identity loaded into it."""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from sim.errors import FailedCheck
from sim.protocol.setup import Setup


def load_identity(context: ssl.SSLContext, certificate: bytes, private_key: bytes) -> None:
    """Give ``context`` a certificate and its private key (PEM). Python's ``ssl`` loads them
    from a file only: a file only this user can read, in a folder removed once loaded."""
    with tempfile.TemporaryDirectory(prefix="wssim-tls-") as directory:
        path = Path(directory) / "identity.pem"
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(private_key + certificate)
        context.load_cert_chain(path)


def tls_contexts(setup: Setup) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(client, server) TLS 1.2 contexts with the provider's certificate, built once."""
    if "tls" not in setup.shared:
        provider, ca = setup.identity("provider"), setup.keystore.ca
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if setup.rsa_bits < 2048:
            server.set_ciphers("DEFAULT:@SECLEVEL=0")  # the scenario asked for 1024-bit keys
        load_identity(
            server,
            provider.pem,
            provider.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.load_verify_locations(cadata=ca.pem.decode())
        for context in (server, client):
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        setup.shared["tls"] = (client, server)
    return setup.shared["tls"]


class Tunnel:
    """One end of a TLS connection over memory BIOs."""

    def __init__(self, context: ssl.SSLContext, server_side: bool) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side)

    def step(self, data: bytes = b"") -> tuple[bytes, bool]:
        """Feed ``data``; return what to send and whether the handshake is complete."""
        if data:
            self.incoming.write(data)
        try:
            self.tls.do_handshake()
            complete = True
        except ssl.SSLWantReadError:
            complete = False
        except ssl.SSLError as exc:
            raise FailedCheck(f"TLS negotiation failed: {exc.reason}", check="tls") from None
        return self.outgoing.read(), complete
