"""Small helpers shared by the wire modules: element building, ids, time, base64."""

from __future__ import annotations

import binascii
import calendar
import functools
import os
import re
import threading
import time
from datetime import datetime, timezone

from lxml import etree

import sim.crypto as crypto
from sim.errors import InvalidSecurity
from sim.wire import ns

#: Simulated time 0.0 is this instant; messages carry ``EPOCH + now``.
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_EPOCH_SECONDS = calendar.timegm(EPOCH.timetuple())
WSU_ID = ns.qname(ns.WSU, "Id")
#: Attributes that carry element ids, in the order they are looked up.
ID_ATTRIBUTES = (WSU_ID, "Id", "ID", "AssertionID")


def element(tag: str, attrib: dict[str, str] | None = None, nsmap=None, text: str | None = None):
    """A new element; ``tag`` in Clark notation."""
    el = etree.Element(tag, attrib or {}, nsmap=nsmap)
    if text is not None:
        el.text = text
    return el


def sub(
    parent, tag: str, attrib: dict[str, str] | None = None, text: str | None = None, nsmap=None
):
    """A new child element of ``parent``."""
    el = etree.SubElement(parent, tag, attrib or {}, nsmap=nsmap)
    if text is not None:
        el.text = text
    return el


#: Parser for fragments this process generated itself (see :func:`fragment`).
_FRAGMENT_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, collect_ids=False
)
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"))


def escape(value: str) -> str:
    """``value`` made safe as XML text or a double-quoted attribute value."""
    if "&" in value or "<" in value or ">" in value or '"' in value:
        for char, entity in _ESCAPES:
            value = value.replace(char, entity)
    return value


def fragment(text: str):
    """The element a generated XML fragment spells (a fast alternative to building many
    elements one by one: libxml2 parses a whole template faster than lxml creates its nodes).
    Every value put into ``text`` must have gone through :func:`escape`. Appended into a
    document, the fragment's namespace declarations that the new parent already makes are
    dropped by lxml, as for an element built in place."""
    return etree.fromstring(text, _FRAGMENT_PARSER)


class _RandomPool:
    """Bytes from the OS random source drawn 4 KB at a time and handed out once each: one
    system call for 256 ids instead of one each."""

    __slots__ = ("_buffer", "_offset")
    _DRAW = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def take(self, count: int) -> bytes:
        buffer, offset = self._buffer, self._offset
        end = offset + count
        if end > len(buffer):
            buffer, offset, end = os.urandom(max(self._DRAW, count)), 0, count
            self._buffer = buffer
        self._offset = end
        return buffer[offset:end]


#: one pool per thread, so that no two threads hand out the same bytes
_POOLS = threading.local()


def _forget_pools() -> None:
    """In a forked child: start afresh, never handing out bytes the parent may hand out."""
    _POOLS.__dict__.clear()


os.register_at_fork(after_in_child=_forget_pools)


def fresh_bytes(count: int) -> bytes:
    """``count`` bytes from the OS random source (ids, nonces, IVs, keys), each handed out
    once, in this process and thread only."""
    try:
        pool = _POOLS.pool
    except AttributeError:
        pool = _POOLS.pool = _RandomPool()
    # take()'s common case inline: some fifteen draws a message
    offset = pool._offset
    end = offset + count
    buffer = pool._buffer
    if end > len(buffer):
        return pool.take(count)
    pool._offset = end
    return buffer[offset:end]


def new_id(prefix: str = "id-") -> str:
    """A fixed-width element id (``id-`` + 32 hex digits), never handed out twice."""
    return prefix + fresh_bytes(16).hex()


def new_uuid_urn() -> str:
    """A fixed-width ``urn:uuid:`` URI."""
    h = bytearray(fresh_bytes(16))
    h[6] = (h[6] & 0x0F) | 0x40  # version 4
    h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = h.hex()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def get_id(el) -> str | None:
    """The element's id from wsu:Id, Id, ID or AssertionID (first found)."""
    for name in ID_ATTRIBUTES:
        value = el.get(name)
        if value is not None:
            return value
    return None


def ensure_id(el, prefix: str = "id-", attribute: str = WSU_ID) -> str:
    """The element's id, giving it one in ``attribute`` (wsu:Id by default) when it has none."""
    current = get_id(el)
    if current is None:
        current = new_id(prefix)
        el.set(attribute, current)
    return current


def format_time(now: float) -> str:
    """Simulated seconds as a fixed-width xsd:dateTime with milliseconds (``...T..:..:..000Z``)."""
    seconds, millis = divmod(round(now * 1000), 1000)
    return f"{_second(seconds)}{millis:03d}Z"


