"""MIT Kerberos, an implementation wssim did not write, against ours: a throw-away realm
(``kdb5_util``, ``kadmin.local``, ``krb5kdc`` on a free loopback port, all under pytest's
tmp dir) whose principals have the passwords our realm derives its keys from.

* MIT's keytab holds the keys our string-to-key computes (RFC 3962, both AES enctypes);
* MIT's KDC answers our AS-REQ and TGS-REQ: it accepts our pre-authentication, our AP-REQ
  (authenticator, checksum over the request body), and we decrypt its replies;
* MIT's KDC accepts the TGT our KDC issued, in the TGS-REQs of a whole ``kerberos`` session
  as our client sent them, and its replies decrypt under the session keys of the key log;
* a service ticket MIT issued (``kinit`` + ``kvno``, read from the ccache) is accepted by our
  provider in a real message, which derives the session key MIT put in the ccache."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree
from minikerberos.common.ccache import CCACHE
from minikerberos.protocol import asn1_structs as asn

from sim.crypto import krb5
from sim.protocol import build_strategy
from sim.protocol.harness import Harness
from sim.wire import kdc as wire_kdc
from sim.wire import kerberos as k
from sim.wire import ns, spnego
from sim.wire.kerberos import Principal
from sim.wire.ledger import Ledger
from sim.wire.xmlutil import EPOCH
from tests.cli.conftest import wssim

TOOLS = {
    "krb5kdc": "krb5-kdc",
    "kdb5_util": "krb5-kdc",
    "kadmin.local": "krb5-admin-server",
    "kinit": "krb5-user",
    "kvno": "krb5-user",
    "klist": "krb5-user",
}
SBIN = ("/usr/sbin", "/sbin")
ROOT = Path(__file__).resolve().parents[2]
AES256 = krb5.Enctype.AES256_CTS_HMAC_SHA1_96


def _tool(name: str) -> str:
    path = shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN if os.access(f"{d}/{name}", os.X_OK)), None
    )
    if path is None:
        pytest.fail(f"{name} is required (Debian package {TOOLS[name]}; .ci/run installs it)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MitRealm:
    """A running MIT KDC for realm WSSIM.EXAMPLE and the environment its tools need."""

    def __init__(self, root: Path, users: dict[str, str]) -> None:
        self.root = root
        self.port = _free_port()
        self.keytab = root / "provider.keytab"
        (root / "krb5.conf").write_text(
            "[libdefaults]\n default_realm = WSSIM.EXAMPLE\n dns_lookup_kdc = false\n"
            " dns_lookup_realm = false\n rdns = false\n udp_preference_limit = 1\n"
            f"[realms]\n WSSIM.EXAMPLE = {{\n  kdc = 127.0.0.1:{self.port}\n }}\n"
        )
        (root / "kadm5.acl").write_text("")
        (root / "kdc.conf").write_text(
            f"[kdcdefaults]\n kdc_listen = 127.0.0.1:{self.port}\n"
            f" kdc_tcp_listen = 127.0.0.1:{self.port}\n"
            f"[realms]\n WSSIM.EXAMPLE = {{\n  database_name = {root}/principal\n"
            f"  key_stash_file = {root}/stash\n  acl_file = {root}/kadm5.acl\n"
            "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            "  max_life = 10h\n }\n"
            f"[logging]\n kdc = FILE:{root}/kdc.log\n"
        )
        self.env = {
            **os.environ,
            "KRB5_CONFIG": str(root / "krb5.conf"),
            "KRB5_KDC_PROFILE": str(root / "kdc.conf"),
            "KRB5CCNAME": f"FILE:{root}/ccache",
            "KRB5RCACHEDIR": str(root),
        }
        self.run("kdb5_util", "create", "-s", "-P", "master-password", "-r", k.REALM)
        for user, password in users.items():
            self.kadmin(f"addprinc -pw {password} {user}")
        service = "/".join(k.PROVIDER_SERVICE)
        self.kadmin(f"addprinc -pw service-password-of-{service} {service}")
        # the TGS key from a password too, so that a TGT our KDC issued decrypts at MIT's
        self.kadmin(f"cpw -pw service-password-of-krbtgt/{k.REALM} krbtgt/{k.REALM}")
        self.kadmin(f"modprinc -kvno 1 krbtgt/{k.REALM}")  # our tickets name key version 1
        self.kadmin(f"ktadd -norandkey -k {self.keytab} {service}")
        self.process = subprocess.Popen(
            [_tool("krb5kdc"), "-n", "-P", str(root / "kdc.pid")],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"krb5kdc did not start: {self.log()}") from None
                time.sleep(0.05)

    def run(self, tool: str, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [_tool(tool), *args], env=self.env, input=stdin, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{tool} {' '.join(args)}: {done.stderr}"
        return done.stdout

    def kadmin(self, query: str) -> None:
        self.run("kadmin.local", "-q", query)

    def log(self) -> str:
        path = self.root / "kdc.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def exchange(self, request: bytes) -> bytes:
        """One request to the KDC over TCP (RFC 4120 7.2.2: a 4-byte length, then DER)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(struct.pack(">I", len(request)) + request)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
                chunk = connection.recv(65536)
                assert chunk, "the KDC closed the connection"
                data += chunk
        return data[4:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mit-keys")


@pytest.fixture(scope="module")
def strategy(key_dir):
    return build_strategy("kerberos", key_dir=key_dir)


@pytest.fixture(scope="module")
def user(strategy):
    return strategy.setup.username("client-0")


@pytest.fixture(scope="module")
def mit(tmp_path_factory, user):
    realm = MitRealm(tmp_path_factory.mktemp("mit-realm"), dict([user]))
    yield realm
    realm.stop()


def _now() -> float:
    """Simulated seconds of the real clock: MIT's KDC checks times against it."""
    return time.time() - EPOCH.timestamp()


def test_mit_keytab_holds_the_keys_our_string_to_key_derives(mit):
    listing = mit.run("klist", "-k", "-K", "-e", str(mit.keytab))
    service = Principal(k.PROVIDER_SERVICE)
    password = f"service-password-of-{'/'.join(k.PROVIDER_SERVICE)}"
    for enctype, name in (
        (krb5.Enctype.AES256_CTS_HMAC_SHA1_96, "aes256-cts-hmac-sha1-96"),
        (krb5.Enctype.AES128_CTS_HMAC_SHA1_96, "aes128-cts-hmac-sha1-96"),
    ):
        ours = krb5.string_to_key(enctype, password, service.salt()).value.hex()
        assert f"({name})  (0x{ours})" in listing, listing


def test_mit_kdc_answers_our_as_and_tgs_requests(mit, user):
    ledger, now = Ledger(), _now()
    client = Principal((user[0],))
    client_key = krb5.string_to_key(AES256, user[1], client.salt())
    nonce = k.fresh_number()
    as_req = wire_kdc.build_as_req(
        client, client_key, now=now, till=now + 3600, nonce=nonce, ledger=ledger
    )
    tgt = wire_kdc.read_kdc_rep(
        mit.exchange(as_req),
        client_key,
        nonce=nonce,
        service=Principal(k.TGS_SERVICE),
        now=now,
        ledger=ledger,
    )
    service = Principal(k.PROVIDER_SERVICE)
    nonce = k.fresh_number()
    tgs_req = wire_kdc.build_tgs_req(
        tgt, client, service, now=now, till=now + 3600, nonce=nonce, ledger=ledger
    )
    ticket = wire_kdc.read_kdc_rep(
        mit.exchange(tgs_req), tgt.key, nonce=nonce, service=service, now=now, ledger=ledger
    )
    # the service ticket MIT issued opens with the provider's key, ours
    keytab = {
        service: {
            int(AES256): krb5.string_to_key(
                AES256, "service-password-of-HTTP/provider.example", service.salt()
            )
        }
    }
    ap_req = k.build_ap_req(ticket.ticket, ticket.key, client, now=now, ledger=ledger)
    accepted = k.accept_ap_req(ap_req, keytab, now=now, ledger=ledger)
    assert accepted.ticket.key == ticket.key and accepted.ticket.client == client


def test_mit_kdc_refuses_our_as_req_with_a_wrong_password(mit, user):
    now, client = _now(), Principal((user[0],))
    wrong = krb5.string_to_key(AES256, "not-the-password", client.salt())
    nonce = k.fresh_number()
    as_req = wire_kdc.build_as_req(
        client, wrong, now=now, till=now + 3600, nonce=nonce, ledger=Ledger()
    )
    reply = mit.exchange(as_req)
    assert wire_kdc.message_type(reply) == k.KRB_ERROR
    error = asn.KRB_ERROR.load(reply).native
    assert error["error-code"] in (k.KDC_ERR_PREAUTH_FAILED, k.KRB_AP_ERR_BAD_INTEGRITY)


class _KeyLog:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, bytes]] = []

    def log(self, kind: str, key_id: str, key: bytes) -> None:
        self.entries.append((kind, key_id, key))


