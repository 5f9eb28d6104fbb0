"""``ut-derived`` (seed 000, last case): no STS. Each request carries a UsernameToken with a
fresh wsse11:Salt and an Iteration count and no password; the key derived from the password
(UsernameToken Profile 1.1) is the source of DerivedKeyTokens that sign and encrypt the
request. The provider derives the same key from its password store; the response is
protected with keys derived from the same UsernameToken key."""

from __future__ import annotations

import sim.crypto as crypto
from sim.errors import (
    FailedAuthentication,
    InvalidSecurityToken,
    ScenarioError,
    UnknownDerivationSource,
)
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind, Send
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    Client,
    Server,
    Setup,
    app_response,
    option,
)
from sim.wire import soap, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Op
from sim.wire.ns import ValueType
from sim.wire.xmlutil import WSU_ID, fresh_bytes

OPTIONS = {"iterations", "max_iterations"}
#: UsernameToken Profile 1.1 §4: the Iteration count SHOULD be at least 1000
MIN_ITERATIONS = 1000


def ut_reference(token_id: str):
    return wss.str_reference(f"#{token_id}", ValueType.USERNAME_TOKEN.value)


def iteration_bounds(options) -> tuple[int, int]:
    """(the clients' Iteration count, the most a provider derives with)."""
    most = option(options, "max_iterations", 5000, int, low=MIN_ITERATIONS, high=1_000_000)
    iterations = option(options, "iterations", MIN_ITERATIONS, int, low=MIN_ITERATIONS)
    if iterations > most:
        raise ScenarioError(
            "strategy_options.iterations",
            f"must be at most max_iterations ({most}), got {iterations}",
        )
    return iterations, most


class UtClient(Client):
    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.iterations, _ = iteration_bounds(setup.options)
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
        self.address_request(envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS)
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
        return [Send(to=PROVIDER, data=data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)]

    def on_reply(self, envelope, sender, now):
        def secret_for(reference):
            if reference.uri != f"#{self.token_id}":
                raise UnknownDerivationSource("response keys derive from another token")
            return self.key

        self.open_symmetric(envelope, now, secret_for)
        return [self.done(p.get_payload(envelope))]


class UtProvider(Server):
    role = PROVIDER
    request_actions = frozenset({APP_ACTION})

    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup)
        self.replay = setup.replay_cache(self.role, node_id)
        _, self.max_iterations = iteration_bounds(setup.options)

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        security = wss.find_security_header(envelope)
        tokens = [t for t in security if t.tag == wss.USERNAME_TOKEN]
        if len(tokens) != 1:
            raise InvalidSecurityToken(
                f"expected one UsernameToken in the security header, found {len(tokens)}"
            )
        [token_el] = tokens
        if not token_el.get(WSU_ID):
            raise InvalidSecurityToken("the UsernameToken has no wsu:Id to derive keys from")
        token_uri = f"#{token_el.get(WSU_ID)}"
        derived: list[bytes] = []

        def secret_for(reference):
            if reference.uri != token_uri:
                raise UnknownDerivationSource("keys must derive from this message's UsernameToken")
            if derived:
                return derived[0]
            token = wss.read_username_token(token_el)
            if token.salt is None or token.iteration is None or token.password is not None:
                raise InvalidSecurityToken(
                    "a key-derivation UsernameToken has Salt, Iteration and no password"
                )
            if len(token.salt) != 16 or token.salt[0] != 1:
                raise InvalidSecurityToken("the salt must be 16 bytes for MAC use")
            # Bounded before deriving: the derivation is the costly step, and it runs
            # before the signature proves anything.
            if not MIN_ITERATIONS <= token.iteration <= self.max_iterations:
                raise InvalidSecurityToken(
                    f"the Iteration count must be {MIN_ITERATIONS}..{self.max_iterations}",
                    check="iterations",
                )
            password = self.setup.passwords.get(token.username)
            if password is None:
                raise FailedAuthentication("unknown user", check="authentication")
            self.ledger.record(Op.UT_DERIVE, token.iteration)
            derived.append(crypto.ut_derive_key(password.encode(), token.salt, token.iteration))
            return derived[0]

        self.open_symmetric(envelope, now, secret_for)
        payload = p.get_payload(envelope)
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.put_payload(response, payload, "Response")
        out = p.protect_symmetric(
            response,
            secret=derived[0],
            source_reference=lambda: wss.str_reference(token_uri, ValueType.USERNAME_TOKEN.value),
            now=now,
            ledger=self.ledger,
            suite_=self.setup.suite,
            keylog=self.setup.log_key,
        )
        return app_response(sender, out)
