# cython: language_level=3
"""The hot-path kernel of wssim: P_SHA-1, UsernameToken key derivation, exclusive C14N,
AES-CBC, and the receivers' document walks (shape limits, element-id index).

Every function here has a pure-Python twin in ``sim.crypto._reference`` with the same
signature and results; the facade ``sim.crypto`` validates arguments and calls one of them.
SHA-1, SHA-256 and AES come from OpenSSL's libcrypto; the C14N and the document walks go
over libxml2's nodes directly through lxml's public C API (C14N streams into the digest).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memset, strcmp, strlen

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree

cetree.import_lxml__etree()


cdef extern from "openssl/sha.h" nogil:
    ctypedef struct SHA_CTX:
        unsigned int h0
        unsigned int h1
        unsigned int h2
        unsigned int h3
        unsigned int h4
    ctypedef struct SHA256_CTX:
        pass
    int SHA1_Init(SHA_CTX* c)
    int SHA1_Update(SHA_CTX* c, const void* data, size_t length)
    int SHA1_Final(unsigned char* md, SHA_CTX* c)
    void SHA1_Transform(SHA_CTX* c, const unsigned char* data)
    int SHA256_Init(SHA256_CTX* c)
    int SHA256_Update(SHA256_CTX* c, const void* data, size_t length)
    int SHA256_Final(unsigned char* md, SHA256_CTX* c)


cdef enum:
    SHA1_LEN = 20
    BLOCK = 64
    FLUSH_AT = 16384


# --- HMAC-SHA1 with precomputed inner and outer states -----------------------------------

cdef inline void put_be32(unsigned char* c_p, unsigned int c_v) noexcept nogil:
    c_p[0] = (c_v >> 24) & 0xFF
    c_p[1] = (c_v >> 16) & 0xFF
    c_p[2] = (c_v >> 8) & 0xFF
    c_p[3] = c_v & 0xFF



cdef struct HmacKey:
    SHA_CTX inner
    SHA_CTX outer


cdef void hmac_key_init(HmacKey* c_key, const unsigned char* c_secret, size_t c_len) noexcept nogil:
    cdef unsigned char c_block[BLOCK]
    cdef unsigned char c_pad[BLOCK]
    cdef SHA_CTX c_ctx
    cdef size_t i
    memset(c_block, 0, BLOCK)
    if c_len > BLOCK:
        SHA1_Init(&c_ctx)
        SHA1_Update(&c_ctx, c_secret, c_len)
        SHA1_Final(c_block, &c_ctx)
    else:
        memcpy(c_block, c_secret, c_len)
    for i in range(BLOCK):
        c_pad[i] = c_block[i] ^ 0x36
    SHA1_Init(&c_key.inner)
    SHA1_Update(&c_key.inner, c_pad, BLOCK)
    for i in range(BLOCK):
        c_pad[i] = c_block[i] ^ 0x5C
    SHA1_Init(&c_key.outer)
    SHA1_Update(&c_key.outer, c_pad, BLOCK)


cdef inline void digest_out(const SHA_CTX* c_ctx, unsigned char* c_out) noexcept nogil:
    put_be32(c_out, c_ctx.h0)
    put_be32(c_out + 4, c_ctx.h1)
    put_be32(c_out + 8, c_ctx.h2)
    put_be32(c_out + 12, c_ctx.h3)
    put_be32(c_out + 16, c_ctx.h4)


cdef inline void pad_tail(unsigned char* c_buf, size_t c_msg_len, size_t c_total_len,
                          size_t c_prefix_len) noexcept nogil:
    """SHA-1 padding for a message of c_msg_len bytes placed after c_prefix_len hashed bytes."""
    cdef unsigned long long c_bits = (<unsigned long long>(c_msg_len + c_prefix_len)) * 8
    cdef int i
    memset(c_buf + c_msg_len, 0, c_total_len - c_msg_len)
    c_buf[c_msg_len] = 0x80
    for i in range(8):
        c_buf[c_total_len - 1 - i] = (c_bits >> (8 * i)) & 0xFF


cdef inline void hmac_short(const HmacKey* c_key, unsigned char* c_block,
                            unsigned char* c_out) noexcept nogil:
    """HMAC-SHA1 of the 20 bytes at the start of c_block, a block pre-padded for 20 bytes.

    Inner and outer hashes are one compression each: no Init/Update/Final bookkeeping.
    """
    cdef SHA_CTX c_ctx
    memcpy(&c_ctx, &c_key.inner, sizeof(SHA_CTX))
    SHA1_Transform(&c_ctx, c_block)
    digest_out(&c_ctx, c_block)           # the inner digest, same padding: reuse the block
    memcpy(&c_ctx, &c_key.outer, sizeof(SHA_CTX))
    SHA1_Transform(&c_ctx, c_block)
    digest_out(&c_ctx, c_out)


cdef inline void hmac_padded(const HmacKey* c_key, const unsigned char* c_blocks,
                             size_t c_count, unsigned char* c_short,
                             unsigned char* c_out) noexcept nogil:
    """HMAC-SHA1 of a message laid out pre-padded in c_count blocks at c_blocks; c_short is
    a block pre-padded for 20 bytes (it receives the inner digest)."""
    cdef SHA_CTX c_ctx
    cdef size_t i
    memcpy(&c_ctx, &c_key.inner, sizeof(SHA_CTX))
    for i in range(c_count):
        SHA1_Transform(&c_ctx, c_blocks + i * BLOCK)
    digest_out(&c_ctx, c_short)
    memcpy(&c_ctx, &c_key.outer, sizeof(SHA_CTX))
    SHA1_Transform(&c_ctx, c_short)
    digest_out(&c_ctx, c_out)


cdef int p_sha1_into(const HmacKey* c_key, const unsigned char* c_seed, size_t c_seed_len,
                     size_t c_offset, size_t c_length, unsigned char* c_out) noexcept nogil:
    """P_SHA-1 bytes [offset, offset+length) into c_out; -1 when out of memory.

    A(i) = HMAC(A(i-1)) and block(i) = HMAC(A(i) || seed). Every message is laid out once,
    pre-padded, so that each HMAC is a run of bare compressions.
    """
    cdef unsigned char c_short[BLOCK]      # 20-byte message, padded
    cdef unsigned char c_a[SHA1_LEN]
    cdef unsigned char c_digest[SHA1_LEN]
    cdef unsigned char c_stack_buf[256]
    cdef unsigned char* c_long            # A(i) || seed, padded
    cdef size_t c_long_len = ((SHA1_LEN + c_seed_len + 8) // BLOCK + 1) * BLOCK
    cdef size_t c_seed_total = ((c_seed_len + 8) // BLOCK + 1) * BLOCK
    cdef unsigned char* c_seed_buf
    cdef size_t c_pos = 0
    cdef size_t c_end = c_offset + c_length
    cdef size_t c_written = 0
    cdef size_t c_start, c_stop
    if c_long_len + c_seed_total <= 256:
        c_long = c_stack_buf
    else:
        c_long = <unsigned char*>malloc(c_long_len + c_seed_total)
        if c_long == NULL:
            return -1
    c_seed_buf = c_long + c_long_len
    memcpy(c_long + SHA1_LEN, c_seed, c_seed_len)
    pad_tail(c_long, SHA1_LEN + c_seed_len, c_long_len, BLOCK)
    pad_tail(c_short, SHA1_LEN, BLOCK, BLOCK)
    # A(1) = HMAC(secret, seed)
    memcpy(c_seed_buf, c_seed, c_seed_len)
    pad_tail(c_seed_buf, c_seed_len, c_seed_total, BLOCK)
    hmac_padded(c_key, c_seed_buf, c_seed_total // BLOCK, c_short, c_a)
    while c_pos < c_end:
        if c_pos + SHA1_LEN > c_offset:
            memcpy(c_long, c_a, SHA1_LEN)
            hmac_padded(c_key, c_long, c_long_len // BLOCK, c_short, c_digest)
            c_start = c_offset - c_pos if c_offset > c_pos else 0
            c_stop = c_end - c_pos if c_end - c_pos < SHA1_LEN else SHA1_LEN
            memcpy(c_out + c_written, c_digest + c_start, c_stop - c_start)
            c_written += c_stop - c_start
        c_pos += SHA1_LEN
        if c_pos < c_end:
            memcpy(c_short, c_a, SHA1_LEN)
            hmac_short(c_key, c_short, c_a)
    if c_long != c_stack_buf:
        free(c_long)
    return 0


# Key schedules (HMAC inner/outer states) of recently used secrets: an SCT secret or a
# proof key derives many keys, and its two key-schedule compressions are then paid once.
cdef dict _schedules = {}
cdef enum:
    MAX_SCHEDULES = 1024


cdef int schedule_into(bytes secret, HmacKey* c_key) except -1:
    """Copy the key schedule of ``secret`` (cached) into c_key. A copy, never a pointer into
    the cache: another thread may clear the cache while this one derives without the GIL."""
    cdef object entry = _schedules.get(secret)
    if entry is None:
        if len(_schedules) >= MAX_SCHEDULES:
            _schedules.clear()
        hmac_key_init(c_key, <const unsigned char*>PyBytes_AS_STRING(secret), len(secret))
        _schedules[secret] = PyBytes_FromStringAndSize(<char*>c_key, sizeof(HmacKey))
        return 0
    memcpy(c_key, PyBytes_AS_STRING(entry), sizeof(HmacKey))
    return 0


def p_sha1(bytes secret, bytes seed, Py_ssize_t length, Py_ssize_t offset):
    """Bytes ``[offset, offset+length)`` of P_SHA-1(secret, seed) (RFC 2246 section 5)."""
    cdef HmacKey c_key
    schedule_into(secret, &c_key)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, length)
    cdef const unsigned char* c_seed = <const unsigned char*>PyBytes_AS_STRING(seed)
    cdef unsigned char* c_out = <unsigned char*>PyBytes_AS_STRING(out)
    cdef size_t c_seedlen = len(seed)
    cdef int c_rc
    with nogil:
        c_rc = p_sha1_into(&c_key, c_seed, c_seedlen, <size_t>offset, <size_t>length, c_out)
    if c_rc:
        raise MemoryError()
    return out


def hmac_sha1(bytes key, bytes data):
    """HMAC-SHA1 of ``data`` under ``key`` (RFC 2104), from the key's cached schedule: a
    derived signing key signs one message and verifies its reply, and OpenSSL's one-shot
    HMAC would set up its context (and hash the pads) each time."""
    cdef HmacKey c_key
    cdef SHA_CTX c_ctx
    cdef unsigned char c_inner[SHA1_LEN]
    schedule_into(key, &c_key)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, SHA1_LEN)
    memcpy(&c_ctx, &c_key.inner, sizeof(SHA_CTX))
    SHA1_Update(&c_ctx, PyBytes_AS_STRING(data), len(data))
    SHA1_Final(c_inner, &c_ctx)
    memcpy(&c_ctx, &c_key.outer, sizeof(SHA_CTX))
    SHA1_Update(&c_ctx, c_inner, SHA1_LEN)
    SHA1_Final(<unsigned char*>PyBytes_AS_STRING(out), &c_ctx)
    return out


def derive_key_with(checked, Py_ssize_t max_length):
    """The facade's ``derive_key`` with its common case computed here: ``checked`` is the
    facade's function (its keyword defaults are this one's), which checks every argument and
    raises; what is not plainly valid (bytes, ints, no generation, ``offset + length`` within
    ``max_length``, the facade's limit) goes to it, so the checks are written there only."""
    defaults = checked.__kwdefaults__

    def derive_key(secret, *, nonce, length=defaults["length"], offset=defaults["offset"],
                   label=defaults["label"], generation=defaults["generation"]):
        cdef Py_ssize_t c_length, c_offset
        cdef unsigned char c_seed[256]
        cdef Py_ssize_t c_label_len, c_nonce_len
        cdef HmacKey c_key
        cdef bytes out
        if (generation is None and type(secret) is bytes and type(nonce) is bytes
                and type(label) is bytes and type(length) is int and type(offset) is int
                and 0 < length <= max_length and 0 <= offset <= max_length):
            c_length = length
            c_offset = offset
            c_label_len = len(<bytes>label)
            c_nonce_len = len(<bytes>nonce)
            if c_length + c_offset <= max_length and c_label_len + c_nonce_len <= 256:
                memcpy(c_seed, PyBytes_AS_STRING(label), c_label_len)
                memcpy(c_seed + c_label_len, PyBytes_AS_STRING(nonce), c_nonce_len)
                schedule_into(secret, &c_key)
                out = PyBytes_FromStringAndSize(NULL, c_length)
                if p_sha1_into(&c_key, c_seed, c_label_len + c_nonce_len, c_offset, c_length,
                               <unsigned char*>PyBytes_AS_STRING(out)):
                    raise MemoryError()
                return out
        return checked(secret, nonce=nonce, length=length, offset=offset, label=label,
                       generation=generation)

    derive_key.__doc__ = checked.__doc__
    return derive_key


def derive_keys(bytes secret, list seeds, Py_ssize_t length, Py_ssize_t offset):
    """One P_SHA-1 output per seed, sharing one HMAC key schedule."""
    cdef HmacKey c_key
    schedule_into(secret, &c_key)
    cdef bytes seed, out
    cdef list result = []
    for seed in seeds:
        out = PyBytes_FromStringAndSize(NULL, length)
        if p_sha1_into(&c_key, <const unsigned char*>PyBytes_AS_STRING(seed), len(seed),
                       <size_t>offset, <size_t>length, <unsigned char*>PyBytes_AS_STRING(out)):
            raise MemoryError()
        result.append(out)
    return result


def ut_derive_key(bytes password, bytes salt, Py_ssize_t iterations):
    """WSS UsernameToken Profile 1.1: K1 = SHA1(password || salt), Ki = SHA1(Ki-1)."""
    cdef SHA_CTX c_ctx
    cdef unsigned char c_block[BLOCK]
    cdef Py_ssize_t i
    cdef const char* c_pw = PyBytes_AS_STRING(password)
    cdef const char* c_salt = PyBytes_AS_STRING(salt)
    cdef size_t c_pwlen = len(password)
    cdef size_t c_saltlen = len(salt)
    with nogil:
        SHA1_Init(&c_ctx)
        SHA1_Update(&c_ctx, c_pw, c_pwlen)
        SHA1_Update(&c_ctx, c_salt, c_saltlen)
        SHA1_Final(c_block, &c_ctx)
        # Each further iteration hashes a 20-byte message: one pre-padded block, one
        # compression, no Init/Update/Final bookkeeping.
        memset(c_block + SHA1_LEN, 0, BLOCK - SHA1_LEN)
        c_block[SHA1_LEN] = 0x80
        c_block[BLOCK - 2] = 0x00   # message length 160 bits = 0x00A0
        c_block[BLOCK - 1] = 0xA0
        for i in range(iterations - 1):
            SHA1_Init(&c_ctx)
            SHA1_Transform(&c_ctx, c_block)
            digest_out(&c_ctx, c_block)
    return PyBytes_FromStringAndSize(<char*>c_block, SHA1_LEN)


# --- exclusive C14N over libxml2 nodes ---------------------------------------------------

cdef enum DigestKind:
    DIGEST_NONE = 0
    DIGEST_SHA1 = 1
    DIGEST_SHA256 = 2


cdef struct Sink:
    char* data
    size_t length
    size_t capacity
    int digest
    SHA_CTX sha1
    SHA256_CTX sha256
    int failed
    size_t total              # bytes of canonical output so far


cdef int sink_reserve(Sink* c_sink, size_t c_extra) noexcept nogil:
    cdef size_t c_need = c_sink.length + c_extra
    cdef size_t c_cap
    cdef char* c_new
    if c_need <= c_sink.capacity:
        return 0
    c_cap = c_sink.capacity * 2 if c_sink.capacity else 4096
    while c_cap < c_need:
        c_cap *= 2
    c_new = <char*>realloc(c_sink.data, c_cap)
    if c_new == NULL:
        c_sink.failed = 1
        return -1
    c_sink.data = c_new
    c_sink.capacity = c_cap
    return 0


cdef void sink_flush(Sink* c_sink) noexcept nogil:
    if c_sink.digest == DIGEST_SHA1:
        SHA1_Update(&c_sink.sha1, c_sink.data, c_sink.length)
    elif c_sink.digest == DIGEST_SHA256:
        SHA256_Update(&c_sink.sha256, c_sink.data, c_sink.length)
    c_sink.length = 0


cdef void put_slow(Sink* c_sink, const char* c_text, size_t c_len) noexcept nogil:
    """put() when the buffer must be flushed into the digest or grown."""
    if c_sink.digest and c_sink.length + c_len > FLUSH_AT:
        sink_flush(c_sink)
        if c_len > FLUSH_AT:
            if c_sink.digest == DIGEST_SHA1:
                SHA1_Update(&c_sink.sha1, c_text, c_len)
            else:
                SHA256_Update(&c_sink.sha256, c_text, c_len)
            return
    if sink_reserve(c_sink, c_len) == 0:
        memcpy(c_sink.data + c_sink.length, c_text, c_len)
        c_sink.length += c_len


cdef inline void put(Sink* c_sink, const char* c_text, size_t c_len) noexcept nogil:
    # Small enough for GCC to inline everywhere: the common case only.
    cdef size_t c_end = c_sink.length + c_len
    c_sink.total += c_len
    if c_end <= c_sink.capacity and (c_end <= FLUSH_AT or not c_sink.digest):
        memcpy(c_sink.data + c_sink.length, c_text, c_len)
        c_sink.length = c_end
    else:
        put_slow(c_sink, c_text, c_len)


cdef inline void puts(Sink* c_sink, const char* c_text) noexcept nogil:
    put(c_sink, c_text, strlen(c_text))


cdef enum EscapeMode:
    ESCAPE_TEXT = 0
    ESCAPE_ATTR = 1
    ESCAPE_CR = 2


cdef void put_escaped(Sink* c_sink, const char* c_text, int c_mode) noexcept nogil:
    cdef size_t c_run = 0
    cdef const char* c_rep
    cdef char c
    if c_text == NULL:
        return
    while True:
        c = c_text[c_run]
        if c == 0:
            break
        c_rep = NULL
        if c == b'\r':
            c_rep = "&#xD;"
        elif c_mode != ESCAPE_CR:
            if c == b'&':
                c_rep = "&amp;"
            elif c == b'<':
                c_rep = "&lt;"
            elif c == b'>' and c_mode == ESCAPE_TEXT:
                c_rep = "&gt;"
            elif c_mode == ESCAPE_ATTR:
                if c == b'"':
                    c_rep = "&quot;"
                elif c == b'\t':
                    c_rep = "&#x9;"
                elif c == b'\n':
                    c_rep = "&#xA;"
        if c_rep != NULL:
            put(c_sink, c_text, c_run)
            puts(c_sink, c_rep)
            c_text += c_run + 1
            c_run = 0
        else:
            c_run += 1
    put(c_sink, c_text, c_run)


cdef struct NsEntry:
    const char* prefix   # never NULL: "" for the default namespace
    const char* href     # never NULL
    size_t record        # the prefix's record in the walk's PrefixTable
    size_t previous      # what the record's ``top`` was before this entry


cdef struct NsStack:
    NsEntry* items
    size_t count
    size_t capacity


# Every prefix the walk meets has one record, found by a hash of the prefix: the namespace
# rendered for it now (the top of the stack of rendered declarations, as index + 1; 0: none)
# and whether it is in the InclusiveNamespaces PrefixList. So each lookup costs the same
# however long the PrefixList and however many namespaces are rendered: the walk is linear
# in its input, where a scan of the list and of the stack per element made it quadratic.
cdef struct PrefixRecord:
    const char* prefix
    size_t hash
    size_t top            # index + 1 of the stack entry rendering this prefix, 0: none
    size_t mark           # the last element that took this prefix from the PrefixList
    int inclusive         # in the InclusiveNamespaces PrefixList


cdef enum:
    SMALL_TABLE = 8       # records a table holds before it goes to the heap


cdef struct PrefixTable:
    PrefixRecord* records
    size_t count
    size_t capacity
    size_t* slots         # open addressing: index + 1 of a record, 0: free
    size_t mask           # slots - 1, a power of two minus one
    # a message's few prefixes fit in the caller's arrays: no allocation for an ordinary walk
    PrefixRecord* small_records
    size_t* small_slots


cdef const char* EMPTY = ""
# Prefixes are chosen by the sender: the hash is keyed with a secret drawn at import, so that
# no one can choose prefixes that collide (hash flooding).
cdef unsigned long long _prefix_hash_key = int.from_bytes(__import__("os").urandom(8), "little")


cdef inline const char* nz(const char* c_s) noexcept nogil:
    return c_s if c_s != NULL else EMPTY


cdef inline size_t hash_prefix(const char* c_s) noexcept nogil:
    """FNV-1a keyed with the secret, then the murmur3 finalizer."""
    cdef unsigned long long c_h = _prefix_hash_key
    while c_s[0] != 0:
        c_h = (c_h ^ <unsigned char>c_s[0]) * <unsigned long long>1099511628211
        c_s += 1
    c_h ^= c_h >> 33
    c_h *= <unsigned long long>0xff51afd7ed558ccd
    c_h ^= c_h >> 33
    return <size_t>c_h


cdef Py_ssize_t table_find(PrefixTable* c_table, const char* c_prefix, size_t c_hash) noexcept nogil:
    """The index of the record of ``c_prefix``, or -1."""
    cdef size_t c_slot = c_hash & c_table.mask
    cdef size_t c_index
    while True:
        c_index = c_table.slots[c_slot]
        if c_index == 0:
            return -1
        if (c_table.records[c_index - 1].hash == c_hash
                and strcmp(c_table.records[c_index - 1].prefix, c_prefix) == 0):
            return <Py_ssize_t>(c_index - 1)
        c_slot = (c_slot + 1) & c_table.mask


cdef void table_init(PrefixTable* c_table, PrefixRecord* c_records, size_t* c_slots) noexcept nogil:
    """An empty table in ``c_records`` (SMALL_TABLE) and ``c_slots`` (2 * SMALL_TABLE)."""
    c_table.records = c_table.small_records = c_records
    c_table.capacity = SMALL_TABLE
    c_table.count = 0
    c_table.slots = c_table.small_slots = c_slots
    c_table.mask = 2 * SMALL_TABLE - 1
    memset(c_slots, 0, 2 * SMALL_TABLE * sizeof(size_t))


cdef void table_free(PrefixTable* c_table) noexcept nogil:
    if c_table.records != c_table.small_records:
        free(c_table.records)
    if c_table.slots != c_table.small_slots:
        free(c_table.slots)


cdef int table_grow(PrefixTable* c_table) noexcept nogil:
    """Twice the room (at most half the slots are ever used)."""
    cdef size_t c_nslots = (c_table.mask + 1) * 2
    cdef size_t* c_slots = <size_t*>malloc(c_nslots * sizeof(size_t))
    cdef PrefixRecord* c_records
    cdef size_t i, c_slot
    if c_slots == NULL:
        return -1
    if c_table.records == c_table.small_records:
        c_records = <PrefixRecord*>malloc((c_nslots // 2) * sizeof(PrefixRecord))
        if c_records != NULL:
            memcpy(c_records, c_table.small_records, c_table.count * sizeof(PrefixRecord))
    else:
        c_records = <PrefixRecord*>realloc(c_table.records, (c_nslots // 2) * sizeof(PrefixRecord))
    if c_records == NULL:
        free(c_slots)
        return -1
    c_table.records = c_records
    c_table.capacity = c_nslots // 2
    memset(c_slots, 0, c_nslots * sizeof(size_t))
    for i in range(c_table.count):
        c_slot = c_records[i].hash & (c_nslots - 1)
        while c_slots[c_slot] != 0:
            c_slot = (c_slot + 1) & (c_nslots - 1)
        c_slots[c_slot] = i + 1
    if c_table.slots != c_table.small_slots:
        free(c_table.slots)
    c_table.slots = c_slots
    c_table.mask = c_nslots - 1
    return 0


cdef Py_ssize_t table_add(PrefixTable* c_table, const char* c_prefix) noexcept nogil:
    """The index of the record of ``c_prefix``, made if new; -1 when out of memory."""
    cdef size_t c_hash = hash_prefix(c_prefix)
    cdef Py_ssize_t c_found = table_find(c_table, c_prefix, c_hash)
    cdef size_t c_slot
    cdef PrefixRecord* c_record
    if c_found >= 0:
        return c_found
    if c_table.count == c_table.capacity:   # at most half the slots are used
        if table_grow(c_table):
            return -1
    c_record = &c_table.records[c_table.count]
    c_record.prefix = c_prefix
    c_record.hash = c_hash
    c_record.top = 0
    c_record.mark = 0
    c_record.inclusive = 0
    c_slot = c_hash & c_table.mask
    while c_table.slots[c_slot] != 0:
        c_slot = (c_slot + 1) & c_table.mask
    c_table.count += 1
    c_table.slots[c_slot] = c_table.count
    return <Py_ssize_t>(c_table.count - 1)


cdef struct Walk:
    Sink* sink
    NsStack stack
    PrefixTable table
    size_t n_inclusive        # distinct prefixes of the PrefixList
    const char* last_prefix   # the prefix utilize looked up last, and its record: the
    size_t last_record        # elements of a subtree mostly share their namespace's prefix
    size_t element            # serial number of the element being opened (from 1)
    int with_comments
    int error                 # 1: entity reference, 2: out of memory, 3: relative URI
    const char* bad_href      # the relative namespace URI (error 3)
    char* scratch             # per-element arrays; free again once the start tag is out
    size_t scratch_capacity


cdef int compare_ns(const void* c_a, const void* c_b) noexcept nogil:
    return strcmp((<const NsEntry*>c_a).prefix, (<const NsEntry*>c_b).prefix)


cdef int compare_attr(const void* c_a, const void* c_b) noexcept nogil:
    cdef tree.xmlAttr* c_x = (<tree.xmlAttr**>c_a)[0]
    cdef tree.xmlAttr* c_y = (<tree.xmlAttr**>c_b)[0]
    cdef int c_r
    if c_x.ns == c_y.ns:
        return strcmp(<const char*>c_x.name, <const char*>c_y.name)
    if c_x.ns == NULL:
        return -1
    if c_y.ns == NULL:
        return 1
    c_r = strcmp(nz(<const char*>c_x.ns.href), nz(<const char*>c_y.ns.href))
    if c_r == 0:
        c_r = strcmp(<const char*>c_x.name, <const char*>c_y.name)
    return c_r


cdef const char* XML_NS = "http://www.w3.org/XML/1998/namespace"


cdef inline bint is_xml_ns(tree.xmlNs* c_ns) noexcept nogil:
    return c_ns.href != NULL and strcmp(<const char*>c_ns.href, XML_NS) == 0


cdef bint is_relative(const char* c_href) noexcept nogil:
    """True for a namespace URI without a scheme (RFC 3986: ALPHA *(ALPHA / DIGIT / "+" /
    "-" / ".") ":"); the empty URI (an undeclaration) is not one."""
    cdef unsigned char c = <unsigned char>c_href[0]
    if c == 0:
        return False
    if not (b'a' <= c <= b'z' or b'A' <= c <= b'Z'):
        return True
    c_href += 1
    while True:
        c = <unsigned char>c_href[0]
        if c == b':':
            return False
        if not (b'a' <= c <= b'z' or b'A' <= c <= b'Z' or b'0' <= c <= b'9'
                or c == b'+' or c == b'-' or c == b'.'):
            return True
        c_href += 1


cdef tree.xmlNs* search_ns(tree.xmlNode* c_node, const char* c_prefix) noexcept nogil:
    """The nearest in-scope declaration of ``c_prefix`` ("" = default), like xmlSearchNs.

    lxml links libxml2 statically, so its functions are not ours to call: walk nsDef.
    """
    cdef tree.xmlNs* c_ns
    while c_node != NULL and c_node.type == tree.XML_ELEMENT_NODE:
        c_ns = c_node.nsDef
        while c_ns != NULL:
            if c_ns.href != NULL:
                if c_prefix[0] == 0:
                    if c_ns.prefix == NULL or c_ns.prefix[0] == 0:
                        return c_ns
                elif c_ns.prefix != NULL and strcmp(<const char*>c_ns.prefix, c_prefix) == 0:
                    return c_ns
            c_ns = c_ns.next
        c_node = c_node.parent
    return NULL


cdef int utilize(Walk* c_walk, NsEntry* c_decls, size_t* c_ndecls,
                 const char* c_prefix, const char* c_href) noexcept nogil:
    """Render ``c_prefix`` bound to ``c_href`` unless it is rendered so already: 0 when it
    was, 1 when it is declared here (2 if the prefix is in the PrefixList), -1 when out of
    memory."""
    cdef Py_ssize_t c_index
    cdef PrefixRecord* c_record
    cdef NsStack* c_stack = &c_walk.stack
    cdef NsEntry* c_new
    if c_prefix == c_walk.last_prefix:   # the same string: no hash, no comparison
        c_index = <Py_ssize_t>c_walk.last_record
    else:
        c_index = table_add(&c_walk.table, c_prefix)
        if c_index < 0:
            return -1
        c_walk.last_prefix = c_prefix
        c_walk.last_record = <size_t>c_index
    c_record = &c_walk.table.records[c_index]
    if c_record.top != 0:
        if strcmp(c_stack.items[c_record.top - 1].href, c_href) == 0:
            return 0
    elif c_prefix[0] == 0 and c_href[0] == 0:
        return 0   # nothing rendered for the default: only the empty namespace counts as such
    c_decls[c_ndecls[0]].prefix = c_prefix
    c_decls[c_ndecls[0]].href = c_href
    c_ndecls[0] += 1
    if c_stack.count == c_stack.capacity:
        c_stack.capacity = c_stack.capacity * 2 if c_stack.capacity else 16
        c_new = <NsEntry*>realloc(c_stack.items, c_stack.capacity * sizeof(NsEntry))
        if c_new == NULL:
            return -1
        c_stack.items = c_new
    c_new = &c_stack.items[c_stack.count]
    c_new.prefix = c_prefix
    c_new.href = c_href
    c_new.record = <size_t>c_index
    c_new.previous = c_record.top
    c_stack.count += 1
    c_record.top = c_stack.count
    return 2 if c_record.inclusive else 1


cdef int take_inclusive(Walk* c_walk, NsEntry* c_decls, size_t* c_ndecls,
                        tree.xmlNs* c_ns) noexcept nogil:
    """``c_ns`` is the nearest declaration of its prefix seen for this element: render it
    when the prefix is in the PrefixList (as inclusive C14N would); -1 when out of memory."""
    cdef const char* c_prefix = nz(<const char*>c_ns.prefix)
    cdef Py_ssize_t c_index = table_find(&c_walk.table, c_prefix, hash_prefix(c_prefix))
    cdef PrefixRecord* c_record
    if c_index < 0:
        return 0
    c_record = &c_walk.table.records[c_index]
    if not c_record.inclusive or c_record.mark == c_walk.element:
        return 0
    c_record.mark = c_walk.element
    if is_xml_ns(c_ns):
        return 0
    return -1 if utilize(c_walk, c_decls, c_ndecls, c_prefix, <const char*>c_ns.href) < 0 else 0


cdef void put_qname(Sink* c_sink, tree.xmlNs* c_ns, const char* c_name) noexcept nogil:
    if c_ns != NULL and c_ns.prefix != NULL and c_ns.prefix[0] != 0:
        puts(c_sink, <const char*>c_ns.prefix)
        put(c_sink, ":", 1)
    puts(c_sink, c_name)


cdef int scratch_reserve(Walk* c_walk, size_t c_size) noexcept nogil:
    cdef char* c_new
    if c_size <= c_walk.scratch_capacity:
        return 0
    c_new = <char*>realloc(c_walk.scratch, c_size * 2)
    if c_new == NULL:
        return -1
    c_walk.scratch = c_new
    c_walk.scratch_capacity = c_size * 2
    return 0


cdef int relative_in_scope(Walk* c_walk, tree.xmlNode* c_apex) noexcept nogil:
    """Refuse (error 3) a relative namespace URI declared above the apex and in scope there."""
    cdef tree.xmlNode* c_node = c_apex.parent
    cdef tree.xmlNs* c_ns
    while c_node != NULL and c_node.type == tree.XML_ELEMENT_NODE:
        c_ns = c_node.nsDef
        while c_ns != NULL:
            if (c_ns.href != NULL and is_relative(<const char*>c_ns.href)
                    and search_ns(c_apex, nz(<const char*>c_ns.prefix)) == c_ns):
                c_walk.error = 3
                c_walk.bad_href = <const char*>c_ns.href
                return -1
            c_ns = c_ns.next
        c_node = c_node.parent
    return 0


# What is rare in a message (declarations, a PrefixList) lives outside walk_element: a
# bigger walk_element made GCC stop inlining put() into it, 10 % of the walk's time.

cdef size_t own_declarations(Walk* c_walk, tree.xmlNode* c_node,
                             tree.xmlNs** c_default) noexcept nogil:
    """How many declarations ``c_node`` makes. C14N fails on a relative namespace URI (C14N
    1.0 section 2.1: error 3); the first default declaration is the default namespace in
    scope from here on."""
    cdef tree.xmlNs* c_ns = c_node.nsDef
    cdef size_t c_count = 0
    cdef bint c_own_default = False
    while c_ns != NULL:
        c_count += 1
        if c_ns.href != NULL:
            if is_relative(<const char*>c_ns.href):
                c_walk.error = 3
                c_walk.bad_href = <const char*>c_ns.href
                return c_count
            if not c_own_default and (c_ns.prefix == NULL or c_ns.prefix[0] == 0):
                c_default[0] = c_ns
                c_own_default = True
        c_ns = c_ns.next
    return c_count


cdef int take_prefix_list(Walk* c_walk, tree.xmlNode* c_node, bint c_full, NsEntry* c_decls,
                          size_t* c_ndecls) noexcept nogil:
    """Render the PrefixList's prefixes declared on ``c_node`` (with ``c_full``: declared on
    it or its ancestors, the nearest declaration of each); -1 when out of memory."""
    cdef tree.xmlNs* c_ns
    cdef int c_rc = 0
    while c_rc == 0 and c_node != NULL and c_node.type == tree.XML_ELEMENT_NODE:
        c_ns = c_node.nsDef
        while c_ns != NULL and c_rc == 0:
            if c_ns.href != NULL:
                c_rc = take_inclusive(c_walk, c_decls, c_ndecls, c_ns)
            c_ns = c_ns.next
        c_node = c_node.parent if c_full else NULL
    return c_rc


cdef void forget(Walk* c_walk, size_t c_mark) noexcept nogil:
    """Forget what was rendered since the stack held ``c_mark`` entries."""
    cdef NsEntry* c_entry
    while c_walk.stack.count > c_mark:
        c_walk.stack.count -= 1
        c_entry = &c_walk.stack.items[c_walk.stack.count]
        c_walk.table.records[c_entry.record].top = c_entry.previous


cdef int walk_element(Walk* c_walk, tree.xmlNode* c_node, bint c_full,
                      tree.xmlNs* c_default) noexcept nogil:
    """Write ``c_node``'s subtree. ``c_default`` is the default namespace declaration in scope
    at the parent (or NULL). With ``c_full`` every in-scope prefix of the PrefixList is
    looked up (at the apex, or below an element that rendered one of them bound otherwise
    than in scope, which only trees built with lxml can do); otherwise only the element's own
    declarations can change what the PrefixList renders."""
    cdef Sink* c_sink = c_walk.sink
    cdef size_t c_mark = c_walk.stack.count
    cdef size_t c_nattrs = 0
    cdef size_t c_nnsdefs = 0
    cdef size_t c_ndecls = 0
    cdef size_t i
    cdef tree.xmlAttr* c_attr
    cdef tree.xmlAttr** c_attrs = NULL
    cdef NsEntry* c_decls = NULL
    cdef tree.xmlNs* c_ns
    cdef tree.xmlNode* c_child
    cdef tree.xmlNode* c_text
    cdef bint c_child_full = False
    cdef int c_rc = 0
    cdef int c_used

    c_walk.element += 1
    if c_node.nsDef != NULL:
        c_nnsdefs = own_declarations(c_walk, c_node, &c_default)
        if c_walk.error:
            return -1
    c_attr = c_node.properties
    while c_attr != NULL:
        c_nattrs += 1
        c_attr = c_attr.next
    i = (c_walk.n_inclusive if c_full else c_nnsdefs) + c_nattrs + 1   # declarations at most
    if scratch_reserve(c_walk, i * sizeof(NsEntry) + c_nattrs * sizeof(tree.xmlAttr*)) == 0:
        c_decls = <NsEntry*>c_walk.scratch
        c_attrs = <tree.xmlAttr**>(c_walk.scratch + i * sizeof(NsEntry))
    if c_decls == NULL:
        c_walk.error = 2
        c_rc = -1
    else:
        # InclusiveNamespaces PrefixList: rendered as inclusive C14N would.
        if c_walk.n_inclusive:
            c_rc = take_prefix_list(c_walk, c_node, c_full, c_decls, &c_ndecls)
        # The element's own namespace; without one, the default namespace in scope
        # (libxml2 renders it even for lxml-built trees).
        if c_node.ns != NULL:
            if not is_xml_ns(c_node.ns):
                c_used = utilize(c_walk, c_decls, &c_ndecls, nz(<const char*>c_node.ns.prefix),
                                 nz(<const char*>c_node.ns.href))
                c_rc |= c_used < 0
                c_child_full |= c_used == 2
        else:
            c_used = utilize(c_walk, c_decls, &c_ndecls, EMPTY,
                             nz(<const char*>c_default.href) if c_default != NULL else EMPTY)
            c_rc |= c_used < 0
            c_child_full |= c_used == 2
        c_attr = c_node.properties
        i = 0
        while c_attr != NULL:
            c_attrs[i] = c_attr
            i += 1
            if c_attr.ns != NULL and not is_xml_ns(c_attr.ns):
                c_used = utilize(c_walk, c_decls, &c_ndecls, nz(<const char*>c_attr.ns.prefix),
                                 nz(<const char*>c_attr.ns.href))
                c_rc |= c_used < 0
                c_child_full |= c_used == 2
            c_attr = c_attr.next
        if c_rc:
            c_walk.error = 2

    if c_rc == 0:
        qsort(c_decls, c_ndecls, sizeof(NsEntry), compare_ns)
        if c_nattrs > 1:
            qsort(c_attrs, c_nattrs, sizeof(tree.xmlAttr*), compare_attr)
        put(c_sink, "<", 1)
        put_qname(c_sink, c_node.ns, <const char*>c_node.name)
        for i in range(c_ndecls):
            if c_decls[i].prefix[0] == 0:
                put(c_sink, ' xmlns="', 8)
            else:
                put(c_sink, " xmlns:", 7)
                puts(c_sink, c_decls[i].prefix)
                put(c_sink, '="', 2)
            puts(c_sink, c_decls[i].href)   # libxml2 writes namespace URIs unescaped
            put(c_sink, '"', 1)
        for i in range(c_nattrs):
            c_attr = c_attrs[i]
            put(c_sink, " ", 1)
            put_qname(c_sink, c_attr.ns, <const char*>c_attr.name)
            put(c_sink, '="', 2)
            c_text = c_attr.children
            while c_text != NULL:
                if c_text.type == tree.XML_TEXT_NODE:
                    put_escaped(c_sink, <const char*>c_text.content, ESCAPE_ATTR)
                elif c_text.type == tree.XML_ENTITY_REF_NODE:
                    c_walk.error = 1
                    c_rc = -1
                c_text = c_text.next
            put(c_sink, '"', 1)
        put(c_sink, ">", 1)
        # c_decls and c_attrs live in the scratch area, which children now reuse.
        c_child = c_node.children
        while c_child != NULL and c_rc == 0:
            if c_child.type == tree.XML_ELEMENT_NODE:
                c_rc = walk_element(c_walk, c_child, c_child_full, c_default)
            elif c_child.type == tree.XML_TEXT_NODE or c_child.type == tree.XML_CDATA_SECTION_NODE:
                put_escaped(c_sink, <const char*>c_child.content, ESCAPE_TEXT)
            elif c_child.type == tree.XML_COMMENT_NODE:
                if c_walk.with_comments:
                    put(c_sink, "<!--", 4)
                    put_escaped(c_sink, <const char*>c_child.content, ESCAPE_CR)
                    put(c_sink, "-->", 3)
            elif c_child.type == tree.XML_PI_NODE:
                put(c_sink, "<?", 2)
                puts(c_sink, <const char*>c_child.name)
                if c_child.content != NULL and c_child.content[0] != 0:
                    put(c_sink, " ", 1)
                    put_escaped(c_sink, <const char*>c_child.content, ESCAPE_CR)
                put(c_sink, "?>", 2)
            elif c_child.type == tree.XML_ENTITY_REF_NODE:
                c_walk.error = 1
                c_rc = -1
            c_child = c_child.next
        put(c_sink, "</", 2)
        put_qname(c_sink, c_node.ns, <const char*>c_node.name)
        put(c_sink, ">", 1)

    if c_walk.stack.count > c_mark:
        forget(c_walk, c_mark)
    if c_sink.failed:
        c_walk.error = 2
        return -1
    return c_rc


cdef int run_c14n(tree.xmlNode* c_node, tuple inclusive_prefixes, bint with_comments,
                  Sink* c_sink) except -1:
    cdef Walk c_walk
    cdef PrefixRecord c_records[SMALL_TABLE]
    cdef size_t c_slots[2 * SMALL_TABLE]
    cdef list encoded = []
    cdef Py_ssize_t n = len(inclusive_prefixes)
    cdef Py_ssize_t i, c_index
    cdef int c_rc = 0
    cdef bytes data
    memset(&c_walk, 0, sizeof(Walk))
    table_init(&c_walk.table, c_records, c_slots)
    c_walk.sink = c_sink
    c_walk.with_comments = with_comments
    try:
        for i in range(n):
            prefix = inclusive_prefixes[i]
            data = b"" if prefix == "#default" else prefix.encode("utf-8")
            encoded.append(data)
            c_index = table_add(&c_walk.table, PyBytes_AS_STRING(data))
            if c_index < 0:
                raise MemoryError()
            if not c_walk.table.records[c_index].inclusive:
                c_walk.table.records[c_index].inclusive = 1
                c_walk.n_inclusive += 1
        with nogil:
            c_rc = relative_in_scope(&c_walk, c_node)
            if c_rc == 0:
                c_rc = walk_element(&c_walk, c_node, True, search_ns(c_node.parent, EMPTY))
        if c_walk.error == 3:
            href = (<bytes>c_walk.bad_href).decode("utf-8", "replace")
    finally:
        table_free(&c_walk.table)
        free(c_walk.stack.items)
        free(c_walk.scratch)
    if c_walk.error == 3:
        from sim.crypto._c14n import C14NError, relative_uri_message

        raise C14NError(relative_uri_message(href))
    if c_walk.error == 1:
        from sim.crypto._c14n import C14NError, ENTITY_MESSAGE

        raise C14NError(ENTITY_MESSAGE)
    if c_walk.error or c_rc:
        raise MemoryError()
    return 0


def exc_c14n(cetree._Element element, tuple inclusive_prefixes, bint with_comments):
    """Exclusive canonical form of ``element``'s subtree, as UTF-8 bytes."""
    cdef Sink c_sink
    memset(&c_sink, 0, sizeof(Sink))
    try:
        run_c14n(element._c_node, inclusive_prefixes, with_comments, &c_sink)
        return PyBytes_FromStringAndSize(c_sink.data, c_sink.length)
    finally:
        free(c_sink.data)


def c14n_digest(cetree._Element element, str algorithm, tuple inclusive_prefixes):
    """Digest of the exclusive canonical form, streamed while walking the tree."""
    return c14n_digest_sized(element, algorithm, inclusive_prefixes)[0]


def c14n_digest_sized(cetree._Element element, str algorithm, tuple inclusive_prefixes):
    """``(digest, size)``: the digest and the byte length of the exclusive canonical form."""
    cdef Sink c_sink
    cdef unsigned char c_md[32]
    memset(&c_sink, 0, sizeof(Sink))
    if algorithm == "sha1":
        c_sink.digest = DIGEST_SHA1
        SHA1_Init(&c_sink.sha1)
    elif algorithm == "sha256":
        c_sink.digest = DIGEST_SHA256
        SHA256_Init(&c_sink.sha256)
    else:
        raise ValueError(f"algorithm must be sha1 or sha256, got {algorithm!r}")
    try:
        run_c14n(element._c_node, inclusive_prefixes, False, &c_sink)
        sink_flush(&c_sink)
        if c_sink.digest == DIGEST_SHA1:
            SHA1_Final(c_md, &c_sink.sha1)
            return PyBytes_FromStringAndSize(<char*>c_md, 20), c_sink.total
        SHA256_Final(c_md, &c_sink.sha256)
        return PyBytes_FromStringAndSize(<char*>c_md, 32), c_sink.total
    finally:
        free(c_sink.data)


# --- document walks for receivers: shape limits and the element-id index -----------------

cdef const char* WSU_NS = (
    b"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
)


cdef inline tree.xmlNode* first_element(tree.xmlNode* c_node) noexcept nogil:
    while c_node != NULL and c_node.type != tree.XML_ELEMENT_NODE:
        c_node = c_node.next
    return c_node


cdef tree.xmlNode* next_element(tree.xmlNode* c_node, tree.xmlNode* c_top,
                                Py_ssize_t* c_depth) noexcept nogil:
    """The element after ``c_node`` in document order within ``c_top``'s subtree."""
    cdef tree.xmlNode* c_next = first_element(c_node.children)
    if c_next != NULL:
        c_depth[0] += 1
        return c_next
    while c_node != c_top:
        c_next = first_element(c_node.next)
        if c_next != NULL:
            return c_next
        c_node = c_node.parent
        c_depth[0] -= 1
    return NULL


def shape_violation(cetree._Element root, Py_ssize_t max_depth, Py_ssize_t max_elements,
                    Py_ssize_t max_attributes):
    """The first way ``root``'s subtree exceeds the limits, in document order:
    ``("depth", max_depth, element)``, ``("elements", max_elements, element)`` or
    ``("attributes", count, element)``; None when it stays within them."""
    cdef tree.xmlNode* c_top = root._c_node
    cdef tree.xmlNode* c_node = c_top
    cdef tree.xmlAttr* c_attr
    cdef Py_ssize_t c_depth = 1
    cdef Py_ssize_t c_count = 0
    cdef Py_ssize_t c_attrs
    while c_node != NULL:
        c_count += 1
        if c_depth > max_depth:
            return ("depth", max_depth, cetree.elementFactory(root._doc, c_node))
        if c_count > max_elements:
            return ("elements", max_elements, cetree.elementFactory(root._doc, c_node))
        c_attrs = 0
        c_attr = c_node.properties
        while c_attr != NULL:
            c_attrs += 1
            c_attr = c_attr.next
        if c_attrs > max_attributes:
            return ("attributes", c_attrs, cetree.elementFactory(root._doc, c_node))
        c_node = next_element(c_node, c_top, &c_depth)
    return None


cdef inline int id_rank(tree.xmlAttr* c_attr) noexcept nogil:
    """Where the attribute stands in (wsu:Id, Id, ID, AssertionID), or -1."""
    cdef const char* c_name = <const char*>c_attr.name
    if c_attr.ns != NULL:
        if (c_attr.ns.href != NULL and strcmp(<const char*>c_attr.ns.href, WSU_NS) == 0
                and strcmp(c_name, "Id") == 0):
            return 0
        return -1
    if strcmp(c_name, "Id") == 0:
        return 1
    if strcmp(c_name, "ID") == 0:
        return 2
    if strcmp(c_name, "AssertionID") == 0:
        return 3
    return -1


cdef object attribute_value(tree.xmlAttr* c_attr):
    """The attribute's value; None when it holds anything but text (never after a parse
    that refuses DTDs, but then the caller falls back to lxml). A deliberate twin of
    ``_fastshape``'s (see there: a shared .pxd would inline it here and move this code)."""
    cdef tree.xmlNode* c_text = c_attr.children
    if c_text == NULL:
        return ""
    if c_text.next == NULL and c_text.type == tree.XML_TEXT_NODE:
        return (<bytes>c_text.content).decode("utf-8")
    parts = []
    while c_text != NULL:
        if c_text.type != tree.XML_TEXT_NODE:
            return None
        parts.append(<bytes>c_text.content)
        c_text = c_text.next
    return b"".join(parts).decode("utf-8")


def id_index(cetree._Element root):
    """``(ids, duplicate)``: the elements of ``root``'s subtree by the value of each of their
    wsu:Id, Id, ID and AssertionID attributes, and the first value two different elements
    share (None when ids are unique); ``None`` instead when an id is not plain text."""
    cdef tree.xmlNode* c_top = root._c_node
    cdef tree.xmlNode* c_node = c_top
    cdef tree.xmlAttr* c_attr
    cdef tree.xmlAttr* c_found[4]
    cdef Py_ssize_t c_depth = 1
    cdef int c_rank
    cdef cetree._Element known
    ids = {}
    while c_node != NULL:
        c_found[0] = c_found[1] = c_found[2] = c_found[3] = NULL
        c_attr = c_node.properties
        while c_attr != NULL:
            c_rank = id_rank(c_attr)
            if c_rank >= 0:
                c_found[c_rank] = c_attr
            c_attr = c_attr.next
        element = None
        for c_rank in range(4):
            if c_found[c_rank] == NULL:
                continue
            value = attribute_value(c_found[c_rank])
            if value is None:
                return None
            known = ids.get(value)
            if known is not None:
                if known._c_node != c_node:
                    return ids, value
                continue
            if element is None:
                element = cetree.elementFactory(root._doc, c_node)
            ids[value] = element
        c_node = next_element(c_node, c_top, &c_depth)
    return ids, None


def namespace_declarations(cetree._Element element):
    """How many namespace declarations ``element``, its ancestors and its descendants make."""
    cdef tree.xmlNode* c_top = element._c_node
    cdef tree.xmlNode* c_node = c_top.parent
    cdef tree.xmlNs* c_ns
    cdef Py_ssize_t c_depth = 1
    cdef Py_ssize_t c_count = 0
    while c_node != NULL and c_node.type == tree.XML_ELEMENT_NODE:
        c_ns = c_node.nsDef
        while c_ns != NULL:
            c_count += 1
            c_ns = c_ns.next
        c_node = c_node.parent
    c_node = c_top
    while c_node != NULL:
        c_ns = c_node.nsDef
        while c_ns != NULL:
            c_count += 1
            c_ns = c_ns.next
        c_node = next_element(c_node, c_top, &c_depth)
    return c_count


# --- AES-CBC without padding (XML Encryption pads itself) ---------------------------------

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_CIPHER_CTX:
        pass
    ctypedef struct EVP_CIPHER:
        pass
    EVP_CIPHER_CTX* EVP_CIPHER_CTX_new()
    int EVP_CIPHER_CTX_reset(EVP_CIPHER_CTX* ctx)
    int EVP_CIPHER_CTX_set_padding(EVP_CIPHER_CTX* ctx, int pad)
    const EVP_CIPHER* EVP_aes_128_cbc()
    const EVP_CIPHER* EVP_aes_192_cbc()
    const EVP_CIPHER* EVP_aes_256_cbc()
    int EVP_CipherInit_ex(EVP_CIPHER_CTX* ctx, const EVP_CIPHER* cipher, void* impl,
                          const unsigned char* key, const unsigned char* iv, int enc)
    int EVP_CipherUpdate(EVP_CIPHER_CTX* ctx, unsigned char* out, int* outl,
                         const unsigned char* inp, int inl)
    int EVP_CipherFinal_ex(EVP_CIPHER_CTX* ctx, unsigned char* out, int* outl)


cdef EVP_CIPHER_CTX* _cbc_ctx = NULL


def aes_cbc(bytes key, bytes iv, bytes data, bint encrypt):
    """AES-CBC of ``data`` (a whole number of blocks) under a 16-, 24- or 32-byte key,
    without padding: XML Encryption pads before and unpads after."""
    global _cbc_ctx
    cdef const EVP_CIPHER* c_cipher
    cdef int c_out = 0
    cdef int c_final = 0
    cdef Py_ssize_t c_len = len(data)
    if len(key) == 16:
        c_cipher = EVP_aes_128_cbc()
    elif len(key) == 24:
        c_cipher = EVP_aes_192_cbc()
    elif len(key) == 32:
        c_cipher = EVP_aes_256_cbc()
    else:
        raise ValueError("an AES key has 16, 24 or 32 bytes")
    if len(iv) != 16 or c_len % 16 or c_len > (1 << 30):
        raise ValueError("AES-CBC needs a 16-byte IV and whole blocks")
    if _cbc_ctx == NULL:
        _cbc_ctx = EVP_CIPHER_CTX_new()
        if _cbc_ctx == NULL:
            raise MemoryError()
    out = PyBytes_FromStringAndSize(NULL, c_len)
    cdef unsigned char* c_dst = <unsigned char*>PyBytes_AS_STRING(out)
    if (EVP_CipherInit_ex(_cbc_ctx, c_cipher, NULL, <const unsigned char*>PyBytes_AS_STRING(key),
                          <const unsigned char*>PyBytes_AS_STRING(iv), 1 if encrypt else 0) != 1
            or EVP_CIPHER_CTX_set_padding(_cbc_ctx, 0) != 1
            or EVP_CipherUpdate(_cbc_ctx, c_dst, &c_out,
                                <const unsigned char*>PyBytes_AS_STRING(data), <int>c_len) != 1
            or EVP_CipherFinal_ex(_cbc_ctx, c_dst + c_out, &c_final) != 1
            or c_out + c_final != c_len):
        EVP_CIPHER_CTX_reset(_cbc_ctx)
        raise ValueError("OpenSSL refused the AES-CBC operation")
    return out
