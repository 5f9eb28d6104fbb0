"""Verifying XML Signature strictly, and returning the exact elements that were verified,
so that callers can insist that what they consume is what was signed (the defence against
XML Signature Wrapping). Canonicalization and digests go through :mod:`sim.crypto`
(exclusive C14N only, the one WS-Security uses); ``sim.wire.dsig`` writes what is read here.
"""

from __future__ import annotations

import hmac
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

import sim.crypto as crypto
from sim.errors import FailedCheck, InvalidSecurity, UnsupportedAlgorithm
from sim.wire import ns, rules
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import C14N, DigestAlg, SignatureAlg, Transform
from sim.wire.suites import AlgorithmSuite
from sim.wire.xmlutil import children_by_tag, required, unb64, whole_text

DS = ns.DS
_Q = {
    name: ns.qname(DS, name)
    for name in (
        "Signature",
        "SignedInfo",
        "CanonicalizationMethod",
        "SignatureMethod",
        "Reference",
        "Transforms",
        "Transform",
        "DigestMethod",
        "DigestValue",
        "SignatureValue",
        "KeyInfo",
        "HMACOutputLength",
    )
}
_INCLUSIVE = ns.qname(ns.EXC_C14N_NS, "InclusiveNamespaces")
_EXCLUSIVE = C14N.EXCLUSIVE.value
_ENVELOPED = Transform.ENVELOPED.value
#: what separates the prefixes of a PrefixList (XML whitespace, not Python's)
_XML_SPACE = re.compile(r"[ \t\r\n]+")
_SIGNATURE_PARTS = {
    _Q["SignedInfo"]: "ds:SignedInfo",
    _Q["SignatureValue"]: "ds:SignatureValue",
    _Q["KeyInfo"]: "ds:KeyInfo",
}
_REFERENCE_PARTS = {
    _Q["Transforms"]: "ds:Transforms",
    _Q["DigestMethod"]: "ds:DigestMethod",
    _Q["DigestValue"]: "ds:DigestValue",
}


VerifyingKey = rsa.RSAPublicKey | bytes
#: Resolves a signature's KeyInfo element (or None) to the key that must verify it.
KeyResolver = Callable[[etree._Element | None], VerifyingKey]


@dataclass(frozen=True)
class SignaturePolicy:
    """What a receiver accepts; build one from an algorithm suite with :meth:`from_suite`.

    The ``max_*`` bounds are on what a sender controls before its signature is verified:
    :func:`verify` refuses a message beyond any of them before it canonicalizes or digests
    anything.
    """

    signature_algorithms: frozenset[SignatureAlg] = frozenset(
        {SignatureAlg.RSA_SHA1, SignatureAlg.HMAC_SHA1}
    )
    digest_algorithms: frozenset[DigestAlg] = frozenset({DigestAlg.SHA1})
    min_rsa_bits: int = 1024
    max_rsa_bits: int = 4096
    min_hmac_key_bytes: int = 16
    #: ds:Reference elements in a ds:SignedInfo
    max_references: int = 32
    #: ds:Transform elements in a ds:Reference (enveloped-signature, exclusive C14N)
    max_transforms: int = 2
    #: prefixes in an InclusiveNamespaces PrefixList, and the PrefixList's length in bytes
    max_inclusive_prefixes: int = 32
    max_prefix_list_bytes: int = 1024
    #: namespace declarations on ds:SignedInfo, its ancestors and its descendants
    max_namespaces: int = 64
    allow_enveloped: bool = False

    @classmethod
    def from_suite(cls, suite: AlgorithmSuite, **overrides) -> SignaturePolicy:
        """The suite's algorithms and no others: its digest, its symmetric and asymmetric
        signature (a Basic256Sha256 receiver refuses SHA-1 digests and signatures)."""
        values = dict(
            signature_algorithms=suite.signature_algorithms,
            digest_algorithms=suite.digest_algorithms,
            min_rsa_bits=suite.min_asymmetric_key_bits,
            max_rsa_bits=suite.max_asymmetric_key_bits,
        )
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class VerifiedSignature:
    """The outcome of a successful verification."""

    signature: etree._Element
    references: tuple[etree._Element, ...]
    algorithm: SignatureAlg
    key: VerifyingKey = field(repr=False)
    value: bytes = field(repr=False)

    def covers(self, element: etree._Element) -> bool:
        """True if ``element`` itself (not a copy, not a look-alike) was signed."""
        return any(element is ref for ref in self.references)


