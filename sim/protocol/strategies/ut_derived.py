"""``ut-derived`` (seed 000, last case): no STS. Each request carries a UsernameToken with a
fresh wsse11:Salt and an Iteration count and no password; the key derived from the password
(UsernameToken Profile 1.1 §4) is the source of DerivedKeyTokens that sign and encrypt the
request. The provider derives the same key from its password store.

The response names its own source: a `#` reference names a token of the same message (WSS
1.1 §7.2), so the response carries a UsernameToken of its own — the same Username, a fresh
Salt the provider chose, the request's Iteration count, no password — and its
DerivedKeyTokens point at it. Both ends know the password, so both derive that key, and any
WS-Security receiver (WSS4J's UsernameToken processor) can too without remembering the
request."""

from __future__ import annotations

from collections.abc import Callable

import sim.crypto as crypto
from sim.errors import (
    FailedAuthentication,
    InvalidSecurityToken,
    ScenarioError,
    UnknownDerivationSource,
)
from sim.protocol import protection as p
from sim.protocol.api import PROVIDER, MessageKind
from sim.protocol.base import (
    APP_ACTION,
    APP_RESPONSE_ACTION,
    PROVIDER_ADDRESS,
    Actor,
    Client,
    Provider,
    Setup,
    option,
)
from sim.protocol.sending import app_response, send
from sim.wire import soap, wss
from sim.wire.checks import ReplayCache
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import ValueType
from sim.wire.xmlutil import WSU_ID, fresh_bytes

OPTIONS = {"iterations", "max_iterations"}
#: UsernameToken Profile 1.1 §4: the Iteration count SHOULD be at least 1000, WS-I BSP 1.1
#: R4218: MUST; WSS4J and the provider refuse fewer (a smaller option could only ever fail)
MIN_ITERATIONS = 1000
#: the first Salt byte of a key used for a MAC (UsernameToken Profile 1.1 §4)
MAC_SALT = b"\x01"


def ut_reference(token_id: str) -> str:
    """The text of an STR naming the UsernameToken ``token_id`` of the same message."""
    return wss.str_reference_text(f"#{token_id}", ValueType.USERNAME_TOKEN.value)


def iteration_bounds(options) -> tuple[int, int]:
    """(the clients' Iteration count, the most a provider derives with)."""
    most = option(options, "max_iterations", 5000, int, high=1_000_000)
    iterations = option(options, "iterations", MIN_ITERATIONS, int)
    for name, value in (("iterations", iterations), ("max_iterations", most)):
        if value < MIN_ITERATIONS:
            raise ScenarioError(
                f"strategy_options.{name}",
                f"must be at least {MIN_ITERATIONS} (WS-I BSP 1.1 R4218: WSS4J and the provider "
                f"refuse fewer), got {value}",
            )
    if iterations > most:
        raise ScenarioError(
            "strategy_options.iterations",
            f"must be at most max_iterations ({most}), got {iterations}",
        )
    return iterations, most


def keyed_token(actor: Actor, username: str, password: str, iterations: int):
    """A key-derivation UsernameToken (fresh MAC Salt, no password), its wsu:Id, and the key
    ``actor`` derives from ``password`` with it (charged and logged)."""
    token = wss.build_username_token(
        username, salt=MAC_SALT + fresh_bytes(15), iteration=iterations
    )
    token_id = token.get(WSU_ID)
    salt = wss.read_username_token(token).salt
    actor.ledger.record(Op.UT_DERIVE, iterations)
    key = crypto.ut_derive_key(password.encode(), salt, iterations)
    actor.setup.log_key("ut-key", token_id, key)
    return token, token_id, key


def only_username_token(envelope) -> tuple:
    """The message's one UsernameToken, with a wsu:Id, and its ``#`` reference."""
    tokens = [t for t in wss.find_security_header(envelope) if t.tag == wss.USERNAME_TOKEN]
    if len(tokens) != 1:
        raise InvalidSecurityToken(
            f"expected one UsernameToken in the security header, found {len(tokens)}"
        )
    [token] = tokens
    if not token.get(WSU_ID):
        raise InvalidSecurityToken("the UsernameToken has no wsu:Id to derive keys from")
    return token, f"#{token.get(WSU_ID)}"


