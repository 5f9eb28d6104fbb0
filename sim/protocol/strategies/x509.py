"""``x509``: mutual certificates, every request and response signed with RSA and encrypted
with a per-message EncryptedKey. The baseline."""

from __future__ import annotations

from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind
from sim.protocol.base import Client, Provider
from sim.protocol.sending import app_response, send
from sim.protocol.setup import APP_ACTION, APP_RESPONSE_ACTION, PROVIDER_ADDRESS, Setup
from sim.wire import soap
from sim.wire.checks import ReplayCache

OPTIONS: set[str] = set()


class X509Client(Client):
    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.identity_name, self.identity = setup.client_identity(client_id)
        self.provider = setup.identity("provider")
        self.replay = ReplayCache()

    def start(self, now):
        envelope = soap.new_envelope()
        self.address_request(envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(envelope, self.payload)
        data = self.seal_asymmetric(envelope, now, self.provider)
        return send(PROVIDER, data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)

    def on_reply(self, envelope, sender, now):
        self.open_asymmetric(envelope, now, signer="provider")
        return [self.done(p.get_payload(envelope))]


class X509Provider(Provider):
    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        checked = self.open_asymmetric(envelope, now)
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = self.seal_asymmetric(response, now, p.CertificateRecipient(checked.certificate))
        return app_response(sender, out)