def test_mit_kdc_accepts_the_tgt_our_kdc_issued_in_every_tgs_req_of_a_session(mit, key_dir, user):
    keylog = _KeyLog()
    harness = Harness(build_strategy("kerberos", keylog=keylog, key_dir=key_dir))
    now = _now()
    outcome = harness.session([b"x" * 64, b"y" * 64], start=now)
    assert all(result.ok for result in outcome.results)
    tgs_reqs = [d.send.data for d in outcome.deliveries if d.send.kind == "krb-tgs-req"]
    assert len(tgs_reqs) == 1
    client = Principal((user[0],))
    tgt_keys = [
        key
        for kind, name, key in keylog.entries
        if kind == "krb5-session-key" and name == f"{client} -> {Principal(k.TGS_SERVICE)}"
    ]
    for request in tgs_reqs:
        reply = mit.exchange(request)
        assert wire_kdc.message_type(reply) == k.TGS_REP, mit.log()
        # MIT's reply decrypts under the TGT session key our key log holds
        body = asn.TGS_REQ.load(request).native["req-body"]
        credentials = wire_kdc.read_kdc_rep(
            reply,
            krb5.SessionKey(AES256, tgt_keys[-1]),
            nonce=body["nonce"],
            service=Principal(k.PROVIDER_SERVICE),
            now=now,
            ledger=Ledger(),
        )
        assert credentials.key.enctype is AES256


