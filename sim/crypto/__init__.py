"""The crypto facade: key derivation and exclusive canonicalization for wssim.

One public surface over two backends with identical results: the Cython kernel
``sim._fastcrypto`` with ``sim._fastshape`` (fast path) and the pure-Python reference
:mod:`sim.crypto._reference`.
``BACKEND`` says which is loaded; ``SIM_PURE_PYTHON=1`` forces the reference. Arguments are
checked here, once, so that both backends receive only valid input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from lxml import etree

from sim import _kernel
from sim.crypto import _reference
from sim.crypto._c14n import C14NError

# The kernel's names again (``_reference.__all__``, the twin's): the facade checks the
# arguments of each, then calls the backend's function of the same name.
__all__ = [
    "BACKEND",
    "DEFAULT_LABEL",
    "MAX_DERIVED_LENGTH",
    "MAX_UT_ITERATIONS",
    "C14NError",
    "CompiledLayout",
    "Pattern",
    "aes_cbc_decrypt",
    "aes_cbc_encrypt",
    "b64decode_canonical",
    "b64encode",
    "c14n_digest",
    "c14n_digest_sized",
    "compile_layout",
    "computed_key",
    "derive_key",
    "derive_keys",
    "exc_c14n",
    "hmac_sha1",
    "id_index",
    "match_layout",
    "namespace_declarations",
    "p_sha1",
    "shape_violation",
    "ut_derive_key",
]

DEFAULT_LABEL = b"WS-SecureConversationWS-SecureConversation"
#: Largest ``offset + length`` accepted by P_SHA-1 based functions (1 MiB).
MAX_DERIVED_LENGTH = 1 << 20
#: Largest UsernameToken iteration count accepted.
MAX_UT_ITERATIONS = 1 << 24
#: Largest AES-CBC input accepted (1 GiB).
MAX_CBC_BYTES = 1 << 30
DIGESTS = ("sha1", "sha256")


def _load_backend():  # -> (module, module, module, name)
    if _kernel.pure_python_chosen():
        return _reference, _reference, _reference, "python"
    try:
        from sim import _fastcrypto, _fastshape
    except ImportError as error:  # not built, or built against another OpenSSL / lxml
        _kernel.warn_missing(str(error))
        return _reference, _reference, _reference, "python"
    try:
        from sim import _fastbase64
    except ImportError as error:  # a build older than the base64 kernel: its twin
        _kernel.warn_missing(str(error))
        return _fastcrypto, _fastshape, _reference, "cython"
    return _fastcrypto, _fastshape, _fastbase64, "cython"


_impl, _shape_impl, _base64_impl, BACKEND = _load_backend()
BACKEND: Literal["cython", "python"]
_p_sha1 = _impl.p_sha1
_hmac_sha1 = _impl.hmac_sha1
_exc_c14n = _impl.exc_c14n
_c14n_digest = _impl.c14n_digest
_c14n_digest_sized = _impl.c14n_digest_sized
_shape_violation = _impl.shape_violation
_id_index = _impl.id_index
_namespace_declarations = _impl.namespace_declarations
_match_layout = _shape_impl.match_layout
_aes_cbc = _impl.aes_cbc
_b64encode = _base64_impl.b64encode
_b64decode_canonical = _base64_impl.b64decode_canonical
_PLAIN_ELEMENT = etree._Element


def _need_bytes(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def _need_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _check_span(length: object, offset: object) -> tuple[int, int]:
    length = _need_int("length", length, 1, MAX_DERIVED_LENGTH)
    offset = _need_int("offset", offset, 0, MAX_DERIVED_LENGTH)
    if length + offset > MAX_DERIVED_LENGTH:
        raise ValueError(
            f"offset + length must be at most {MAX_DERIVED_LENGTH}, got {offset + length}"
        )
    return length, offset


def _need_element(value: object) -> etree._Element:
    if not isinstance(value, etree._Element) or isinstance(
        value, (etree._Comment, etree._ProcessingInstruction, etree._Entity)
    ):
        raise TypeError(f"element must be an lxml element, not {type(value).__name__}")
    return value


def _need_prefixes(value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError("inclusive_prefixes must be a sequence of prefix strings")
    prefixes = tuple(value)
    for prefix in prefixes:
        if not isinstance(prefix, str):
            raise TypeError(f"inclusive_prefixes must hold str, not {type(prefix).__name__}")
    return prefixes


def p_sha1(secret: bytes, seed: bytes, length: int, offset: int = 0) -> bytes:
    """Bytes ``[offset, offset+length)`` of P_SHA-1(secret, seed) as in RFC 2246 section 5."""
    secret = _need_bytes("secret", secret)
    seed = _need_bytes("seed", seed)
    length, offset = _check_span(length, offset)
    return _p_sha1(secret, seed, length, offset)


def hmac_sha1(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA1 of ``data`` under ``key`` (RFC 2104; XML Signature's hmac-sha1)."""
    return _hmac_sha1(_need_bytes("key", key), _need_bytes("data", data))