def canonical(element: etree._Element, inclusive_prefixes: Sequence[str] = ()) -> bytes:
    """The exclusive canonical form of a received ``element``; a subtree that has none (a
    relative namespace URI in scope: C14N 1.0 section 2.1 says canonicalization fails) is
    refused with a typed fault."""
    try:
        return crypto.exc_c14n(element, inclusive_prefixes=inclusive_prefixes)
    except crypto.C14NError as exc:
        raise InvalidSecurity(str(exc), check="c14n") from None


def index_ids(root: etree._Element) -> dict[str, etree._Element]:
    """Every element id in the document; a duplicate id is refused (InvalidSecurity)."""
    ids, duplicate = crypto.id_index(root)
    if duplicate is not None:
        raise InvalidSecurity(f"duplicate id {duplicate!r} in the message", check="unique-ids")
    return ids


def verify(
    signature: etree._Element,
    *,
    key: VerifyingKey | KeyResolver,
    policy: SignaturePolicy = SignaturePolicy(),
    ids: Mapping[str, etree._Element] | None = None,
    ledger: Ledger | None = None,
) -> VerifiedSignature:
    """Verify ``signature`` in its document and return what it covers.

    In the order WSS4J and Apache Santuario follow, so that a sender who cannot sign costs no
    canonicalization or digest of what it references: (1) ds:SignedInfo is read whole and in
    its schema order, within the policy's bounds (references, transforms, PrefixList,
    namespace declarations), each reference resolved to the one element it names, nothing
    digested; (2) the key is resolved (``key`` given KeyInfo) and checked; (3) the
    SignatureValue is verified over the canonical SignedInfo; (4) then each reference's
    digest.

    Refused with a typed fault: wrong structure or anything out of place, a bound exceeded
    (check ``limits``), a canonicalization other than exclusive C14N (its PrefixList, the
    WSS4J/CXF layout, is honoured), an algorithm outside ``policy`` (UnsupportedAlgorithm), a
    truncated HMAC (HMACOutputLength, CVE-2009-0217), a reference that is not a
    same-document ``#id`` naming exactly one element, a transform other than exc-C14N (and
    enveloped-signature where allowed) or none (XMLDSig would digest the reference with
    inclusive C14N 1.0, which is not accepted), a relative namespace URI (check ``c14n``),
    a wrong signature or digest value (FailedCheck), an RSA key outside the policy's sizes.
    """
    if signature.tag != _Q["Signature"]:
        raise InvalidSecurity("not a ds:Signature element")
    if ids is None:
        ids = index_ids(signature.getroottree().getroot())
    parts = children_by_tag(signature, _SIGNATURE_PARTS)
    signed_info = required(parts, _Q["SignedInfo"], "ds:SignedInfo")
    if signed_info is not signature[0]:
        raise InvalidSecurity("ds:SignedInfo must be the first child of ds:Signature")
    algorithm, c14n_prefixes, references = _read_signed_info(signed_info, signature, ids, policy)
    value = unb64(
        whole_text(required(parts, _Q["SignatureValue"], "ds:SignatureValue"), "ds:SignatureValue"),
        "ds:SignatureValue",
    )

    resolved = key(parts.get(_Q["KeyInfo"])) if callable(key) else key
    _check_key(algorithm, resolved, policy)
    signed_bytes = canonical(signed_info, c14n_prefixes)
    if ledger is not None:
        ledger.record(Op.C14N, len(signed_bytes))
    rules.verify_value(algorithm, resolved, signed_bytes, value, ledger)

    for reference in references:
        if reference.enveloped:
            actual = _enveloped_digest(
                reference.target, signature, reference.digest, reference.prefixes, ledger
            )
        else:
            actual = rules.element_digest(
                reference.target, reference.digest, reference.prefixes, ledger
            )
        if not hmac.compare_digest(actual, reference.expected):
            raise FailedCheck(f"digest of {reference.uri} does not match", check="digest")
    targets = tuple(reference.target for reference in references)
    return VerifiedSignature(signature, targets, algorithm, resolved, value)


@dataclass(frozen=True)
class _Reference:
    """A ds:Reference as read, before its digest is computed."""

    uri: str
    target: etree._Element
    enveloped: bool
    prefixes: tuple[str, ...]
    digest: DigestAlg
    expected: bytes


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """The element children of ``parent``, lazily (comments and processing instructions
    between them are skipped: they carry no value)."""
    return (child for child in parent if isinstance(child.tag, str))