def test_our_provider_accepts_a_service_ticket_mit_issued(mit, strategy, user):
    mit.run("kinit", user[0], stdin=user[1] + "\n")
    mit.run("kvno", "/".join(k.PROVIDER_SERVICE))
    cache = CCACHE.from_file(str(mit.root / "ccache"))
    service = Principal(k.PROVIDER_SERVICE)
    found = [c for c in cache.credentials if "provider.example" in str(c.server.to_string())]
    assert len(found) == 1
    mit_key = krb5.SessionKey(krb5.Enctype(found[0].key.keytype), bytes(found[0].key.keyvalue))
    ticket = asn.Ticket.load(found[0].ticket.to_asn1()).native
    # our client, its credentials cache holding MIT's ticket, sends a real message
    harness = Harness(strategy)
    harness.client.tgt = wire_kdc.Credentials(
        ticket=ticket, key=mit_key, service=Principal(k.TGS_SERVICE), endtime=_now() + 3000
    )
    harness.client.tickets[service] = wire_kdc.Credentials(
        ticket=ticket, key=mit_key, service=service, endtime=_now() + 3000
    )
    outcome = harness.request(b"payload", _now())
    assert [d.send.kind for d in outcome.deliveries] == ["app-request", "app-response"]
    assert outcome.results[0].ok
    # the provider opened MIT's ticket and found MIT's session key in it
    ap_req = k.gss_unframe(harness.client.current.token, k.TOK_AP_REQ)
    accepted = k.accept_ap_req(
        ap_req, harness.servers["provider-0"].keytab, now=_now(), ledger=Ledger()
    )
    assert accepted.ticket.key == mit_key


