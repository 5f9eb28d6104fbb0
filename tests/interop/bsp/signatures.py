"""BSP 1.1 rules on XML Signature."""

from __future__ import annotations

from lxml import etree

from tests.interop.bsp.message import (
    ALLOWED_TRANSFORMS,
    DS,
    EXC_C14N,
    STR_TRANSFORM,
    WSSE,
    XENC,
    q,
    rule,
)

# --- XML Signature ---------------------------------------------------------------------------


@rule("R3102/R3104/R3103", "a message signature is detached (no enveloping, no enveloped)")
def r3102(m):
    bad = []
    for sig in m.signatures:
        if sig.find(q(DS, "Object")) is not None:
            bad.append("ds:Object in the Signature")
        for reference in sig.iter(q(DS, "Reference")):
            if not reference.get("URI") or any(
                t.get("Algorithm", "").endswith("enveloped-signature")
                for t in reference.iter(q(DS, "Transform"))
            ):
                bad.append(f"Reference {reference.get('URI')!r} is not detached")
    return bad


@rule("R3001/R3003/R3004/R3005", "every signature Reference URI is a Shorthand XPointer")
# (its target may be encrypted in place: an encrypted UsernameToken is signed by its Id)
def r3001(m):
    return [
        f"Reference {r.get('URI')!r}"
        for sig in m.signatures
        for r in sig.iter(q(DS, "Reference"))
        if not (r.get("URI") or "#").startswith("#") or len(r.get("URI") or "") < 2
    ]


@rule("R5416/R5411/R5423/R5412", "each Reference has Transforms: allowed ones, exc-c14n last")
def r5416(m):
    bad = []
    for sig in m.signatures:
        for reference in sig.iter(q(DS, "Reference")):
            transforms = reference.findall(f"{q(DS, 'Transforms')}/{q(DS, 'Transform')}")
            algorithms = [t.get("Algorithm") for t in transforms]
            if (
                not algorithms
                or any(a not in ALLOWED_TRANSFORMS for a in algorithms)
                or algorithms[-1] not in (EXC_C14N, STR_TRANSFORM)
            ):
                bad.append(f"Reference {reference.get('URI')}: {algorithms}")
    return bad


@rule("R5404", "the CanonicalizationMethod is exclusive C14N without comments")
def r5404(m):
    return [
        str(c.get("Algorithm"))
        for sig in m.signatures
        for c in sig.iter(q(DS, "CanonicalizationMethod"))
        if c.get("Algorithm") != EXC_C14N
    ]


@rule("R5406/R5407", "an InclusiveNamespaces element has a PrefixList")
def r5406(m):
    return [
        "InclusiveNamespaces without PrefixList"
        for sig in m.signatures
        for i in sig.iter(q(EXC_C14N, "InclusiveNamespaces"))
        if i.get("PrefixList") is None
    ]


@rule("R5401", "a SignatureMethod has no HMACOutputLength")
def r5401(m):
    return (
        ["HMACOutputLength"]
        if any(next(sig.iter(q(DS, "HMACOutputLength")), None) is not None for sig in m.signatures)
        else []
    )


@rule("R5402/R5417", "a signature's KeyInfo holds exactly one child, an STR")
def r5402(m):
    bad = []
    for sig in m.signatures:
        info = sig.find(q(DS, "KeyInfo"))
        if info is None or len(info) != 1 or info[0].tag != q(WSSE, "SecurityTokenReference"):
            bad.append("Signature KeyInfo")
    return bad


@rule("R5403/R5440", "a signature holds no Manifest and no EncryptedData")
def r5403(m):
    return [
        etree.QName(e).localname
        for sig in m.signatures
        for e in sig.iter(q(DS, "Manifest"), q(XENC, "EncryptedData"))
    ]