def _next(children: Iterator[etree._Element], tag: str, what: str, where: str):
    """The next element of ``children``, which must be ``tag`` (``what``)."""
    child = next(children, None)
    if child is None:
        raise InvalidSecurity(f"{what} is missing in {where}")
    if child.tag != tag:
        raise InvalidSecurity(f"unexpected {child.tag} in {where}, where {what} belongs")
    return child


def _no_children(parent: etree._Element, where: str) -> None:
    for child in _elements(parent):
        raise InvalidSecurity(f"unexpected {child.tag} in {where}")


def _read_signed_info(
    signed_info: etree._Element,
    signature: etree._Element,
    ids: Mapping[str, etree._Element],
    policy: SignaturePolicy,
) -> tuple[SignatureAlg, tuple[str, ...], list[_Reference]]:
    """(signature algorithm, SignedInfo's PrefixList, references) of a ds:SignedInfo:
    CanonicalizationMethod, SignatureMethod, Reference+ in this order, nothing else."""
    if crypto.namespace_declarations(signed_info) > policy.max_namespaces:
        raise InvalidSecurity(
            f"more than {policy.max_namespaces} namespace declarations in scope of ds:SignedInfo",
            check="limits",
        )
    children = _elements(signed_info)
    where = "ds:SignedInfo"
    c14n = _next(children, _Q["CanonicalizationMethod"], "ds:CanonicalizationMethod", where)
    if c14n.get("Algorithm") != _EXCLUSIVE:
        raise UnsupportedAlgorithm(
            f"canonicalization {c14n.get('Algorithm')!r} is not accepted", check="algorithm"
        )
    c14n_prefixes = _prefix_list(c14n, "ds:CanonicalizationMethod", policy)
    method = _next(children, _Q["SignatureMethod"], "ds:SignatureMethod", where)
    algorithm = rules.accepted(SignatureAlg, method.get("Algorithm"), policy.signature_algorithms)
    for child in _elements(method):
        if child.tag == _Q["HMACOutputLength"]:
            raise InvalidSecurity(
                "HMACOutputLength is not accepted (truncated HMAC, CVE-2009-0217)",
                check="hmac-output-length",
            )
        raise InvalidSecurity(f"unexpected {child.tag} in ds:SignatureMethod")
    # bounded before anything is read of them
    elements = list(itertools.islice(children, policy.max_references + 1))
    if len(elements) > policy.max_references:
        raise InvalidSecurity(f"more than {policy.max_references} references", check="limits")
    ancestors = list(signature.iterancestors())
    references: list[_Reference] = []
    for child in elements:
        if child.tag != _Q["Reference"]:
            raise InvalidSecurity(f"unexpected {child.tag} in ds:SignedInfo")
        references.append(_read_reference(child, signature, ancestors, ids, policy))
    if not references:
        raise InvalidSecurity("ds:SignedInfo has no ds:Reference")
    return algorithm, c14n_prefixes, references


def _prefix_list(parent: etree._Element, where: str, policy: SignaturePolicy) -> tuple[str, ...]:
    """The PrefixList of the one ec:InclusiveNamespaces ``parent`` may hold, bounded."""
    inclusive = None
    for child in _elements(parent):
        if child.tag != _INCLUSIVE or inclusive is not None:
            raise InvalidSecurity(f"unexpected {child.tag} in {where}")
        inclusive = child
    if inclusive is None:
        return ()
    _no_children(inclusive, "ec:InclusiveNamespaces")
    text = inclusive.get("PrefixList") or ""
    limit = policy.max_prefix_list_bytes
    if len(text) > limit or len(text.encode()) > limit:
        raise InvalidSecurity(f"InclusiveNamespaces PrefixList over {limit} bytes", check="limits")
    stripped = text.strip(" \t\r\n")
    prefixes = tuple(_XML_SPACE.split(stripped)) if stripped else ()
    if len(prefixes) > policy.max_inclusive_prefixes:
        raise InvalidSecurity(
            f"InclusiveNamespaces PrefixList of more than {policy.max_inclusive_prefixes} prefixes",
            check="limits",
        )
    return prefixes