def _trace(root: Path, strategy: str) -> Path:
    """``wssim trace`` of one session: messages, keylog.jsonl, krb5.keytab."""
    out = root / strategy
    done = wssim(
        "trace",
        ROOT / "scenarios" / f"{strategy}.toml",
        "--strategy",
        strategy,
        "--sessions",
        "1",
        "--out",
        out,
        "--set",
        "workload.messages_per_session=3",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return _trace(tmp_path_factory.mktemp("trace"), "kerberos")


def test_mit_reads_the_keytab_of_a_trace_and_opens_its_own_tickets_with_it(mit, trace, user):
    keytab = trace / "krb5.keytab"
    listing = mit.run("klist", "-k", "-K", "-e", str(keytab))
    assert "HTTP/provider.example@WSSIM.EXAMPLE (aes256-cts-hmac-sha1-96)" in listing
    mit.run("kinit", user[0], stdin=user[1] + "\n")
    # MIT's kvno gets a ticket from its KDC and decrypts it with the trace's keytab
    checked = mit.run("kvno", "-k", str(keytab), "/".join(k.PROVIDER_SERVICE))
    assert "keytab entry valid" in checked, checked  # MIT 1.20: the ticket decrypted


#: run by MIT's GSS-API acceptor (python-gssapi over libgssapi_krb5), in its own process so
#: that its environment (keytab, clock skew) is its alone: accepts each AP-REQ token it is
#: given with the request's channel bindings, prints the session key MIT derived
ACCEPTOR = r"""
import json, sys
import gssapi, gssapi.raw
SESSION_KEY = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2.5.5")
keys = []
for token, binding in json.load(sys.stdin):
    context = gssapi.SecurityContext(
        creds=gssapi.Credentials(usage="accept"),
        usage="accept",
        channel_bindings=gssapi.raw.ChannelBindings(application_data=binding.encode()),
    )
    answer = context.step(bytes.fromhex(token))
    assert context.complete
    key = gssapi.raw.inquire_sec_context_by_oid(context, SESSION_KEY)[0]
    keys.append((key.hex(), (answer or b"").hex()))
print(json.dumps(keys))
"""


def _mit_accepts(mit, trace: Path, tokens: list[tuple[bytes, str]]):
    """MIT's acceptor run on ``tokens`` (token, channel binding) with the trace's keytab."""
    if importlib.util.find_spec("gssapi") is None:
        pytest.fail(
            "python-gssapi is required (the test extra; it builds against Debian package "
            "libkrb5-dev, which .ci/run installs)"
        )
    # the trace's clock is simulated time (2026-01-01 on); MIT's acceptor reads the real one
    conf = trace / "acceptor.conf"
    conf.write_text(
        (mit.root / "krb5.conf")
        .read_text()
        .replace("[libdefaults]\n", "[libdefaults]\n clockskew = 40000000\n")
    )
    env = {
        **mit.env,
        "KRB5_CONFIG": str(conf),
        "KRB5_KTNAME": str(trace / "krb5.keytab"),
        "KRB5RCACHETYPE": "none",
    }
    done = subprocess.run(
        [sys.executable, "-c", ACCEPTOR],
        input=json.dumps([(t.hex(), m) for t, m in tokens]),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_mit_gss_acceptor_accepts_every_ap_req_of_a_trace_and_derives_its_session_key(mit, trace):
    tokens, logged = [], {}
    for line in (trace / "keylog.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "session-key":
            logged[record["id"]] = base64.b64decode(record["key"]).hex()
    for entry in map(json.loads, (trace / "trace.jsonl").read_text().splitlines()):
        if not entry["file"].endswith(".xml") or not entry["from"].startswith("client"):
            continue
        root = etree.fromstring((trace / entry["file"]).read_bytes())
        for token in root.iter(f"{{{ns.WSSE}}}BinarySecurityToken"):
            if token.get("ValueType") == ns.KERBEROS_AP_REQ:
                message_id = root.findtext(f".//{{{ns.WSA}}}MessageID")
                tokens.append(
                    (token.get(f"{{{ns.WSU}}}Id"), base64.b64decode(token.text), message_id)
                )
    assert len(tokens) == 3  # one per application request
    done = _mit_accepts(mit, trace, [(t, m) for _, t, m in tokens])
    assert [key for key, _ in json.loads(done.stdout)] == [logged[t] for t, _, _ in tokens]


def test_mit_spnego_acceptor_completes_the_negotiation_of_a_trace(mit, tmp_path):
    """The RST of an ``sct-spnego`` trace (SPNEGO NegTokenInit, Kerberos AP-REQ asking for
    mutual authentication) goes to MIT's acceptor; its NegTokenResp is accept-completed and
    its AP-REP opens with the ticket session key of our key log, handing over the acceptor
    subkey MIT reports."""
    trace = _trace(tmp_path, "sct-spnego")
    entries = [json.loads(line) for line in (trace / "trace.jsonl").read_text().splitlines()]
    keys = [json.loads(line) for line in (trace / "keylog.jsonl").read_text().splitlines()]
    leg = next(e for e in entries if e["action"].endswith("/RST/SCT"))
    root = etree.fromstring((trace / leg["file"]).read_bytes())
    exchange = root.find(f".//{{{ns.WST}}}BinaryExchange")
    context = root.find(f".//{{{ns.WST}}}RequestSecurityToken").get("Context")
    assert exchange.get("ValueType") == ns.SPNEGO_VALUE_TYPE
    done = _mit_accepts(mit, trace, [(base64.b64decode(exchange.text), context)])
    [(mit_key, answer)] = json.loads(done.stdout)
    response = spnego.read_resp(bytes.fromhex(answer))
    assert response.state == spnego.ACCEPT_COMPLETED and response.mech == spnego.KRB5_OID
    session = next(
        base64.b64decode(e["key"])
        for e in keys
        if e["kind"] == "krb5-session-key"
        and e["id"].endswith("-> HTTP/provider.example@WSSIM.EXAMPLE")
    )
    offer = spnego.read_init(base64.b64decode(exchange.text))
    ap_req = asn.AP_REQ.load(k.gss_unframe(offer.mech_token, k.TOK_AP_REQ)).native
    session_key = krb5.SessionKey(AES256, session)
    authenticator = asn.Authenticator.load(
        krb5.decrypt(
            session_key, krb5.KeyUsage.AP_REQ_AUTHENTICATOR, ap_req["authenticator"]["cipher"]
        )
    ).native
    ctime = k.seconds_of(authenticator["ctime"])
    acceptor = k.read_ap_rep(
        k.gss_unframe(response.response_token, k.TOK_AP_REP), session_key, ctime, Ledger()
    )
    assert acceptor is not None and acceptor.value.hex() == mit_key