def _key_offset(length: int, offset: int, generation: int | None) -> int:
    if generation is None:
        return offset
    generation = _need_int("generation", generation, 0, MAX_DERIVED_LENGTH)
    if offset:
        raise ValueError("offset and generation are exclusive; give one of them")
    return generation * length


def derive_key(
    secret: bytes,
    *,
    nonce: bytes,
    length: int = 32,
    offset: int = 0,
    label: bytes = DEFAULT_LABEL,
    generation: int | None = None,
) -> bytes:
    """A WS-SecureConversation 1.3 DerivedKeyToken key: P_SHA-1(secret, label || nonce).

    ``generation`` (the DKT Generation form) is exclusive with ``offset`` and means
    ``offset = generation * length``.
    """
    secret = _need_bytes("secret", secret)
    nonce = _need_bytes("nonce", nonce)
    label = _need_bytes("label", label)
    _need_int("length", length, 1, MAX_DERIVED_LENGTH)
    offset = _key_offset(length, offset, generation)
    length, offset = _check_span(length, offset)
    return _p_sha1(secret, label + nonce, length, offset)


if hasattr(_impl, "derive_key_with"):
    # The kernel computes the plainly valid case in C and hands everything else (every
    # error included) to the checked function above: the checks are written once, there.
    derive_key = _impl.derive_key_with(derive_key, MAX_DERIVED_LENGTH)


def derive_keys(
    secret: bytes,
    nonces: Sequence[bytes],
    *,
    length: int = 32,
    label: bytes = DEFAULT_LABEL,
) -> list[bytes]:
    """The batch form of :func:`derive_key`: one key per nonce, same secret, offset 0."""
    secret = _need_bytes("secret", secret)
    label = _need_bytes("label", label)
    if isinstance(nonces, (bytes, bytearray, memoryview, str)):
        raise TypeError("nonces must be a sequence of bytes, not a single value")
    seeds = [label + _need_bytes("nonces[]", nonce) for nonce in nonces]
    length, _ = _check_span(length, 0)
    return _impl.derive_keys(secret, seeds, length, 0)


