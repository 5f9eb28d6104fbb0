"""What the SAML tests share: an assertion the STS issues (or a careless STS edits before
signing), and a provider's validation of it."""

from __future__ import annotations

from lxml import etree

from sim.wire import saml
from sim.wire.ns import Confirmation, DigestAlg, SignatureAlg
from sim.wire.saml import SamlVersion

AUDIENCE = "https://provider.example/service"


def unsigned_assertion(
    version=SamlVersion.V20, confirmation=Confirmation.BEARER, **kwargs
) -> etree._Element:
    return saml.build_assertion(
        issuer="https://sts.example/",
        subject="alice",
        audience=AUDIENCE,
        now=100.0,
        lifetime=3600.0,
        confirmation=confirmation,
        version=version,
        attributes={"role": "buyer"},
        **kwargs,
    )


def signed_assertion(
    keystore,
    version=SamlVersion.V20,
    confirmation=Confirmation.BEARER,
    *,
    algorithm=SignatureAlg.RSA_SHA1,
    digest=DigestAlg.SHA1,
    **kwargs,
) -> etree._Element:
    a = unsigned_assertion(version, confirmation, **kwargs)
    return saml.sign_assertion(a, keystore.identity("sts"), algorithm=algorithm, digest=digest)


def validate(keystore, a, now=200.0, **kwargs) -> saml.ValidatedAssertion:
    return saml.validate_assertion(
        a,
        sts_key=keystore.identity("sts").public_key,
        audience=AUDIENCE,
        now=now,
        recipient=keystore.identity("provider"),
        **kwargs,
    )
