"""Pure-Python Exclusive XML Canonicalization 1.0, the twin of the kernel's C14N.

It follows libxml2's ``xmlC14NExecute`` in exclusive mode byte for byte, including its
handling of trees built with lxml rather than parsed: an element without a namespace whose
parent scope has a default namespace is rendered with that default namespace declared, as
libxml2 does. Like libxml2 it fails (:class:`C14NError`) on a relative namespace URI in
scope in the subtree (C14N 1.0 section 2.1). Unlike libxml2 its cost is linear in the
PrefixList: what is in scope and what is rendered are dicts kept up on the way down, and
below the apex only an element's own declarations are looked up in the PrefixList (as the
kernel does, with a hash table).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lxml import etree

__all__ = ["C14NError", "exc_c14n", "is_relative"]

_XML_NS = "http://www.w3.org/XML/1998/namespace"
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", '"': "&quot;", "\t": "&#x9;", "\n": "&#xA;", "\r": "&#xD;"}
)
_CR_ESCAPE = str.maketrans({"\r": "&#xD;"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_MISSING = object()

ENTITY_MESSAGE = (
    "element contains an unexpanded entity reference; exclusive C14N needs a tree "
    "parsed with entities resolved or refused"
)


class C14NError(ValueError):
    """The subtree has no canonical form: a relative namespace URI in scope (C14N 1.0
    section 2.1: canonicalization MUST fail) or an unexpanded entity reference. Both backends
    raise it; the wire layer turns it into a fault."""


def is_relative(uri: str) -> bool:
    """True for a namespace URI without a scheme (RFC 3986 section 3.1); the empty URI (an
    undeclaration) is not one."""
    return bool(uri) and _SCHEME.match(uri) is None


def relative_uri_message(uri: str) -> str:
    shown = uri if len(uri) <= 64 else uri[:61] + "..."
    return f"namespace URI {shown!r} is relative: canonicalization fails (C14N 1.0 section 2.1)"


def exc_c14n(
    element: etree._Element, inclusive_prefixes: Sequence[str], with_comments: bool
) -> bytes:
    """Exclusive canonical form of ``element``'s subtree, as UTF-8 bytes.

    Linear in its input: each element costs its own namespace declarations and attributes
    (set and dict lookups), never a scan of the PrefixList or of what is in scope.
    """
    inclusive = frozenset(
        None if prefix in ("#default", "") else prefix for prefix in inclusive_prefixes
    )
    writer = _Writer(element, inclusive, with_comments)
    writer.element(element, apex=True)
    return "".join(writer.out).encode("utf-8")


def _declarations(element: etree._Element) -> dict[etree._Element, list]:
    """The namespace declarations each element of the subtree makes itself ((prefix or None,
    URI) pairs, in document order; elements without any are left out)."""
    found: dict[etree._Element, list] = {}
    pending: list = []
    for event, item in etree.iterwalk(element, events=("start-ns", "start")):
        if event == "start-ns":
            pending.append((item[0] or None, item[1]))
        elif pending:
            found[item] = pending
            pending = []
    return found


class _Writer:
    """One canonicalization: what is in scope and what is rendered, as dicts updated on the
    way down and restored on the way up."""

    def __init__(self, apex, inclusive: frozenset, with_comments: bool) -> None:
        self.inclusive = inclusive
        self.with_comments = with_comments
        self.declared = _declarations(apex)
        self.scope: dict[str | None, str] = dict(apex.nsmap)  # as lxml's nsmap, kept up
        self.rendered: dict[str | None, str] = {None: ""}
        self.out: list[str] = []

    def element(self, element: etree._Element, *, apex: bool = False) -> None:
        scope, rendered, out = self.scope, self.rendered, self.out
        own = self.declared.get(element, ())
        for _, uri in own:
            if is_relative(uri):
                raise C14NError(relative_uri_message(uri))
        undo_scope: list = []
        if apex:
            for uri in scope.values():
                if is_relative(uri):
                    raise C14NError(relative_uri_message(uri))
        else:
            seen: set = set()
            for prefix, uri in own:
                if prefix not in seen:  # the first of an element's declarations counts
                    seen.add(prefix)
                    undo_scope.append((prefix, scope.get(prefix, _MISSING)))
                    scope[prefix] = uri
        undo_rendered: list = []
        declarations: dict[str | None, str] = {}

        def utilize(prefix: str | None, uri: str) -> None:
            if rendered.get(prefix) != uri:
                declarations[prefix] = uri
                undo_rendered.append((prefix, rendered.get(prefix, _MISSING)))
                rendered[prefix] = uri

        # The PrefixList renders as inclusive C14N would: everything in scope at the apex,
        # below it what an element declares itself (the rest is rendered already).
        if self.inclusive:
            candidates = self.inclusive if apex else [p for p, _ in own if p in self.inclusive]
            for prefix in candidates:
                if prefix in scope and prefix != "xml":
                    utilize(prefix, scope[prefix])

        element_prefix = element.prefix
        if element_prefix is None:
            # No prefix: the default namespace in scope ("" when none, or undeclared).
            utilize(None, scope.get(None) or "")
        elif element_prefix != "xml":
            utilize(element_prefix, scope[element_prefix])

        attributes: list[tuple[int, str, str, str, str]] = []
        for attr, value in element.attrib.items():
            uri, local = _split(attr)
            if uri is None:
                attributes.append((0, "", local, local, value))
                continue
            prefix = _attribute_prefix(element, attr, uri, scope)
            if uri != _XML_NS:
                utilize(prefix, uri)
            attributes.append((1, uri, local, f"{prefix}:{local}", value))

        _, tag_local = _split(element.tag)
        name = f"{element_prefix}:{tag_local}" if element_prefix else tag_local
        out.append(f"<{name}")
        for prefix in sorted(declarations, key=lambda p: p or ""):
            uri = declarations[prefix]  # libxml2 writes namespace URIs unescaped
            out.append(f' xmlns:{prefix}="{uri}"' if prefix else f' xmlns="{uri}"')
        for _, _, _, qualified, value in sorted(attributes, key=lambda a: a[:3]):
            out.append(f' {qualified}="{value.translate(_ATTR_ESCAPES)}"')
        out.append(">")

        if element.text:
            out.append(element.text.translate(_TEXT_ESCAPES))
        for child in element:
            if isinstance(child, etree._Comment):
                if self.with_comments:
                    out.append(f"<!--{(child.text or '').translate(_CR_ESCAPE)}-->")
            elif isinstance(child, etree._ProcessingInstruction):
                out.append(_pi(child))
            elif isinstance(child, etree._Entity):
                raise C14NError(ENTITY_MESSAGE)
            else:
                self.element(child)
            if child.tail:
                out.append(child.tail.translate(_TEXT_ESCAPES))
        out.append(f"</{name}>")
        for table, undo in ((rendered, undo_rendered), (scope, undo_scope)):
            for prefix, previous in reversed(undo):
                if previous is _MISSING:
                    del table[prefix]
                else:
                    table[prefix] = previous


def _pi(node: etree._ProcessingInstruction) -> str:
    text = node.text or ""
    if text:
        return f"<?{node.target} {text.translate(_CR_ESCAPE)}?>"
    return f"<?{node.target}?>"


def _split(tag: str) -> tuple[str | None, str]:
    if tag[0] == "{":
        uri, _, local = tag[1:].partition("}")
        return uri, local
    return None, tag


def _attribute_prefix(
    element: etree._Element, key: str, uri: str, nsmap: dict[str | None, str]
) -> str:
    """The prefix libxml2 holds for a namespaced attribute (attributes never use the default)."""
    if uri == _XML_NS:
        return "xml"
    candidates = [p for p, u in nsmap.items() if u == uri and p is not None]
    if not candidates:
        raise ValueError(f"attribute namespace {uri!r} has no prefix in scope")
    if len(candidates) == 1:
        return candidates[0]
    return _serialized_prefixes(element)[key]


_ATTRIBUTE_NAME = re.compile(r'\s([^\s="]+)="[^"]*"')


def _serialized_prefixes(element: etree._Element) -> dict[str, str]:
    """Several prefixes bound to one URI: read the prefix each attribute carries.

    lxml does not expose an attribute's prefix, but it serializes attributes in the order of
    ``attrib`` with their own prefixes, and escapes ``>`` inside values.
    """
    start_tag = etree.tostring(element, with_tail=False).decode("utf-8").split(">", 1)[0]
    names = [n for n in _ATTRIBUTE_NAME.findall(start_tag) if not n.startswith("xmlns")]
    prefixes: dict[str, str] = {}
    for key, name in zip(element.attrib.keys(), names, strict=True):
        if key[0] == "{" and ":" in name:
            prefixes[key] = name.partition(":")[0]
    return prefixes
