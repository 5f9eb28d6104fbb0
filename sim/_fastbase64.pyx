# cython: language_level=3
"""Base64 as XML Signature and Encryption spell it, in C: every message carries a few
kilobytes of it (the CipherValue, the payload, digests, nonces), and ``binascii``'s strict
decoder spends some 25 instructions a character. Its pure-Python twin is
``sim.crypto._reference.b64encode`` / ``b64decode_canonical``.

A module of its own, beside ``sim._fastcrypto`` and ``sim._fastshape``: compiled into either,
it would move their code (see ``sim/_fastshape.pyx``).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy


cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)


cdef const char* ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
cdef unsigned char PAD = 61  # "="
#: each character's six bits; 0xFF for a character outside the alphabet ("=" included)
cdef unsigned char DECODE[256]


#: the two characters of each 12 bits, as they lie in memory: three bytes are two lookups
cdef unsigned short PAIRS[4096]


cdef void tables() noexcept:
    cdef int i
    cdef unsigned char* c_pair
    for i in range(256):
        DECODE[i] = 0xFF
    for i in range(64):
        DECODE[<unsigned char>ALPHABET[i]] = i
    for i in range(4096):
        c_pair = <unsigned char*>&PAIRS[i]
        c_pair[0] = ALPHABET[i >> 6]
        c_pair[1] = ALPHABET[i & 63]


tables()


def b64encode(bytes data):
    """``data`` in base64 on one line, as ``binascii.b2a_base64(data, newline=False)``
    spells it, as a str."""
    cdef Py_ssize_t c_n = len(data)
    cdef Py_ssize_t c_out_len = ((c_n + 2) // 3) * 4
    out = PyUnicode_New(c_out_len, 127)
    cdef unsigned char* c_out = <unsigned char*>PyUnicode_DATA(out)
    cdef const unsigned char* c_in = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t c_i = 0, c_j = 0
    cdef unsigned int c_v
    with nogil:
        while c_i + 3 <= c_n:
            c_v = (c_in[c_i] << 16) | (c_in[c_i + 1] << 8) | c_in[c_i + 2]
            memcpy(&c_out[c_j], &PAIRS[c_v >> 12], 2)
            memcpy(&c_out[c_j + 2], &PAIRS[c_v & 4095], 2)
            c_i += 3
            c_j += 4
        if c_n - c_i == 1:
            c_v = c_in[c_i] << 16
            c_out[c_j] = ALPHABET[c_v >> 18]
            c_out[c_j + 1] = ALPHABET[(c_v >> 12) & 63]
            c_out[c_j + 2] = PAD
            c_out[c_j + 3] = PAD
        elif c_n - c_i == 2:
            c_v = (c_in[c_i] << 16) | (c_in[c_i + 1] << 8)
            c_out[c_j] = ALPHABET[c_v >> 18]
            c_out[c_j + 1] = ALPHABET[(c_v >> 12) & 63]
            c_out[c_j + 2] = ALPHABET[(c_v >> 6) & 63]
            c_out[c_j + 3] = PAD
    return out


def b64decode_canonical(str text):
    """The bytes ``text`` spells when it is base64 in the one form our senders write: not
    empty, a multiple of four characters of the alphabet, the last one or two of which may
    be "=" padding; None for anything else (whitespace, other characters, misplaced or
    missing padding), which the caller reads the general way. Leftover bits of the last
    character are dropped, as ``binascii`` drops them."""
    cdef Py_ssize_t c_n = PyUnicode_GET_LENGTH(text)
    if c_n == 0 or c_n & 3 or not PyUnicode_IS_COMPACT_ASCII(text):
        return None
    cdef const unsigned char* c_in = <const unsigned char*>PyUnicode_DATA(text)
    cdef Py_ssize_t c_pad = 0
    if c_in[c_n - 1] == PAD:
        c_pad = 2 if c_in[c_n - 2] == PAD else 1
    out = PyBytes_FromStringAndSize(NULL, (c_n // 4) * 3 - c_pad)
    cdef unsigned char* c_out = <unsigned char*>PyBytes_AS_STRING(out)
    cdef Py_ssize_t c_i = 0, c_j = 0
    cdef Py_ssize_t c_whole = c_n - 4 if c_pad else c_n
    cdef unsigned int c_a, c_b, c_c, c_d, c_bad = 0
    with nogil:
        while c_i < c_whole:
            c_a = DECODE[c_in[c_i]]
            c_b = DECODE[c_in[c_i + 1]]
            c_c = DECODE[c_in[c_i + 2]]
            c_d = DECODE[c_in[c_i + 3]]
            c_bad |= c_a | c_b | c_c | c_d
            c_out[c_j] = <unsigned char>((c_a << 2) | (c_b >> 4))
            c_out[c_j + 1] = <unsigned char>((c_b << 4) | (c_c >> 2))
            c_out[c_j + 2] = <unsigned char>((c_c << 6) | c_d)
            c_i += 4
            c_j += 3
        if c_pad:
            c_a = DECODE[c_in[c_i]]
            c_b = DECODE[c_in[c_i + 1]]
            c_bad |= c_a | c_b
            c_out[c_j] = <unsigned char>((c_a << 2) | (c_b >> 4))
            if c_pad == 1:
                c_c = DECODE[c_in[c_i + 2]]
                c_bad |= c_c
                c_out[c_j + 1] = <unsigned char>((c_b << 4) | (c_c >> 2))
    if c_bad & 0x80:
        return None
    return out


def with_fast_path(fast, kind, checked):
    """The facade's ``checked`` with its common case (a value of exactly type ``kind``) done
    by the kernel's ``fast`` here: anything else goes to ``checked``, which checks it (the
    checks written there only)."""

    def call(value):
        if type(value) is kind:
            return fast(value)
        return checked(value)

    call.__doc__ = checked.__doc__
    call.__name__ = call.__qualname__ = checked.__name__
    return call