def computed_key(requestor_entropy: bytes, issuer_entropy: bytes, bits: int) -> bytes:
    """WS-Trust 1.3 computed key CK/PSHA1: P_SHA-1(requestor entropy, issuer entropy)."""
    requestor_entropy = _need_bytes("requestor_entropy", requestor_entropy)
    issuer_entropy = _need_bytes("issuer_entropy", issuer_entropy)
    bits = _need_int("bits", bits, 8, MAX_DERIVED_LENGTH * 8)
    if bits % 8:
        raise ValueError(f"bits must be a multiple of 8, got {bits}")
    return _p_sha1(requestor_entropy, issuer_entropy, bits // 8, 0)


def ut_derive_key(password: bytes, salt: bytes, iterations: int) -> bytes:
    """WSS UsernameToken Profile 1.1 key: K1 = SHA1(password || salt), Ki = SHA1(Ki-1)."""
    password = _need_bytes("password", password)
    salt = _need_bytes("salt", salt)
    iterations = _need_int("iterations", iterations, 1, MAX_UT_ITERATIONS)
    return _impl.ut_derive_key(password, salt, iterations)


def exc_c14n(
    element: etree._Element,
    *,
    inclusive_prefixes: Sequence[str] = (),
    with_comments: bool = False,
) -> bytes:
    """Exclusive XML Canonicalization 1.0 of the subtree rooted at ``element``.

    Byte-identical to libxml2's (``etree.tostring(el, method="c14n", exclusive=True)``).
    ``inclusive_prefixes`` is the InclusiveNamespaces PrefixList; ``"#default"`` names the
    default namespace. The cost is linear in the subtree and the PrefixList. Raises
    :class:`C14NError` when a namespace URI in scope in the subtree is relative (C14N 1.0
    section 2.1: canonicalization MUST fail, as libxml2's does) or the subtree holds an
    unexpanded entity reference.
    """
    if type(element) is not _PLAIN_ELEMENT:
        element = _need_element(element)
    prefixes = (
        inclusive_prefixes if inclusive_prefixes == () else _need_prefixes(inclusive_prefixes)
    )
    if with_comments is not False and with_comments is not True:
        raise TypeError(f"with_comments must be a bool, not {type(with_comments).__name__}")
    return _exc_c14n(element, prefixes, with_comments)


def _digest_arguments(element: object, algorithm: object, inclusive_prefixes: object) -> tuple:
    if type(element) is not _PLAIN_ELEMENT:
        element = _need_element(element)
    if algorithm != "sha1" and algorithm != "sha256":
        if not isinstance(algorithm, str):
            raise TypeError(f"algorithm must be a str, not {type(algorithm).__name__}")
        raise ValueError(f"algorithm must be one of {', '.join(DIGESTS)}, got {algorithm!r}")
    prefixes = (
        inclusive_prefixes if inclusive_prefixes == () else _need_prefixes(inclusive_prefixes)
    )
    return element, algorithm, prefixes


def c14n_digest(
    element: etree._Element,
    algorithm: str = "sha1",
    *,
    inclusive_prefixes: Sequence[str] = (),
) -> bytes:
    """Digest (``"sha1"`` or ``"sha256"``) of :func:`exc_c14n` of ``element``."""
    return _c14n_digest(*_digest_arguments(element, algorithm, inclusive_prefixes))


def c14n_digest_sized(
    element: etree._Element,
    algorithm: str = "sha1",
    *,
    inclusive_prefixes: Sequence[str] = (),
) -> tuple[bytes, int]:
    """:func:`c14n_digest` and the byte length of the canonical form, in one pass.

    The size is what an operation ledger records for the canonicalization and the digest.
    """
    return _c14n_digest_sized(*_digest_arguments(element, algorithm, inclusive_prefixes))


# --- document walks for receivers ----------------------------------------------------------


def shape_violation(
    root: etree._Element, *, max_depth: int, max_elements: int, max_attributes: int
) -> tuple[str, int, etree._Element] | None:
    """The first way ``root``'s subtree breaks the limits, in document order:
    ``("depth", max_depth, element)``, ``("elements", max_elements, element)`` or
    ``("attributes", count, element)``; None when it keeps them."""
    if type(root) is not _PLAIN_ELEMENT:
        root = _need_element(root)
    limits = (
        _need_int("max_depth", max_depth, 1, 1 << 30),
        _need_int("max_elements", max_elements, 1, 1 << 30),
        _need_int("max_attributes", max_attributes, 0, 1 << 30),
    )
    return _shape_violation(root, *limits)


def id_index(root: etree._Element) -> tuple[dict[str, etree._Element], str | None]:
    """``(ids, duplicate)``: the elements of ``root``'s subtree by the value of each of their
    wsu:Id, Id, ID and AssertionID attributes, and the first value two different elements
    share (None when every id is unique)."""
    if type(root) is not _PLAIN_ELEMENT:
        root = _need_element(root)
    found = _id_index(root)
    if found is None:  # an id that is not plain text: the kernel leaves it to lxml
        found = _reference.id_index(root)
    return found


def namespace_declarations(element: etree._Element) -> int:
    """How many namespace declarations ``element``, its ancestors and its descendants make
    (each ``xmlns`` / ``xmlns:p`` attribute as written, redundant ones included): what can be
    in scope somewhere in its subtree, which a receiver bounds before canonicalizing it."""
    if type(element) is not _PLAIN_ELEMENT:
        element = _need_element(element)
    return _namespace_declarations(element)


class Pattern(NamedTuple):
    """One element of a layout: its name (``namespace`` None: any element), whether the
    element itself is captured (``keep``), the ``attributes`` (local name, namespace or
    None) whose values are captured (None when absent), and its content: ``"elements"``
    (exactly ``children`` in order, whitespace text between them; the last may repeat up to
    its ``most`` times, captured as one tuple of capture tuples), ``"text"`` (plain text,
    captured, None when there is none) or ``"empty"`` (nothing at all). Comments and
    processing instructions never match. Attribute values and text must be plain text."""

    namespace: str | None
    local: str | None
    keep: bool = False
    attributes: tuple[tuple[str, str | None], ...] = ()
    content: Literal["elements", "text", "empty"] = "elements"
    children: tuple[Pattern, ...] = ()
    most: int = 1


class CompiledLayout:
    """A :class:`Pattern` tree checked and compiled for :func:`match_layout`."""

    __slots__ = ("program",)

    def __init__(self, program: tuple) -> None:
        self.program = program


_KINDS = {"elements": 0, "text": 1, "empty": 2}


def _compile(pattern: Pattern, last: bool) -> tuple:
    if not isinstance(pattern, Pattern):
        raise TypeError(f"a layout is made of Pattern, not {type(pattern).__name__}")
    if (pattern.namespace is None) != (pattern.local is None):
        raise ValueError("a pattern names both namespace and local name, or neither")
    _need_int("most", pattern.most, 1, 1 << 16)
    if pattern.most > 1 and not last:
        raise ValueError("only the last child of a pattern may repeat")
    if pattern.content not in _KINDS or (pattern.children and pattern.content != "elements"):
        raise ValueError(f"content {pattern.content!r} with children {len(pattern.children)}")
    children = pattern.children
    return (
        None if pattern.namespace is None else pattern.namespace.encode(),
        None if pattern.local is None else pattern.local.encode(),
        bool(pattern.keep),
        tuple(
            (name.encode(), None if href is None else href.encode())
            for name, href in pattern.attributes
        ),
        _KINDS[pattern.content],
        tuple(_compile(child, i == len(children) - 1) for i, child in enumerate(children)),
        pattern.most,
    )


def compile_layout(pattern: Pattern) -> CompiledLayout:
    """``pattern`` checked and compiled once, for :func:`match_layout`."""
    return CompiledLayout(_compile(pattern, True))


def match_layout(element: etree._Element, layout: CompiledLayout) -> tuple | None:
    """The captures of ``element`` matched against ``layout`` in one walk, in the layout's
    order (depth first: the kept element, its attributes, its text, its children's), or
    None when it does not match."""
    if type(element) is not _PLAIN_ELEMENT:
        element = _need_element(element)
    if type(layout) is not CompiledLayout:
        raise TypeError(f"layout must come from compile_layout, not {type(layout).__name__}")
    return _match_layout(element, layout.program)


# --- AES-CBC ------------------------------------------------------------------------------


def _check_cbc(key: object, iv: object, data: object) -> tuple[bytes, bytes, bytes]:
    key = _need_bytes("key", key)
    iv = _need_bytes("iv", iv)
    data = _need_bytes("data", data)
    if len(key) not in (16, 24, 32):
        raise ValueError(f"an AES key has 16, 24 or 32 bytes, not {len(key)}")
    if len(iv) != 16:
        raise ValueError(f"the IV has 16 bytes, not {len(iv)}")
    if len(data) % 16 or len(data) > MAX_CBC_BYTES:
        raise ValueError(f"AES-CBC takes whole 16-byte blocks (up to {MAX_CBC_BYTES} bytes)")
    return key, iv, data


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CBC encryption of whole blocks, no padding (XML Encryption pads on its own)."""
    return _aes_cbc(*_check_cbc(key, iv, data), True)


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Inverse of :func:`aes_cbc_encrypt`."""
    return _aes_cbc(*_check_cbc(key, iv, data), False)


# --- base64 -------------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """``data`` in base64 on one line (no newline), as XML Signature and Encryption spell
    it, as a str."""
    if type(data) is not bytes:
        data = _need_bytes("data", data)
    return _b64encode(data)


def b64decode_canonical(text: str) -> bytes | None:
    """The bytes ``text`` spells when it is base64 in the form our senders write (not empty,
    whole four-character groups, "=" padding only at the end, no whitespace); None for
    anything else, which the caller decodes the general, strict way. Where it gives bytes,
    they are ``binascii.a2b_base64(text, strict_mode=True)``'s."""
    if type(text) is not str:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        text = str(text)
    return _b64decode_canonical(text)


if hasattr(_base64_impl, "with_fast_path"):
    # The kernel takes the common case (bytes, a str) itself and hands anything else to the
    # checked function above: one call a value, the checks written once, there.
    b64encode = _base64_impl.with_fast_path(_base64_impl.b64encode, bytes, b64encode)
    b64decode_canonical = _base64_impl.with_fast_path(
        _base64_impl.b64decode_canonical, str, b64decode_canonical
    )
