"""The attacker's tools against XML Signature verification: rewrites of a captured request
into 29 KB of what canonicalization and reference digests cost most (issue 14, class 5).
Shared by the attack tests (tests/attacks/test_signatures.py) and the refusal benchmark
(benchmarks/bench_refusal.py)."""

from __future__ import annotations

import re
from collections.abc import Callable

#: the size of the message of the campaign's report
SIZE = 29 * 1024
EXC_C14N = b"http://www.w3.org/2001/10/xml-exc-c14n#"
EC = b'xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#"'
TRANSFORM = b'<ds:Transform Algorithm="' + EXC_C14N + b'"/>'
C14N_METHOD = b'<ds:CanonicalizationMethod Algorithm="' + EXC_C14N + b'"/>'
ENVELOPED = b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
REFERENCE = re.compile(rb"<ds:Reference URI=.*?</ds:Reference>")


def _declare(data: bytes, count: int) -> bytes:
    """``count`` namespace declarations p0..p{count-1} on the Envelope: every one in scope
    in the whole message."""
    declarations = b"".join(b' xmlns:p%d="urn:p:%d"' % (i, i) for i in range(count))
    return data.replace(b"<s:Envelope", b"<s:Envelope" + declarations, 1)


def _prefix_list(count: int) -> bytes:
    return b" ".join(b"p%d" % i for i in range(count))


def _inclusive(element: bytes, prefixes: bytes) -> bytes:
    """``element`` (an empty exc-C14N method or transform) holding an InclusiveNamespaces."""
    name = element[1 : element.index(b" ")]
    return (
        element[:-2]
        + b"><ec:InclusiveNamespaces "
        + EC
        + b' PrefixList="'
        + prefixes
        + b'"/></'
        + name
        + b">"
    )


def _in_transforms(data: bytes, prefixes: bytes) -> bytes:
    assert TRANSFORM in data
    return data.replace(TRANSFORM, _inclusive(TRANSFORM, prefixes))


def _fill(build, size: int = SIZE) -> bytes:
    """``build(n)`` for the largest n giving a message of at most ``size`` bytes."""
    low, high = 1, 1
    while len(build(high)) <= size:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if len(build(middle)) <= size else (low, middle)
    return build(low)


def _declarations_and_prefix_list(data: bytes) -> bytes:
    """The campaign's message: namespaces declared on the Envelope, all of them in the
    PrefixList of every reference (quadratic in the PrefixList in the old C14N)."""
    return _fill(lambda n: _in_transforms(_declare(data, n), _prefix_list(n)))


def _long_prefix_list(data: bytes) -> bytes:
    """A PrefixList naming thousands of prefixes (few declared)."""
    return _fill(lambda n: _in_transforms(data, _prefix_list(n)))


def _long_prefix_list_in_signed_info(data: bytes) -> bytes:
    """The same in SignedInfo's CanonicalizationMethod (the WSS4J/CXF layout)."""
    assert C14N_METHOD in data
    return _fill(
        lambda n: _declare(data, n).replace(C14N_METHOD, _inclusive(C14N_METHOD, _prefix_list(n)))
    )


def _many_references(data: bytes) -> bytes:
    """The first reference repeated: each one a digest of its target, before the fix."""
    first = REFERENCE.search(data).group(0)
    return _fill(lambda n: data.replace(first, first * n, 1))


def _many_transforms(data: bytes) -> bytes:
    return _fill(lambda n: data.replace(TRANSFORM, TRANSFORM * n, 1))


def _namespace_flood(data: bytes) -> bytes:
    """Namespace declarations only, in scope of SignedInfo and every reference."""
    return _fill(lambda n: _declare(data, n))


#: rewrites beyond the bounds a receiver keeps before it verifies a signature
BEYOND_THE_BOUNDS: dict[str, Callable[[bytes], bytes]] = {
    "declarations-and-prefix-list": _declarations_and_prefix_list,
    "long-prefix-list": _long_prefix_list,
    "prefix-list-in-signed-info": _long_prefix_list_in_signed_info,
    "many-references": _many_references,
    "many-transforms": _many_transforms,
    "namespace-flood": _namespace_flood,
}


def deep_unsigned_header(data: bytes, depth: int = 60) -> bytes:
    """An unsigned header as large as the message allows, nested ``depth`` deep with
    namespaces declared at every level, and every reference rewritten to point at it with
    a PrefixList of 32 declared prefixes: each bound kept, the SignedInfo no longer the one
    the client signed."""
    header_id = b"big"
    opening = b"".join(
        b'<x:d xmlns:x="urn:x:%d" xmlns:y="urn:y:%d">' % (i, i) for i in range(depth)
    )
    closing = b"</x:d>" * depth

    def build(n: int) -> bytes:
        header = (
            b'<h:Big xmlns:h="urn:h" u:Id="'
            + header_id
            + b'">'
            + opening
            + b"<y:e y:a='1'>filler</y:e>" * n
            + closing
            + b"</h:Big>"
        )
        forged = _declare(data, 32).replace(b"</s:Header>", header + b"</s:Header>", 1)
        forged = re.sub(rb'<ds:Reference URI="#[^"]*"', b'<ds:Reference URI="#big"', forged)
        forged = forged.replace(ENVELOPED, b"")  # the header does not hold the signature
        return _in_transforms(forged, _prefix_list(32))

    return _fill(build)


def big_signed_info(data: bytes) -> bytes:
    """A SignedInfo as large as the bounds let it be (the most a receiver canonicalizes and
    verifies before it knows who signed): 32 references to the Body, each with a PrefixList
    of 32 declared prefixes a kilobyte long, filling the message."""
    prefixes = [b"p%d" % i + b"x" * 24 for i in range(32)]
    declarations = b"".join(b' xmlns:%s="urn:p:%d"' % (p, i) for i, p in enumerate(prefixes))
    with_declarations = data.replace(b"<s:Envelope", b"<s:Envelope" + declarations, 1)
    first = REFERENCE.search(with_declarations).group(0)
    listed = _inclusive(TRANSFORM, b" ".join(prefixes))

    def build(n: int) -> bytes:
        return with_declarations.replace(first, first.replace(TRANSFORM, listed) * n, 1)

    return _fill(build)


#: rewrites refused within the bounds, by the SignatureValue, before any reference digest
WITHIN_THE_BOUNDS: dict[str, Callable[[bytes], bytes]] = {
    "deep-unsigned-header": deep_unsigned_header,
    "big-signed-info": big_signed_info,
}
