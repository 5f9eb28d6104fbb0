# cython: language_level=3
"""The receivers' walk of the derived-key message shape, in C over libxml2's nodes (lxml's
public C API); its pure-Python twin is ``sim.crypto._reference.derived_key_shape``.

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


cdef object NOT_PLAIN = object()   # a part outside the shape


cdef int element_children(tree.xmlNode* c_node, tree.xmlNode** c_out, int c_max) noexcept nogil:
    """The element children of c_node into c_out; -1 for a child that is neither an element
    nor text (a comment, a processing instruction, an entity) or for more than c_max."""
    cdef int c_count = 0
    cdef tree.xmlNode* c_child = c_node.children
    while c_child != NULL:
        if c_child.type == tree.XML_ELEMENT_NODE:
            if c_count == c_max:
                return -1
            c_out[c_count] = c_child
            c_count += 1
        elif c_child.type != tree.XML_TEXT_NODE and c_child.type != tree.XML_CDATA_SECTION_NODE:
            return -1
        c_child = c_child.next
    return c_count


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


cdef object algorithm_of(tree.xmlNode* c_node):
    """The Algorithm attribute of an empty element (a method, a transform); NOT_PLAIN when
    the element holds anything."""
    if c_node.children != NULL:
        return NOT_PLAIN
    return plain_attribute(c_node, "Algorithm", NULL)


cdef object token_reference(tree.xmlNode* c_str, const char* c_wsse):
    """(URI, ValueType) of a SecurityTokenReference holding one empty wsse:Reference."""
    cdef tree.xmlNode* c_kids[1]
    if not named(c_str, c_wsse, "SecurityTokenReference"):
        return NOT_PLAIN
    if element_children(c_str, c_kids, 1) != 1 or not named(c_kids[0], c_wsse, "Reference"):
        return NOT_PLAIN
    if c_kids[0].children != NULL:
        return NOT_PLAIN
    uri = plain_attribute(c_kids[0], "URI", NULL)
    value_type = plain_attribute(c_kids[0], "ValueType", NULL)
    if uri is NOT_PLAIN or value_type is NOT_PLAIN:
        return NOT_PLAIN
    return (uri, value_type)


cdef enum:
    MAX_SHAPE_REFERENCES = 16


def derived_key_shape(cetree._Element security, cetree._Element body, tuple namespaces):
    """The parts of a message protected with derived keys as wssim's senders lay it out, or
    None for any other layout (see the twin for the layout and what is returned)."""
    cdef bytes b_wsu = namespaces[0].encode()
    cdef bytes b_wsse = namespaces[1].encode()
    cdef bytes b_wsc = namespaces[2].encode()
    cdef bytes b_xenc = namespaces[3].encode()
    cdef bytes b_ds = namespaces[4].encode()
    cdef const char* wsu = b_wsu
    cdef const char* wsse = b_wsse
    cdef const char* wsc = b_wsc
    cdef const char* xenc = b_xenc
    cdef const char* ds = b_ds
    cdef tree.xmlNode* c_top[5]
    cdef tree.xmlNode* c_kids[5]
    cdef tree.xmlNode* c_parts[2 + MAX_SHAPE_REFERENCES + 1]
    cdef tree.xmlNode* c_node
    cdef tree.xmlNode* c_signed_info
    cdef int c_count, i
    cdef cetree._Document doc = security._doc
    if element_children(security._c_node, c_top, 5) != 5:
        return None
    if not (named(c_top[0], wsu, "Timestamp") and named(c_top[1], wsc, "DerivedKeyToken")
            and named(c_top[2], wsc, "DerivedKeyToken")
            and named(c_top[3], xenc, "ReferenceList") and named(c_top[4], ds, "Signature")):
        return None
    # Timestamp
    if element_children(c_top[0], c_kids, 2) != 2:
        return None
    if not (named(c_kids[0], wsu, "Created") and named(c_kids[1], wsu, "Expires")):
        return None
    created = text_only(c_kids[0])
    expires = text_only(c_kids[1])
    if created is NOT_PLAIN or expires is NOT_PLAIN:
        return None
    # DerivedKeyTokens
    dkts = []
    for i in range(1, 3):
        c_node = c_top[i]
        if element_children(c_node, c_kids, 5) != 5:
            return None
        if not (named(c_kids[1], wsc, "Offset") and named(c_kids[2], wsc, "Length")
                and named(c_kids[3], wsc, "Label") and named(c_kids[4], wsc, "Nonce")):
            return None
        if plain_attribute(c_node, "Algorithm", NULL) is not None:
            return None
        dkt_id = plain_attribute(c_node, "Id", wsu)
        source = token_reference(c_kids[0], wsse)
        offset = text_only(c_kids[1])
        length = text_only(c_kids[2])
        label = text_only(c_kids[3])
        nonce = text_only(c_kids[4])
        if (dkt_id is NOT_PLAIN or source is NOT_PLAIN or offset is NOT_PLAIN
                or length is NOT_PLAIN or label is NOT_PLAIN or nonce is NOT_PLAIN):
            return None
        dkts.append((dkt_id, source, offset, length, label, nonce))
    # ReferenceList
    if element_children(c_top[3], c_kids, 1) != 1 or not named(c_kids[0], xenc, "DataReference"):
        return None
    if c_kids[0].children != NULL:
        return None
    data_reference = plain_attribute(c_kids[0], "URI", NULL)
    if data_reference is NOT_PLAIN:
        return None
    # Signature
    if element_children(c_top[4], c_kids, 3) != 3:
        return None
    if not (named(c_kids[0], ds, "SignedInfo") and named(c_kids[1], ds, "SignatureValue")
            and named(c_kids[2], ds, "KeyInfo")):
        return None
    signature_value = text_only(c_kids[1])
    if signature_value is NOT_PLAIN:
        return None
    c_node = c_kids[2]
    if element_children(c_node, c_kids + 3, 1) != 1:
        return None
    key_reference = token_reference(c_kids[3], wsse)
    if key_reference is NOT_PLAIN:
        return None
    c_signed_info = c_kids[0]
    c_count = element_children(c_signed_info, c_parts, 2 + MAX_SHAPE_REFERENCES)
    if c_count < 3:
        return None
    if not (named(c_parts[0], ds, "CanonicalizationMethod")
            and named(c_parts[1], ds, "SignatureMethod")):
        return None
    c14n = algorithm_of(c_parts[0])
    method = algorithm_of(c_parts[1])
    if c14n is NOT_PLAIN or method is NOT_PLAIN:
        return None
    references = []
    for i in range(2, c_count):
        c_node = c_parts[i]
        if not named(c_node, ds, "Reference") or element_children(c_node, c_kids, 3) != 3:
            return None
        if not (named(c_kids[0], ds, "Transforms") and named(c_kids[1], ds, "DigestMethod")
                and named(c_kids[2], ds, "DigestValue")):
            return None
        digest_method = algorithm_of(c_kids[1])
        digest_value = text_only(c_kids[2])
        if element_children(c_kids[0], c_kids + 3, 1) != 1 or not named(c_kids[3], ds, "Transform"):
            return None
        transform = algorithm_of(c_kids[3])
        uri = plain_attribute(c_node, "URI", NULL)
        if (digest_method is NOT_PLAIN or digest_value is NOT_PLAIN or transform is NOT_PLAIN
                or uri is NOT_PLAIN):
            return None
        references.append((uri, transform, digest_method, digest_value))
    # Body: one EncryptedData
    if element_children(body._c_node, c_kids, 1) != 1 or not named(c_kids[0], xenc, "EncryptedData"):
        return None
    c_node = c_kids[0]
    if element_children(c_node, c_kids, 3) != 3:
        return None
    if not (named(c_kids[0], xenc, "EncryptionMethod") and named(c_kids[1], ds, "KeyInfo")
            and named(c_kids[2], xenc, "CipherData")):
        return None
    data_method = algorithm_of(c_kids[0])
    if element_children(c_kids[1], c_parts, 1) != 1:
        return None
    data_key = token_reference(c_parts[0], wsse)
    if element_children(c_kids[2], c_parts, 1) != 1 or not named(c_parts[0], xenc, "CipherValue"):
        return None
    cipher_value = text_only(c_parts[0])
    data_id = plain_attribute(c_node, "Id", NULL)
    data_type = plain_attribute(c_node, "Type", NULL)
    if (data_method is NOT_PLAIN or data_key is NOT_PLAIN or cipher_value is NOT_PLAIN
            or data_id is NOT_PLAIN or data_type is NOT_PLAIN):
        return None
    return (
        cetree.elementFactory(doc, c_top[0]),
        created,
        expires,
        tuple(dkts),
        data_reference,
        cetree.elementFactory(doc, c_top[4]),
        cetree.elementFactory(doc, c_signed_info),
        c14n,
        method,
        tuple(references),
        signature_value,
        key_reference,
        cetree.elementFactory(doc, c_node),
        data_id,
        data_type,
        data_method,
        data_key,
        cipher_value,
    )

