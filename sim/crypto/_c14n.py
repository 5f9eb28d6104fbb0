"""Pure-Python Exclusive XML Canonicalization 1.0, the twin of the kernel's C14N.

It follows libxml2's ``xmlC14NExecute`` in exclusive mode byte for byte, including its
handling of trees built with lxml rather than parsed: an element without a namespace whose
parent scope has a default namespace is rendered with that default namespace declared, as
libxml2 does. When the element is the root of its document, the document's top-level
comments and processing instructions are part of the output, as with
``etree.tostring(root, method="c14n", exclusive=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lxml import etree

__all__ = ["exc_c14n"]

_XML_NS = "http://www.w3.org/XML/1998/namespace"
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", '"': "&quot;", "\t": "&#x9;", "\n": "&#xA;", "\r": "&#xD;"}
)
_CR_ESCAPE = str.maketrans({"\r": "&#xD;"})


def exc_c14n(
    element: etree._Element, inclusive_prefixes: Sequence[str], with_comments: bool
) -> bytes:
    """Exclusive canonical form of ``element``'s subtree, as UTF-8 bytes."""
    inclusive = tuple(
        None if prefix in ("#default", "") else prefix for prefix in inclusive_prefixes
    )
    out: list[str] = []
    _element(element, {None: ""}, inclusive, with_comments, out)
    return "".join(out).encode("utf-8")


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


def _element(
    element: etree._Element,
    rendered: dict[str | None, str],
    inclusive: tuple[str | None, ...],
    with_comments: bool,
    out: list[str],
) -> None:
    nsmap = element.nsmap
    rendered = dict(rendered)
    declarations: dict[str | None, str] = {}

    def utilize(prefix: str | None, uri: str) -> None:
        if rendered.get(prefix) != uri:
            declarations[prefix] = uri
        rendered[prefix] = uri

    for prefix in inclusive:
        if prefix in nsmap and prefix != "xml":
            utilize(prefix, nsmap[prefix])

    element_prefix = element.prefix
    if element_prefix is None:
        # No prefix: the default namespace in scope ("" when none, or undeclared).
        utilize(None, nsmap.get(None) or "")
    elif element_prefix != "xml":
        utilize(element_prefix, nsmap[element_prefix])

    attributes: list[tuple[int, str, str, str, str]] = []
    for attr, value in element.attrib.items():
        uri, local = _split(attr)
        if uri is None:
            attributes.append((0, "", local, local, value))
            continue
        prefix = _attribute_prefix(element, attr, uri, nsmap)
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
            if with_comments:
                out.append(f"<!--{(child.text or '').translate(_CR_ESCAPE)}-->")
        elif isinstance(child, etree._ProcessingInstruction):
            out.append(_pi(child))
        elif isinstance(child, etree._Entity):
            raise ValueError(
                f"element contains an unexpanded entity reference &{child.name}; "
                "exclusive C14N needs a tree parsed with entities resolved or refused"
            )
        else:
            _element(child, rendered, inclusive, with_comments, out)
        if child.tail:
            out.append(child.tail.translate(_TEXT_ESCAPES))
    out.append(f"</{name}>")


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