def _read_reference(
    reference: etree._Element,
    signature: etree._Element,
    ancestors: list[etree._Element],
    ids: Mapping[str, etree._Element],
    policy: SignaturePolicy,
) -> _Reference:
    """A ds:Reference: ``#id`` URI naming one element, Transforms, DigestMethod, DigestValue."""
    uri = reference.get("URI")
    if not uri or not uri.startswith("#") or "(" in uri:
        raise InvalidSecurity(
            f"reference URI {uri!r} is not a same-document #id", check="reference"
        )
    target = ids.get(uri[1:])
    if target is None:
        raise InvalidSecurity(f"reference {uri} names no element", check="reference")
    where = f"the ds:Reference to {uri}"
    children = _elements(reference)
    part = next(children, None)
    enveloped, prefixes = False, None
    if part is not None and part.tag == _Q["Transforms"]:
        enveloped, prefixes = _read_transforms(part, where, policy)
        part = next(children, None)
    if prefixes is None:
        # XMLDSig 4.3.3.2 would turn the node-set into octets with inclusive C14N 1.0; the
        # WS-I Basic Security Profile requires the exclusive C14N transform instead.
        raise UnsupportedAlgorithm(
            f"{where} has no exclusive C14N transform (its digest would be of inclusive "
            "C14N 1.0, which is not accepted)",
            check="algorithm",
        )
    if part is None or part.tag != _Q["DigestMethod"]:
        raise InvalidSecurity(f"ds:DigestMethod is missing in {where}")
    digest = rules.accepted(DigestAlg, part.get("Algorithm"), policy.digest_algorithms)
    _no_children(part, "ds:DigestMethod")
    expected = unb64(
        whole_text(_next(children, _Q["DigestValue"], "ds:DigestValue", where), "ds:DigestValue"),
        "ds:DigestValue",
    )
    for child in children:
        raise InvalidSecurity(f"unexpected {child.tag} in {where}")
    contains_signature = target in ancestors  # lxml elements compare by identity
    if enveloped != contains_signature:
        raise InvalidSecurity(
            "enveloped-signature transform must be used exactly when the signature is inside "
            "the referenced element",
            check="reference",
        )
    return _Reference(uri, target, enveloped, prefixes, digest, expected)


def _read_transforms(
    transforms: etree._Element, where: str, policy: SignaturePolicy
) -> tuple[bool, tuple[str, ...] | None]:
    """(enveloped, PrefixList or None without an exclusive C14N transform)."""
    enveloped = False
    prefixes = None
    elements = list(itertools.islice(_elements(transforms), policy.max_transforms + 1))
    if len(elements) > policy.max_transforms:
        raise InvalidSecurity(
            f"more than {policy.max_transforms} transforms in {where}", check="limits"
        )
    for transform in elements:
        if transform.tag != _Q["Transform"]:
            raise InvalidSecurity(f"unexpected {transform.tag} in ds:Transforms")
        algorithm = transform.get("Algorithm")
        if (
            algorithm == _ENVELOPED
            and policy.allow_enveloped
            and not enveloped
            and prefixes is None
        ):
            _no_children(transform, "ds:Transform")
            enveloped = True
        elif algorithm == _EXCLUSIVE and prefixes is None:
            prefixes = _prefix_list(transform, "ds:Transform", policy)
        else:
            raise UnsupportedAlgorithm(
                f"transform {algorithm!r} is not accepted", check="algorithm"
            )
    return enveloped, prefixes


def _enveloped_digest(target, signature, digest, prefixes, ledger) -> bytes:
    """Digest of ``target`` without ``signature`` (the enveloped-signature transform).

    The transform removes the Signature element only: the text after it stays, so it is
    moved to the preceding node while the digest is computed, then everything is restored.
    """
    parent = signature.getparent()
    index = parent.index(signature)
    tail = signature.tail or ""
    previous = signature.getprevious()
    saved = previous.tail if previous is not None else parent.text
    parent.remove(signature)
    if previous is not None:
        previous.tail = (saved or "") + tail or None
    else:
        parent.text = (saved or "") + tail or None
    try:
        return rules.element_digest(target, digest, prefixes, ledger)
    finally:
        if previous is not None:
            previous.tail = saved
        else:
            parent.text = saved
        parent.insert(index, signature)
        signature.tail = tail or None


def _check_key(algorithm: SignatureAlg, key, policy: SignaturePolicy) -> None:
    if algorithm in rules.HMAC_ALGORITHMS:
        if not isinstance(key, bytes):
            raise InvalidSecurity("an HMAC signature needs a symmetric key", check="key")
        if len(key) < policy.min_hmac_key_bytes:
            raise InvalidSecurity(
                f"HMAC key of {len(key)} bytes is below {policy.min_hmac_key_bytes}",
                check="key-size",
            )
        return
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidSecurity("an RSA signature needs an RSA public key", check="key")
    if not policy.min_rsa_bits <= key.key_size <= policy.max_rsa_bits:
        raise InvalidSecurity(
            f"RSA key of {key.key_size} bits outside {policy.min_rsa_bits}-{policy.max_rsa_bits}",
            check="key-size",
        )
