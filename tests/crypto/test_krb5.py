"""Kerberos string-to-key through OpenSSL's PBKDF2 gives minikerberos' reference keys."""

from __future__ import annotations

import pytest
from minikerberos.protocol import encryption as reference

from sim.crypto import krb5


@pytest.mark.parametrize(
    "enctype", [krb5.Enctype.AES128_CTS_HMAC_SHA1_96, krb5.Enctype.AES256_CTS_HMAC_SHA1_96]
)
@pytest.mark.parametrize(
    "password,salt,iterations",
    [
        ("password", "ATHENA.MIT.EDUraeburn", 1),
        ("password-of-user-007", "WSSIM.TESTuser-007", krb5.AES_ITERATIONS),
        ("pässwörd" * 9, "EXAMPLE.COMuser", 2),  # longer than a SHA-1 block, not ASCII
        ("", "", 3),
    ],
)
def test_aes_string_to_key_equals_the_reference_implementation(enctype, password, salt, iterations):
    expected = reference.string_to_key(
        int(enctype), password.encode(), salt.encode(), iterations.to_bytes(4, "big")
    )
    assert krb5.string_to_key(enctype, password, salt, iterations).value == expected.contents