@functools.lru_cache(maxsize=1024)
def _second(seconds: int) -> str:
    """The date and time of a whole simulated second, up to its fraction: every message
    writes two (Created, Expires), and the messages of one second share them."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(_EPOCH_SECONDS + seconds))


#: xsd:dateTime: a year of four digits (no sign), month, day, "T", hours, minutes, seconds,
#: an optional fraction (read to the microsecond) and an optional zone ("Z" or an offset of at
#: most 14 hours).
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,12})?"
    r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?",
    re.ASCII,
)
_EPOCH_NAIVE = EPOCH.replace(tzinfo=None)


def parse_time(text: str | None, what: str) -> float:
    """An xsd:dateTime (UTC when it names no zone) as simulated seconds; anything else, or a
    date that does not exist, is a typed fault naming ``what``."""
    if not text:
        raise InvalidSecurity(f"{what} is missing a date-time value")
    value = text.strip()
    if _DATE_TIME.fullmatch(value) is None:
        raise InvalidSecurity(f"{what} is not an xsd:dateTime: {text[:40]!r}")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        instant = datetime.fromisoformat(value)  # the form checked, the calendar checked here
    except ValueError:
        raise InvalidSecurity(f"{what} names no such instant: {text[:40]!r}") from None
    if instant.tzinfo is None:
        return (instant - _EPOCH_NAIVE).total_seconds()
    return (instant - EPOCH).total_seconds()


def parse_int(text: str | None, what: str, *, low: int, high: int) -> int:
    """A decimal integer in ``low..high`` (ASCII digits only, no sign, no spaces inside);
    anything else is a typed fault naming ``what``. ``int()`` alone would take other
    scripts' digits, underscores and signs, and raise ValueError on "²", which
    ``str.isdigit`` accepts."""
    value = (text or "").strip()
    if not value or len(value) > len(str(high)) or not (value.isascii() and value.isdigit()):
        raise InvalidSecurity(f"{what} must be an integer {low}..{high}")
    number = int(value)
    if not low <= number <= high:
        raise InvalidSecurity(f"{what} must be an integer {low}..{high}")
    return number


#: Base64 on one line (no newline), as XML Signature and Encryption spell it.
b64 = crypto.b64encode
_b64decode_canonical = crypto.b64decode_canonical


def unb64(text: str | None, what: str) -> bytes:
    """Strict base64 decoding (whitespace allowed), raising a typed fault naming ``what``.
    Give it an element's whole text (:func:`b64_of`), never ``el.text``: a comment splits
    the text, and the first part alone may be valid base64."""
    if text is None:
        raise InvalidSecurity(f"{what} is empty")
    data = _b64decode_canonical(text)  # the form our senders write, in one pass
    if data is not None:
        return data
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        pass  # perhaps whitespace, which the strict decoder refuses: strip it and try again
    try:
        return binascii.a2b_base64("".join(text.split()), strict_mode=True)
    except (binascii.Error, ValueError):
        raise InvalidSecurity(f"{what} is not valid base64") from None


def b64_of(el, what: str) -> bytes:
    """The base64 content of a simple-content element, from its whole text."""
    return unb64(whole_text(el, what), what)


def children(el, tag: str) -> list:
    """Direct children of ``el`` with Clark name ``tag``."""
    if type(tag) is str and "*" not in tag and not tag.startswith("{}"):  # else a pattern
        try:
            # lxml matches the name in C, making no tag string (nor proxy) for the others
            return list(el.iterchildren(tag))
        except ValueError:  # not a name lxml takes ("", "{a"): compare the strings
            pass
    return [child for child in el if child.tag == tag]


def children_by_tag(el, names: dict[str, str]) -> dict:
    """In one pass, the direct children of ``el`` whose tag is a key of ``names`` (Clark tag
    -> name used in faults), by tag; a repeated one is a typed fault."""
    found: dict = {}
    for child in el:
        tag = child.tag
        if tag in names:
            if tag in found:
                count = sum(1 for other in el if other.tag == tag)
                raise InvalidSecurity(f"{names[tag]} appears {count} times")
            found[tag] = child
    return found


def required(found: dict, tag: str, what: str):
    """``found[tag]``, or the typed fault saying ``what`` is missing."""
    el = found.get(tag)
    if el is None:
        raise InvalidSecurity(f"{what} is missing")
    return el


def one_child(el, tag: str, what: str, *, required: bool = True):
    """The only direct child named ``tag``; typed fault when missing (if required) or repeated."""
    found = children(el, tag)
    if len(found) > 1:
        raise InvalidSecurity(f"{what} appears {len(found)} times")
    if not found:
        if required:
            raise InvalidSecurity(f"{what} is missing")
        return None
    return found[0]


def whole_text(el, what: str, *, strip: bool = True) -> str:
    """The text of a simple-content element, whole and (unless ``strip`` is false) stripped
    of surrounding whitespace.

    Exclusive C14N drops comments, so ``PAY 1000000<!---->X`` verifies: a reader that took
    ``el.text`` alone would see ``PAY 10``. Where the schema has text, an element holding a
    comment, a processing instruction or a child element is refused (typed fault naming
    ``what``, check ``text``); every value a receiver decides on is read through here.
    """
    if len(el):
        kinds = {
            "comment"
            if isinstance(c, etree._Comment)
            else "processing instruction"
            if isinstance(c, etree._ProcessingInstruction)
            else "child node"
            for c in el
        }
        raise InvalidSecurity(
            f"{what} holds a {' and a '.join(sorted(kinds))} where text belongs", check="text"
        )
    text = el.text or ""
    return text.strip() if strip else text


def text_of(el, tag: str, what: str, *, required: bool = True) -> str | None:
    """The whole text (:func:`whole_text`) of the only child ``tag`` of ``el``."""
    child = one_child(el, tag, what, required=required)
    if child is None:
        return None
    return whole_text(child, what)


def faults_as(fault: type[InvalidSecurity]):
    """Decorator: a generic InvalidSecurity raised while reading a structure becomes ``fault``
    (wst:InvalidRequest for WS-Trust messages, InvalidSecurityToken for tokens)."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except InvalidSecurity as exc:
                if type(exc) is InvalidSecurity:
                    raise fault(exc.reason, check=exc.check) from None
                raise

        return wrapper

    return decorate
