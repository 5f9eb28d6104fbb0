# cython: language_level=3
"""A one-pass match of an element against a layout (a pattern of nested elements), in C over
libxml2's nodes (lxml's public C API); its pure-Python twin is
``sim.crypto._reference.match_layout``, and ``sim.crypto.Pattern`` says what a layout is. It
knows no element names: the caller's layout names them (``sim.wire.layout``).

A module of its own, beside ``sim._fastcrypto``: compiled into that one, it made GCC lay the
exclusive C14N walk out differently and cost it 15 %.
"""

from libc.string cimport strcmp

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree

cetree.import_lxml__etree()


cdef object attribute_value(tree.xmlAttr* c_attr):
    """The attribute's value; None when it holds anything but text. (The same as
    ``_fastcrypto``'s: shared through a .pxd, it would be inlined there and move its code.)"""
    cdef tree.xmlNode* c_text = c_attr.children
    if c_text == NULL:
        return ""
    parts = []
    while c_text != NULL:
        if c_text.type != tree.XML_TEXT_NODE:
            return None
        parts.append(<bytes>c_text.content)
        c_text = c_text.next
    return b"".join(parts).decode("utf-8")


cdef object NOT_PLAIN = object()   # a part outside the layout


cdef inline bint named(tree.xmlNode* c_node, const char* c_href, const char* c_name) noexcept nogil:
    return (c_node.ns != NULL and c_node.ns.href != NULL
            and strcmp(<const char*>c_node.name, c_name) == 0
            and strcmp(<const char*>c_node.ns.href, c_href) == 0)


cdef object plain_attribute(tree.xmlNode* c_node, const char* c_name, const char* c_href):
    """The value of the attribute c_name (in namespace c_href, or in none when NULL), None
    when absent, NOT_PLAIN when it is not plain text."""
    cdef tree.xmlAttr* c_attr = c_node.properties
    while c_attr != NULL:
        if strcmp(<const char*>c_attr.name, c_name) == 0:
            if c_href == NULL and c_attr.ns == NULL:
                break
            if (c_href != NULL and c_attr.ns != NULL and c_attr.ns.href != NULL
                    and strcmp(<const char*>c_attr.ns.href, c_href) == 0):
                break
        c_attr = c_attr.next
    if c_attr == NULL:
        return None
    value = attribute_value(c_attr)
    return NOT_PLAIN if value is None else value


cdef object text_only(tree.xmlNode* c_node):
    """The text of an element holding nothing else (None when it has none), NOT_PLAIN when
    it holds anything but text."""
    cdef tree.xmlNode* c_child = c_node.children
    if c_child == NULL:
        return None
    parts = []
    while c_child != NULL:
        if c_child.type != tree.XML_TEXT_NODE and c_child.type != tree.XML_CDATA_SECTION_NODE:
            return NOT_PLAIN
        if c_child.content != NULL:
            parts.append(<bytes>c_child.content)
        c_child = c_child.next
    return b"".join(parts).decode("utf-8")


cdef enum:
    KIND_ELEMENTS = 0
    KIND_TEXT = 1
    KIND_EMPTY = 2


cdef int match_node(tree.xmlNode* c_node, tuple node, list out, cetree._Document doc) except -1:
    """1 when c_node matches the compiled pattern node (its captures appended to out), else
    0. A node is (namespace, local name, keep, attributes, kind, children, most), names as
    bytes (None: any name), as ``sim.crypto.compile_layout`` makes it."""
    cdef tree.xmlNode* c_child
    cdef tuple children, child
    cdef Py_ssize_t i = 0, n, occurrences = 0, most = 1
    cdef int kind = node[4]
    href = node[0]
    if href is not None and not named(c_node, <bytes>href, <bytes>node[1]):
        return 0
    if node[2]:
        out.append(cetree.elementFactory(doc, c_node))
    for name, attribute_href in <tuple>node[3]:
        value = plain_attribute(c_node, <bytes>name,
                                NULL if attribute_href is None else <const char*><bytes>attribute_href)
        if value is NOT_PLAIN:
            return 0
        out.append(value)
    if kind == KIND_TEXT:
        value = text_only(c_node)
        if value is NOT_PLAIN:
            return 0
        out.append(value)
        return 1
    if kind == KIND_EMPTY:
        return c_node.children == NULL
    children = node[5]
    n = len(children)
    repeated = None
    c_child = c_node.children
    while c_child != NULL:
        if c_child.type == tree.XML_ELEMENT_NODE:
            if i == n:
                return 0
            child = children[i]
            most = child[6]
            if most == 1:
                if not match_node(c_child, child, out, doc):
                    return 0
                i += 1
            else:  # the last child, repeated 1 to most times: one tuple of captures each
                if occurrences == 0:
                    repeated = []
                captured = []
                if not match_node(c_child, child, captured, doc):
                    return 0
                repeated.append(tuple(captured))
                occurrences += 1
                if occurrences == most:
                    out.append(tuple(repeated))
                    i += 1
        elif c_child.type != tree.XML_TEXT_NODE and c_child.type != tree.XML_CDATA_SECTION_NODE:
            return 0
        c_child = c_child.next
    if 0 < occurrences < most:
        out.append(tuple(repeated))
        i += 1
    return i == n


def match_layout(cetree._Element element, tuple layout):
    """The captures of ``element`` matched against the compiled ``layout`` (a tuple, in the
    layout's order), or None when it does not match."""
    cdef list out = []
    if not match_node(element._c_node, layout, out, element._doc):
        return None
    return tuple(out)
