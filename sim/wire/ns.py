"""Every XML namespace and URI the wire layer uses, in one place.

Namespaces are module constants; algorithm and token-type URIs are ``str`` Enums whose
values are the URIs (as signxml does), so they compare equal to the strings in messages.
The Enums are tables of data, alike in shape by nature (the ``duplicates`` tool pairs them):
one class per vocabulary, so that a reader accepts a URI of the right kind only.
"""

from __future__ import annotations

from enum import StrEnum

# --- namespaces -------------------------------------------------------------------------
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
WST = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
WSC = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512"
WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy"
SP = "http://docs.oasis-open.org/ws-sx/ws-securitypolicy/200702"
SAML1 = "urn:oasis:names:tc:SAML:1.0:assertion"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
XML = "http://www.w3.org/XML/1998/namespace"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
APP = "urn:wssim:app"

#: The prefixes wssim writes. Receivers never rely on prefixes.
PREFIXES: dict[str, str] = {
    "s11": SOAP11,
    "s": SOAP12,
    "a": WSA,
    "o": WSSE,
    "k": WSSE11,
    "u": WSU,
    "ds": DS,
    "xenc": XENC,
    "ec": EXC_C14N_NS,
    "trust": WST,
    "sc": WSC,
    "wsp": WSP,
    "saml": SAML1,
    "saml2": SAML2,
    "app": APP,
}


def qname(namespace: str, local: str) -> str:
    """Clark notation ``{namespace}local`` as lxml uses it."""
    return f"{{{namespace}}}{local}"


# --- WS-Security token profiles ---------------------------------------------------------
class ValueType(StrEnum):
    X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
    THUMBPRINT_SHA1 = (
        "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
    )
    ENCRYPTED_KEY_SHA1 = (
        "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKeySHA1"
    )
    ENCRYPTED_KEY = (
        "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"
    )
    SAML_ASSERTION_ID = (
        "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.0#SAMLAssertionID"
    )
    SAML2_ID = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLID"
    SCT = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/sct"
    DKT = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/dk"
    USERNAME_TOKEN = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#UsernameToken"


class EncodingType(StrEnum):
    BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"


class PasswordType(StrEnum):
    TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
    DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"


class TokenType(StrEnum):
    SAML11 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"
    SAML20 = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"
    SAML10_ASSERTION = "urn:oasis:names:tc:SAML:1.0:assertion"
    SCT = "http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512/sct"
    ENCRYPTED_KEY = (
        "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey"
    )


# --- XML Signature / Encryption algorithms ----------------------------------------------
class C14N(StrEnum):
    EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"
    EXCLUSIVE_WITH_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"


class Transform(StrEnum):
    ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    STR_TRANSFORM = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#STR-Transform"


class DigestAlg(StrEnum):
    SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


class SignatureAlg(StrEnum):
    RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    HMAC_SHA1 = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
    HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"


class EncryptionAlg(StrEnum):
    AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
    AES192_CBC = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
    AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
    TRIPLEDES_CBC = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
    AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
    AES192_GCM = "http://www.w3.org/2009/xmlenc11#aes192-gcm"
    AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"


class KeyTransportAlg(StrEnum):
    RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
    RSA_1_5 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"


class KeyWrapAlg(StrEnum):
    AES128_KW = "http://www.w3.org/2001/04/xmlenc#kw-aes128"
    AES192_KW = "http://www.w3.org/2001/04/xmlenc#kw-aes192"
    AES256_KW = "http://www.w3.org/2001/04/xmlenc#kw-aes256"
    TRIPLEDES_KW = "http://www.w3.org/2001/04/xmlenc#kw-tripledes"


class EncryptedType(StrEnum):
    ELEMENT = "http://www.w3.org/2001/04/xmlenc#Element"
    CONTENT = "http://www.w3.org/2001/04/xmlenc#Content"


# --- WS-Trust 1.3 / WS-SecureConversation 1.3 ---------------------------------------------
class RequestType(StrEnum):
    ISSUE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"
    RENEW = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Renew"
    CANCEL = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Cancel"
    VALIDATE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Validate"


class KeyType(StrEnum):
    BEARER = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer"
    SYMMETRIC = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey"
    PUBLIC = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/PublicKey"


class ComputedKeyAlg(StrEnum):
    PSHA1 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1"


class BinarySecretType(StrEnum):
    NONCE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Nonce"
    SYMMETRIC_KEY = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey"
    ASYMMETRIC_KEY = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/AsymmetricKey"


class Action(StrEnum):
    """WS-Addressing actions of WS-Trust 1.3 and WS-SecureConversation 1.3."""

    RST_ISSUE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"
    RSTR_ISSUE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/Issue"
    RSTRC_ISSUE_FINAL = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTRC/IssueFinal"
    RST_RENEW = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Renew"
    RSTR_RENEW = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/Renew"
    RST_CANCEL = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Cancel"
    RSTR_CANCEL = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/Cancel"
    RST_VALIDATE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Validate"
    RSTR_VALIDATE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/Validate"
    SCT_ISSUE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/SCT"
    SCTR_ISSUE = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/SCT"
    SCT_RENEW = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/SCT/Renew"
    SCTR_RENEW = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/SCT/Renew"
    SCT_CANCEL = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/SCT/Cancel"
    SCTR_CANCEL = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/SCT/Cancel"
    SCT_AMEND = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/SCT/Amend"
    SCTR_AMEND = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RSTR/SCT/Amend"
    FAULT = "http://www.w3.org/2005/08/addressing/soap/fault"


# --- SAML -------------------------------------------------------------------------------
class Confirmation(StrEnum):
    """SAML subject confirmation methods (SAML 2.0 URIs; SAML 1.1 in ``SAML1_CONFIRMATION``)."""

    BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
    HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
    SENDER_VOUCHES = "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"


SAML1_CONFIRMATION: dict[Confirmation, str] = {
    Confirmation.BEARER: "urn:oasis:names:tc:SAML:1.0:cm:bearer",
    Confirmation.HOLDER_OF_KEY: "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key",
    Confirmation.SENDER_VOUCHES: "urn:oasis:names:tc:SAML:1.0:cm:sender-vouches",
}

TLSNEGO_VALUE_TYPE = "http://schemas.xmlsoap.org/ws/2005/02/trust/tlsnego"
SPNEGO_VALUE_TYPE = "http://schemas.xmlsoap.org/ws/2005/02/trust/spnego"
#: the EncryptionMethod of a proof key wrapped with the SPNEGO-negotiated key (WCF)
SPNEGO_GSS_WRAP = "http://schemas.xmlsoap.org/2005/02/trust/spnego#GSS_Wrap"
#: WS-Security Kerberos Token Profile 1.1: the token (a GSS-framed AP-REQ) and the
#: KeyIdentifier by the SHA-1 of its octets
KERBEROS_AP_REQ = (
    "http://docs.oasis-open.org/wss/oasis-wss-kerberos-token-profile-1.1#GSS_Kerberosv5_AP_REQ"
)
KERBEROS_AP_REQ_SHA1 = (
    "http://docs.oasis-open.org/wss/oasis-wss-kerberos-token-profile-1.1#Kerberosv5APREQSHA1"
)
DKT_LABEL = b"WS-SecureConversationWS-SecureConversation"
AUTH_HASH_LABEL = b"AUTH-HASH"
