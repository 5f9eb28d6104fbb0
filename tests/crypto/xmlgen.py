"""Random namespaced XML documents for canonicalization property tests."""

from __future__ import annotations

import random

from lxml import etree

URIS = ("urn:a", "urn:b", "http://example.com/y", "urn:c&d", "urn:\u00e9")
PREFIXES = ("p", "q", "r", None)
ATTR_VALUES = (
    "v",
    "x&amp;y",
    "t&#9;ab",
    "l&#10;f",
    "q&quot;",
    "c&#13;r",
    "&lt;",
    ">",
    "\u00e9",
    "",
)
TEXTS = ("text", "a&amp;b", "&lt;&gt;", "&#13;", "\u00fc\u4e2d", " \n ", "\t")


def random_element(rng: random.Random, depth: int, in_scope: dict) -> str:
    """Serialized element with random namespace declarations, attributes and content."""
    declared = {}
    for prefix in PREFIXES:
        if rng.random() < 0.25:
            choices = URIS + (("",) if prefix is None else ())
            declared[prefix] = rng.choice(choices)
    scope = {**in_scope, **declared}
    usable = [p for p in scope if p is not None and scope[p]]
    tag_prefix = rng.choice([*usable, None, None]) if usable else None
    name = (f"{tag_prefix}:" if tag_prefix else "") + rng.choice("efg")
    parts = [name]
    for prefix, uri in declared.items():
        attr = f"xmlns:{prefix}" if prefix else "xmlns"
        parts.append(f'{attr}="{uri.replace("&", "&amp;")}"')
    seen = set()
    for _ in range(rng.randint(0, 4)):
        prefix = rng.choice([*usable, None, "xml"])
        local = rng.choice(("lang", "space", "base", "a")) if prefix == "xml" else rng.choice("abc")
        key = (scope.get(prefix, "xml"), local)
        if key in seen:
            continue
        seen.add(key)
        value = "preserve" if (prefix, local) == ("xml", "space") else rng.choice(ATTR_VALUES)
        parts.append(f'{prefix + ":" if prefix else ""}{local}="{value}"')
    body = []
    if depth > 0:
        for _ in range(rng.randint(0, 4)):
            roll = rng.random()
            if roll < 0.5:
                body.append(random_element(rng, depth - 1, scope))
            elif roll < 0.6:
                body.append("<!-- comment \u00e9 -->")
            elif roll < 0.7:
                body.append("<?target some data?>")
            elif roll < 0.75:
                body.append("<?empty?>")
            elif roll < 0.8:
                body.append("<![CDATA[a<b&c]]>")
            else:
                body.append(rng.choice(TEXTS))
    return f"<{' '.join(parts)}>{''.join(body)}</{name}>"


def random_document(rng: random.Random, depth: int = 4) -> etree._Element:
    """A parsed random document (retrying until the random choices are well-formed)."""
    while True:
        try:
            return etree.fromstring(random_element(rng, depth, {}).encode("utf-8"))
        except etree.XMLSyntaxError:
            continue


def random_subtree(rng: random.Random, root: etree._Element) -> etree._Element:
    return rng.choice(list(root.iter(etree.Element)))