def token_key_source(
    token_el, token_uri: str, *, password_of: Callable, iterations: Callable, ledger: Ledger
) -> Callable:
    """``secret_for`` of a message whose keys derive from ``token_el``: the reference must
    name it; its Salt, Iteration (``iterations(count)`` refuses a count the receiver will
    not derive with) and password are checked before the one, costly, derivation."""
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
        if len(token.salt) != 16 or token.salt[:1] != MAC_SALT:
            raise InvalidSecurityToken("the salt must be 16 bytes for MAC use")
        # Bounded before deriving: the derivation is the costly step, and it runs before
        # the signature proves anything.
        iterations(token.iteration)
        password = password_of(token.username)
        ledger.record(Op.UT_DERIVE, token.iteration)
        derived.append(crypto.ut_derive_key(password.encode(), token.salt, token.iteration))
        return derived[0]

    return secret_for


class UtClient(Client):
    def __init__(self, setup: Setup, client_id: str) -> None:
        super().__init__(setup, client_id)
        self.iterations, _ = iteration_bounds(setup.options)
        self.user, self.password = setup.username(client_id)
        self.replay = ReplayCache()

    def start(self, now):
        token, token_id, key = keyed_token(self, self.user, self.password, self.iterations)
        envelope = soap.new_envelope()
        self.address_request(envelope, APP_ACTION, APP_RESPONSE_ACTION, to=PROVIDER_ADDRESS)
        p.put_payload(envelope, self.payload)
        data = self.seal_symmetric(
            envelope, now, key, lambda: ut_reference(token_id), tokens=[token]
        )
        return send(PROVIDER, data, action=APP_ACTION, kind=MessageKind.APP_REQUEST)

    def on_reply(self, envelope, sender, now):
        token_el, token_uri = only_username_token(envelope)

        def own_user(username: str) -> str:
            if username != self.user:
                raise FailedAuthentication(
                    "the response names another user", check="authentication"
                )
            return self.password

        def own_count(iteration: int) -> None:
            # the client derives with the count it chose, and no other
            if iteration != self.iterations:
                raise InvalidSecurityToken(
                    f"the response's Iteration count must be {self.iterations}", check="iterations"
                )

        secret_for = token_key_source(
            token_el, token_uri, password_of=own_user, iterations=own_count, ledger=self.ledger
        )
        self.open_symmetric(envelope, now, secret_for)
        return [self.done(p.get_payload(envelope))]


class UtProvider(Provider):
    def __init__(self, setup: Setup, node_id: str, shared=None) -> None:
        super().__init__(setup, node_id, shared)
        _, self.max_iterations = iteration_bounds(setup.options)

    def handle(self, data, sender, now):
        envelope, addressing = self.read_request(data)
        token_el, token_uri = only_username_token(envelope)
        user: list[str] = []

        def known_user(username: str) -> str:
            password = self.setup.passwords.get(username)
            if password is None:
                raise FailedAuthentication("unknown user", check="authentication")
            user.append(username)
            return password

        def bounded(iteration: int) -> None:
            if not MIN_ITERATIONS <= iteration <= self.max_iterations:
                raise InvalidSecurityToken(
                    f"the Iteration count must be {MIN_ITERATIONS}..{self.max_iterations}",
                    check="iterations",
                )

        secret_for = token_key_source(
            token_el, token_uri, password_of=known_user, iterations=bounded, ledger=self.ledger
        )
        self.open_symmetric(envelope, now, secret_for)
        payload = p.get_payload(envelope)
        # the response's own source: the user's key under a Salt the provider chose
        iteration = wss.read_username_token(token_el).iteration
        password = self.setup.passwords[user[0]]
        token, token_id, key = keyed_token(self, user[0], password, iteration)
        response = soap.new_envelope()
        soap.add_addressing(response, action=APP_RESPONSE_ACTION, relates_to=addressing.message_id)
        p.put_payload(response, payload, "Response")
        out = self.seal_symmetric(
            response, now, key, lambda: ut_reference(token_id), tokens=[token]
        )
        return app_response(sender, out)
