"""``ut-derived`` (seed 000, last case): no STS. Each request carries a UsernameToken with a
fresh wsse11:Salt and an Iteration count and no password; the key derived from the password
(UsernameToken Profile 1.1) is the source of DerivedKeyTokens that sign and encrypt the
request. The provider derives the same key from its password store; the response is
protected with keys derived from the same UsernameToken key."""

from __future__ import annotations

import sim.crypto as crypto
from sim.errors import FailedAuthentication, InvalidSecurityToken, UnknownDerivationSource
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, Send
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    Client,
    Server,
    Setup,
    option,
)
from sim.wire import soap, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Op
from sim.wire.ns import ValueType
from sim.wire.xmlutil import WSU_ID, fresh_bytes

OPTIONS = {"iterations"}


def ut_reference(token_id: str):
    return wss.str_reference(f"#{token_id}", ValueType.USERNAME_TOKEN.value)


class UtClient(Client):
    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.iterations = option(setup.options, "iterations", 1000, int, low=1, high=100_000)
        self.user, self.password = setup.username(client_id)
        self.replay = ReplayCache()
        self.key: bytes | None = None
        self.token_id: str | None = None

    def start(self, now):
        salt = b"\x01" + fresh_bytes(15)
        token = wss.build_username_token(self.user, salt=salt, iteration=self.iterations)
        self.token_id = token.get(WSU_ID)
        self.ledger.record(Op.UT_DERIVE, self.iterations)
        self.key = crypto.ut_derive_key(self.password.encode(), salt, self.iterations)
        self.setup.log_key("ut-key", self.token_id, self.key)
        envelope = soap.new_envelope()
        soap.add_addressing(envelope, action=APP_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(envelope, self.payload)
        token_id = self.token_id
        data = p.protect_symmetric(
            envelope,
            secret=self.key,
            source_reference=lambda: ut_reference(token_id),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            tokens=[token],
            keylog=self.setup.log_key,
        )
        self.awaiting = "app"
        return [Send(PROVIDER, data, APP_ACTION, "app-request")]

    def on_reply(self, envelope, sender, now):
        def secret_for(reference):
            if reference.uri != f"#{self.token_id}":
                raise UnknownDerivationSource("response keys derive from another token")
            return self.key

        p.unprotect_symmetric(
            envelope,
            secret_for=secret_for,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
        )
        return [self.done(p.get_payload(envelope))]


class UtProvider(Server):
    role = PROVIDER

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.replay = ReplayCache()
        self.max_iterations = 100_000

    def handle(self, data, sender, now):
        envelope = soap.read_envelope(data, ledger=self.ledger)
        security = wss.find_security_header(envelope)
        found: dict[str, bytes] = {}

        def secret_for(reference):
            token_el = next(
                (
                    t
                    for t in security
                    if t.tag == wss.USERNAME_TOKEN and reference.uri == f"#{t.get(WSU_ID)}"
                ),
                None,
            )
            if token_el is None:
                raise UnknownDerivationSource("keys must derive from this message's UsernameToken")
            token = wss.read_username_token(token_el)
            if token.salt is None or token.iteration is None or token.password is not None:
                raise InvalidSecurityToken(
                    "a key-derivation UsernameToken has Salt, Iteration and no password"
                )
            if len(token.salt) != 16 or token.salt[0] != 1 or token.iteration < 1000:
                raise InvalidSecurityToken("salt must be 16 bytes for MAC use; iteration >= 1000")
            password = self.setup.passwords.get(token.username)
            if password is None:
                raise FailedAuthentication("unknown user", check="authentication")
            if reference.uri not in found:
                self.ledger.record(Op.UT_DERIVE, token.iteration)
                found[reference.uri] = crypto.ut_derive_key(
                    password.encode(), token.salt, token.iteration
                )
            return found[reference.uri]

        checked = p.unprotect_symmetric(
            envelope,
            secret_for=secret_for,
            now=now,
            ledger=self.ledger,
            replay=self.replay,
            suite_=self.setup.suite,
        )
        ((uri, key),) = found.items()
        response = soap.new_envelope()
        soap.add_addressing(
            response, action=APP_RESPONSE_ACTION, relates_to=checked.addressing.message_id
        )
        p.put_payload(response, p.get_payload(envelope), "Response")
        out = p.protect_symmetric(
            response,
            secret=key,
            source_reference=lambda: wss.str_reference(uri, ValueType.USERNAME_TOKEN.value),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            keylog=self.setup.log_key,
        )
        return [Send(sender, out, APP_RESPONSE_ACTION, "app-response", reply=True)]
