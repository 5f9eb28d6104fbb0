"""The facade: backend selection and argument checking with messages that name the argument."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from lxml import etree

import sim.crypto as crypto


def test_backend_is_the_compiled_kernel_when_built():
    assert crypto.BACKEND == "cython"


def test_sim_pure_python_forces_the_reference():
    code = "import sim.crypto as c; print(c.BACKEND, c.derive_key(b'k', nonce=b'n').hex())"
    env = {**os.environ, "SIM_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    backend, key = out.stdout.split()
    assert backend == "python"
    assert key == crypto.derive_key(b"k", nonce=b"n").hex()


A = crypto.Pattern("u", "a")
REPEATED = A._replace(most=3)
LAYOUT = crypto.compile_layout(crypto.Pattern(None, None, children=(A,)))


@pytest.mark.parametrize(
    ("call", "error", "names"),
    [
        (lambda: crypto.p_sha1("text", b"seed", 16), TypeError, "secret"),
        (lambda: crypto.p_sha1(b"s", None, 16), TypeError, "seed"),
        (lambda: crypto.p_sha1(b"s", b"seed", 0), ValueError, "length"),
        (lambda: crypto.p_sha1(b"s", b"seed", 16, -1), ValueError, "offset"),
        (lambda: crypto.p_sha1(b"s", b"seed", 1 << 21), ValueError, "length"),
        (lambda: crypto.p_sha1(b"s", b"seed", 2.0), TypeError, "length"),
        (lambda: crypto.p_sha1(b"s", b"seed", True), TypeError, "length"),
        (lambda: crypto.derive_key(b"s", nonce="n"), TypeError, "nonce"),
        (lambda: crypto.derive_key(b"s", nonce=b"n", label="l"), TypeError, "label"),
        (lambda: crypto.derive_key(b"s", nonce=b"n", length=-4), ValueError, "length"),
        (
            lambda: crypto.derive_key(b"s", nonce=b"n", offset=3, generation=1),
            ValueError,
            "generation",
        ),
        (lambda: crypto.derive_keys(b"s", b"nonce"), TypeError, "nonces"),
        (lambda: crypto.derive_keys(b"s", [b"a", 3]), TypeError, "nonces"),
        (lambda: crypto.computed_key(b"a", b"b", 100), ValueError, "bits"),
        (lambda: crypto.computed_key(b"a", "b", 128), TypeError, "issuer_entropy"),
        (lambda: crypto.ut_derive_key(b"p", b"s", 0), ValueError, "iterations"),
        (lambda: crypto.ut_derive_key(b"p", 7, 10), TypeError, "salt"),
        (lambda: crypto.exc_c14n("<a/>"), TypeError, "element"),
        (lambda: crypto.exc_c14n(etree.Comment("c")), TypeError, "element"),
        (
            lambda: crypto.exc_c14n(etree.Element("a"), inclusive_prefixes="p"),
            TypeError,
            "inclusive_prefixes",
        ),
        (
            lambda: crypto.exc_c14n(etree.Element("a"), inclusive_prefixes=[1]),
            TypeError,
            "inclusive_prefixes",
        ),
        (lambda: crypto.exc_c14n(etree.Element("a"), with_comments=1), TypeError, "with_comments"),
        (lambda: crypto.namespace_declarations("<a/>"), TypeError, "element"),
        (lambda: crypto.namespace_declarations(etree.PI("pi")), TypeError, "element"),
        (lambda: crypto.c14n_digest(etree.Element("a"), "md5"), ValueError, "algorithm"),
        (lambda: crypto.c14n_digest(etree.Element("a"), None), TypeError, "algorithm"),
        (lambda: crypto.match_layout("<s/>", LAYOUT), TypeError, "element"),
        (lambda: crypto.match_layout(etree.Element("s"), (None,) * 7), TypeError, "layout"),
        (lambda: crypto.compile_layout(("urn:a", "a")), TypeError, "Pattern"),
        (lambda: crypto.compile_layout(crypto.Pattern("urn:a", None)), ValueError, "local"),
        (
            lambda: crypto.compile_layout(
                crypto.Pattern(None, None, children=(REPEATED, crypto.Pattern("u", "b")))
            ),
            ValueError,
            "last child",
        ),
        (
            lambda: crypto.compile_layout(crypto.Pattern("u", "a", content="text", children=(A,))),
            ValueError,
            "content",
        ),
    ],
)
def test_bad_arguments_raise_errors_naming_the_argument(call, error, names):
    with pytest.raises(error, match=names):
        call()


def test_bytes_like_arguments_are_accepted():
    assert crypto.p_sha1(bytearray(b"s"), memoryview(b"seed"), 8) == crypto.p_sha1(b"s", b"seed", 8)


def test_list_of_prefixes_is_accepted():
    el = etree.fromstring(b'<a xmlns:p="urn:p"><b/></a>')[0]
    assert crypto.exc_c14n(el, inclusive_prefixes=["p"]) == b'<b xmlns:p="urn:p"></b>'


def test_a_subtree_without_a_canonical_form_raises_the_typed_c14n_error():
    el = etree.fromstring(b'<a xmlns:x="relative"><b/></a>')[0]
    for call in (crypto.exc_c14n, crypto.c14n_digest, crypto.c14n_digest_sized):
        with pytest.raises(crypto.C14NError, match="relative"):
            call(el)
    assert issubclass(crypto.C14NError, ValueError)
