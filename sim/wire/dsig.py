"""Writing XML Signature: a ds:Signature over same-document references, with the exclusive
C14N transform (and the enveloped-signature one for a signature inside what it signs).

One writer, :func:`sign_text`, given the references' digests: a sender that writes its
message as text digests each part's canonical text (:func:`text_digest`); :func:`sign`
digests elements of a tree and parses the text. The strict reader is
``sim.wire.verification``, re-exported here where the callers find it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from sim.wire import ns, rules
from sim.wire.ledger import Ledger, Op
from sim.wire.ns import C14N, DigestAlg, SignatureAlg, Transform
from sim.wire.verification import (
    KeyResolver,
    SignaturePolicy,
    VerifiedSignature,
    VerifyingKey,
    canonical,
    index_ids,
    verify,
)
from sim.wire.xmlutil import b64, escape, fragment, get_id

__all__ = [
    "KeyResolver",
    "SignaturePolicy",
    "SigningKey",
    "VerifiedSignature",
    "VerifyingKey",
    "canonical",
    "index_ids",
    "sign",
    "sign_text",
    "text_digest",
    "verify",
]

DS = ns.DS
_EXCLUSIVE = C14N.EXCLUSIVE.value
_ENVELOPED = Transform.ENVELOPED.value

SigningKey = rsa.RSAPrivateKey | bytes


def sign(
    references: Sequence[etree._Element],
    key: SigningKey,
    *,
    algorithm: SignatureAlg,
    digest: DigestAlg = DigestAlg.SHA1,
    key_info: etree._Element | str | None = None,
    inclusive_prefixes: Sequence[str] = (),
    enveloped: bool = False,
    signature_id: str | None = None,
    ledger: Ledger | None = None,
) -> etree._Element:
    """The ds:Signature :func:`sign_text` writes over the elements ``references`` (each must
    carry an Id), digested where they stand, ready to be placed.

    With ``enveloped=True`` the signature is meant to be placed inside the single referenced
    element (SAML assertions): its references get the enveloped-signature transform.
    ``key_info`` (typically a wsse:SecurityTokenReference, an element or its text) is put
    inside ds:KeyInfo.
    """
    digest = DigestAlg(digest)
    _check_key_type(SignatureAlg(algorithm), key)
    digests = []
    for target in references:
        ref_id = get_id(target)
        if ref_id is None:
            raise ValueError(f"element {target.tag} has no Id to reference")
        digests.append((ref_id, rules.element_digest(target, digest, inclusive_prefixes, ledger)))
    if isinstance(key_info, etree._Element):
        key_info = etree.tostring(key_info).decode()
    return fragment(
        sign_text(
            digests,
            key,
            algorithm=algorithm,
            digest=digest,
            key_info=key_info,
            inclusive_prefixes=inclusive_prefixes,
            enveloped=enveloped,
            signature_id=signature_id,
            ledger=ledger,
        )
    )


def sign_text(
    digests: Sequence[tuple[str, bytes]],
    key: SigningKey,
    *,
    algorithm: SignatureAlg,
    digest: DigestAlg = DigestAlg.SHA1,
    key_info: str | None,
    inclusive_prefixes: Sequence[str] = (),
    enveloped: bool = False,
    signature_id: str | None = None,
    ledger: Ledger | None = None,
) -> str:
    """A ds:Signature over references already digested (``digests``: (id, digest of the
    element's exclusive canonical form, with ``inclusive_prefixes`` as its PrefixList)
    pairs), with ``key_info`` (text, or None for no ds:KeyInfo). The SignedInfo is signed in
    the exclusive canonical form this function writes it in, without parsing it."""
    if type(algorithm) is not SignatureAlg:  # a member passes without an Enum call
        algorithm = SignatureAlg(algorithm)
    if type(digest) is not DigestAlg:
        digest = DigestAlg(digest)
    _check_key_type(algorithm, key)
    values = [(ref_id, b64(value)) for ref_id, value in digests]
    signed_bytes = _signed_info_text(
        algorithm, digest, values, inclusive_prefixes, enveloped, canonical=True
    ).encode()
    if ledger is not None:
        ledger.record(Op.C14N, len(signed_bytes))
    value = rules.sign_value(algorithm, key, signed_bytes, ledger)
    attributes = f' Id="{escape(signature_id)}"' if signature_id else ""
    info = "" if key_info is None else f"<ds:KeyInfo>{key_info}</ds:KeyInfo>"
    return (
        f'<ds:Signature xmlns:ds="{DS}"{attributes}>'
        f"{_signed_info_text(algorithm, digest, values, inclusive_prefixes, enveloped)}"
        f"<ds:SignatureValue>{b64(value)}</ds:SignatureValue>{info}</ds:Signature>"
    )


def _signed_info_text(
    algorithm: SignatureAlg,
    digest: DigestAlg,
    digests: Sequence[tuple[str, str]],
    inclusive_prefixes: Sequence[str],
    enveloped: bool,
    *,
    canonical: bool = False,
) -> str:
    """ds:SignedInfo over ``digests`` ((id, base64 digest value) pairs) as it appears inside a
    ds:Signature, or with ``canonical`` in exclusive canonical form, what is signed (every
    value is an algorithm URI, an NCName id or prefix: nothing C14N would escape otherwise)."""
    head, reference = _signed_info_frame(
        algorithm, digest, tuple(inclusive_prefixes), enveloped, canonical
    )
    references = "".join(
        f'<ds:Reference URI="#{escape(ref_id)}{reference}{value}</ds:DigestValue></ds:Reference>'
        for ref_id, value in digests
    )
    return f"{head}{references}</ds:SignedInfo>"


@functools.lru_cache(maxsize=64)
def _signed_info_frame(
    algorithm: SignatureAlg,
    digest: DigestAlg,
    inclusive_prefixes: tuple[str, ...],
    enveloped: bool,
    canonical: bool,
) -> tuple[str, str]:
    """What :func:`_signed_info_text` writes around the references' ids and digest values:
    the SignedInfo's start and methods, and each Reference's text from the end of its URI to
    its DigestValue's content (the same for every reference of a signature)."""

    def end(tag: str) -> str:
        return f"></{tag}>" if canonical else "/>"

    start = f'<ds:SignedInfo xmlns:ds="{DS}">' if canonical else "<ds:SignedInfo>"
    transforms = f'<ds:Transform Algorithm="{_ENVELOPED}"{end("ds:Transform")}' if enveloped else ""
    if inclusive_prefixes:
        transforms += (
            f'<ds:Transform Algorithm="{_EXCLUSIVE}"><ec:InclusiveNamespaces '
            f'xmlns:ec="{ns.EXC_C14N_NS}" PrefixList="{escape(" ".join(inclusive_prefixes))}"'
            f"{end('ec:InclusiveNamespaces')}</ds:Transform>"
        )
    else:
        transforms += f'<ds:Transform Algorithm="{_EXCLUSIVE}"{end("ds:Transform")}'
    head = (
        f'{start}<ds:CanonicalizationMethod Algorithm="{_EXCLUSIVE}"'
        f"{end('ds:CanonicalizationMethod')}"
        f'<ds:SignatureMethod Algorithm="{algorithm.value}"{end("ds:SignatureMethod")}'
    )
    reference = (
        f'"><ds:Transforms>{transforms}</ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{digest.value}"{end("ds:DigestMethod")}<ds:DigestValue>'
    )
    return head, reference


def text_digest(canonical: str, digest: DigestAlg, ledger: Ledger | None) -> bytes:
    """The digest of an element whose exclusive canonical form is ``canonical``."""
    data = canonical.encode()
    if ledger is not None:
        ledger.record(Op.C14N, len(data))
        ledger.record(Op.DIGEST, len(data))
    return hashlib.new(rules.DIGEST_NAMES[digest], data).digest()


def _check_key_type(algorithm: SignatureAlg, key) -> None:
    if algorithm in rules.HMAC_ALGORITHMS:
        if not isinstance(key, bytes):
            raise TypeError(f"{algorithm.value} needs a secret key (bytes)")
    elif not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        raise TypeError(f"{algorithm.value} needs an RSA key")
