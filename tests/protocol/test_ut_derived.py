"""``ut-derived``: the response derives its keys from a UsernameToken it carries itself (its
own Salt, the request's Iteration count), so any receiver holding the password can read it
without remembering the request; Iteration counts below 1000 are refused as options."""

from __future__ import annotations

import os
import re

import pytest
from lxml import etree

from sim.errors import ScenarioError
from sim.protocol.harness import Harness
from sim.wire import ns
from tests.cli.conftest import assert_usage_error, wssim

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU_ID = f"{{{ns.WSU}}}Id"


def _exchange(make):
    outcome = Harness(make("ut-derived")).request(b"hello", 0.0)
    [done] = outcome.results
    assert done.ok and done.payload == b"hello"
    [request, response] = [etree.fromstring(d.send.data) for d in outcome.deliveries]
    return request, response


def _token(message):
    [token] = message.iter(f"{{{WSSE}}}UsernameToken")
    return token


def test_the_response_derives_from_a_username_token_it_carries(make):
    request, response = _exchange(make)
    own = _token(response)
    references = {
        r.get("URI")
        for dkt in response.iter(f"{{{ns.WSC}}}DerivedKeyToken")
        for r in dkt.iter(f"{{{WSSE}}}Reference")
    }
    assert references == {f"#{own.get(WSU_ID)}"}  # a token of the same message
    theirs = _token(request)
    assert own.findtext(f"{{{WSSE}}}Username") == theirs.findtext(f"{{{WSSE}}}Username")
    assert own.findtext(f"{{{WSSE11}}}Salt") != theirs.findtext(f"{{{WSSE11}}}Salt")
    assert own.findtext(f"{{{WSSE11}}}Iteration") == theirs.findtext(f"{{{WSSE11}}}Iteration")
    assert own.find(f"{{{WSSE}}}Password") is None


def _client_reading(make, edit):
    """The client's verdict (the check that refused, or None) on the provider's real
    response with ``edit`` applied to its bytes."""
    strategy = make("ut-derived")
    client, provider = strategy.client("client-0"), strategy.server("provider", "provider-0")
    [request] = client.request(b"hello", now=0.0).events
    [reply] = provider.receive(request.data, sender="client-0", now=0.1).events
    assert reply.fault is None
    edited = edit(reply.data)
    assert (edited == reply.data) == (edit is _unchanged)
    client.receive(edited, sender="provider-0", now=0.2)
    return client.last_refusal


def _unchanged(data: bytes) -> bytes:
    return data


def test_the_client_refuses_a_response_token_naming_another_user(make):
    refusal = _client_reading(make, lambda data: data.replace(b">user-", b">usEr-", 1))
    assert refusal == "authentication"


def test_the_client_refuses_a_response_token_with_another_iteration_count(make):
    refusal = _client_reading(
        make, lambda data: re.sub(rb"(Iteration[^>]*>)1000<", rb"\g<1>1001<", data, count=1)
    )
    assert refusal == "iterations"


def test_the_client_accepts_the_unchanged_response(make):
    assert _client_reading(make, _unchanged) is None


@pytest.mark.parametrize("option", ["iterations", "max_iterations"])
@pytest.mark.parametrize("value", [1, 999])
def test_iteration_counts_below_1000_are_refused_naming_the_option(make, option, value):
    with pytest.raises(ScenarioError) as error:
        make("ut-derived", {option: value})
    assert error.value.key == f"strategy_options.ut-derived.{option}"
    assert "at least 1000" in error.value.message


def test_the_command_refuses_999_iterations_with_exit_status_2(tmp_path):
    result = wssim(
        "run",
        "scenarios/ut-derived.toml",
        "--set",
        "strategy_options.ut-derived.iterations=999",
        "--out",
        tmp_path / "out",
        env={**os.environ, "WSSIM_KEY_DIR": str(tmp_path / "keys")},
    )
    assert_usage_error(result, "strategy_options.ut-derived.iterations", "1000")


def test_salt_and_iteration_are_written_with_the_wsse11_prefix(make):
    """Both messages write wsse11:Salt and wsse11:Iteration under the prefix the header uses
    for WSS 1.1 (``k``), not a generated ``ns0``."""
    for message in _exchange(make):
        text = etree.tostring(_token(message)).decode()
        for local in ("Salt", "Iteration"):
            assert re.search(rf'<k:{local} xmlns:k="{re.escape(WSSE11)}">', text), text
        assert "ns0:" not in text
