/* Styx's compiled accelerator: the hot protocol work of the request path.
 *
 * - scan(): the accelerated half of styx/protocol/scan.py: frame a batch
 *   of IPROTO packets, decode their headers and bodies, in one call.
 * - fast_dml(): codec.py's `_fast_dml`, the two common DML body shapes.
 * - encode_wal_batch(): the WAL writer's rows of a batch (wal/writer.py's
 *   py_encode_batch): run in the WAL thread with the GIL held, so every
 *   microsecond there is one TX waits for.
 * - prepare(): net's half of a request's life before TX, for the plain
 *   kinds (connection.py's `_enqueue`, whose general loop is its twin): one
 *   IprotoMsg per record, its body decoded for its type.
 * - data_packet(), ok_packet(): a reply's fixed head and its body, written
 *   into an obuf slab (codec.py's py_data_packet, py_ok_packet): struct's
 *   pack_into of 18 fields and a slice assignment cost about 0.3 us a
 *   reply; this, one call.
 * - put_data(): tx/reply.py's `_data_packet` when the reply fits in the
 *   obuf's current slab: the slab found, the packet written and committed
 *   in one call (in Python: three calls and a dozen attribute reads).
 * - accept_wpos(): tx/kharon.py's, every request's first step in TX.
 * - Packer: msgpack's packer for plain values (a stored tuple, a CALL's
 *   results), the rest left to msgpack.
 *
 * Each has a pure-Python twin that defines its results, and tests that
 * compare the two (tests/unit/test_accel.py). styx/protocol/accel.py loads
 * this module, or not (no compiler, or STYX_PURE=1).
 *
 * scan:
 * Why: in pure Python each request pays for a framing loop, an in-place
 * header read, several Unpacker calls and checks; here a batch costs one
 * call and one tuple per packet. scan.py holds the pure-Python version,
 * which defines the results: this file must give the same ones, and the
 * tests compare the two on generated and random input.
 *
 * What it does not do, it says: a packet whose header is not the plain kind
 * (a map of unsigned keys with unsigned values, TIMESTAMP a float, unknown
 * keys with scalar values) or whose body holds what only msgpack-python
 * decodes the way it does (ext -1, a Timestamp; nesting deeper than
 * MAX_DEPTH) comes back with the body SLOW, and scan.py decodes that packet
 * in Python. Everything else is decoded exactly as msgpack-python's
 * Unpacker(raw=False, strict_map_key=False, unicode_errors="surrogateescape",
 * ext_hook=ext_hook) would: ints, floats (float32 widened), str, bin,
 * arrays as lists, maps as dicts (later duplicate keys win), ext through
 * ext_hook.
 *
 * The buffer is read, never kept: every value is a new Python object.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "../_slots.h"
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 256
#define PACKET_SIZE_MAX 2147483648ULL /* IPROTO_PACKET_SIZE_MAX, 2^31 */

/* Header keys (constants.py). */
#define K_REQUEST_TYPE 0x00
#define K_SYNC 0x01
#define K_TIMESTAMP 0x04
#define K_SCHEMA_VERSION 0x05
#define K_STREAM_ID 0x0A

/* encode_wal_batch's attribute names (init_names). */
static PyObject *S_ROWS, *S_LSN;

/* Set once by configure(). */
static PyObject *NO_BODY, *SLOW, *BAD_BODY, *EXT_HOOK, *MAP_PAIRS;

/* Decode results besides a new reference. */
#define R_BAD ((PyObject *)1)  /* malformed: the body is "packet body" */
#define R_SLOW ((PyObject *)2) /* not decoded here: Python decides */

static inline uint64_t
be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* An unsigned integer at *pp (fixint or uint 8..64); 0 if not one. */
static inline int
read_uint(const unsigned char **pp, const unsigned char *end, uint64_t *out)
{
    const unsigned char *p = *pp;
    if (p >= end)
        return 0;
    unsigned char c = *p;
    int n;
    if (c < 0x80) {
        *out = c;
        *pp = p + 1;
        return 1;
    }
    switch (c) {
    case 0xCC: n = 1; break;
    case 0xCD: n = 2; break;
    case 0xCE: n = 4; break;
    case 0xCF: n = 8; break;
    default: return 0;
    }
    if (end - p - 1 < n)
        return 0;
    *out = be(p + 1, n);
    *pp = p + 1 + n;
    return 1;
}

/* Skip a scalar header value (nil, bool, int, float, str, bin); 0 if it
 * is anything else or truncated. */
static int
skip_scalar(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    if (p >= end)
        return 0;
    unsigned char c = *p;
    Py_ssize_t left = end - p - 1;
    uint64_t n;
    if (c < 0x80 || c >= 0xE0 || c == 0xC0 || c == 0xC2 || c == 0xC3) {
        *pp = p + 1;
        return 1;
    }
    if (c >= 0xA0 && c <= 0xBF) {
        n = c & 0x1F;
        if ((uint64_t)left < n)
            return 0;
        *pp = p + 1 + n;
        return 1;
    }
    switch (c) {
    case 0xCC: case 0xD0: n = 1; break;
    case 0xCD: case 0xD1: n = 2; break;
    case 0xCA: case 0xCE: case 0xD2: n = 4; break;
    case 0xCB: case 0xCF: case 0xD3: n = 8; break;
    case 0xC4: case 0xD9: /* bin8, str8 */
    case 0xC5: case 0xDA: /* bin16, str16 */
    case 0xC6: case 0xDB: { /* bin32, str32 */
        int w = (c == 0xC4 || c == 0xD9) ? 1 : (c == 0xC5 || c == 0xDA) ? 2 : 4;
        if (left < w)
            return 0;
        n = be(p + 1, w);
        if ((uint64_t)(left - w) < n)
            return 0;
        *pp = p + 1 + w + n;
        return 1;
    }
    default:
        return 0;
    }
    if ((uint64_t)left < n)
        return 0;
    *pp = p + 1 + n;
    return 1;
}

static PyObject *decode(const unsigned char **pp, const unsigned char *end, int depth);

static PyObject *
decode_ext(const unsigned char *data, Py_ssize_t n, int code)
{
    if (code == -1)
        return R_SLOW; /* msgpack-python makes a Timestamp of it */
    PyObject *b = PyBytes_FromStringAndSize((const char *)data, n);
    if (b == NULL)
        return NULL;
    PyObject *r = PyObject_CallFunction(EXT_HOOK, "iO", code, b);
    Py_DECREF(b);
    return r;
}

static PyObject *
decode_array(const unsigned char **pp, const unsigned char *end, uint64_t n, int depth)
{
    if (n > (uint64_t)(end - *pp))
        return R_BAD; /* each element takes a byte at least */
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *v = decode(pp, end, depth + 1);
        if (v == NULL || v == R_BAD || v == R_SLOW) {
            Py_DECREF(list);
            return v;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    return list;
}

static PyObject *
decode_map(const unsigned char **pp, const unsigned char *end, uint64_t n, int depth)
{
    if (n > (uint64_t)(end - *pp) / 2)
        return R_BAD;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        PyObject *k = decode(pp, end, depth + 1);
        if (k == NULL || k == R_BAD || k == R_SLOW) {
            Py_DECREF(d);
            return k;
        }
        PyObject *v = decode(pp, end, depth + 1);
        if (v == NULL || v == R_BAD || v == R_SLOW) {
            Py_DECREF(k);
            Py_DECREF(d);
            return v;
        }
        int rc = PyDict_SetItem(d, k, v); /* a later duplicate wins, as in msgpack */
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

/* One MessagePack value at *pp, bounded by end: a new reference, R_BAD,
 * R_SLOW, or NULL with a Python exception set (the caller treats it as
 * R_BAD, as the pure-Python path treats any exception). */
static PyObject *
decode(const unsigned char **pp, const unsigned char *end, int depth)
{
    const unsigned char *p = *pp;
    if (p >= end)
        return R_BAD;
    if (depth > MAX_DEPTH)
        return R_SLOW;
    unsigned char c = *p++;
    Py_ssize_t left = end - p;
    uint64_t n;
    int w;
    if (c < 0x80) {
        *pp = p;
        return PyLong_FromLong(c);
    }
    if (c >= 0xE0) {
        *pp = p;
        return PyLong_FromLong((int8_t)c);
    }
    if (c <= 0x8F) {
        *pp = p;
        return decode_map(pp, end, c & 0x0F, depth);
    }
    if (c <= 0x9F) {
        *pp = p;
        return decode_array(pp, end, c & 0x0F, depth);
    }
    if (c <= 0xBF) {
        n = c & 0x1F;
        goto str;
    }
    switch (c) {
    case 0xC0: *pp = p; Py_RETURN_NONE;
    case 0xC2: *pp = p; Py_RETURN_FALSE;
    case 0xC3: *pp = p; Py_RETURN_TRUE;
    case 0xCC: case 0xCD: case 0xCE: case 0xCF:
        w = 1 << (c - 0xCC);
        if (left < w)
            return R_BAD;
        *pp = p + w;
        return PyLong_FromUnsignedLongLong(be(p, w));
    case 0xD0: if (left < 1) return R_BAD; *pp = p + 1; return PyLong_FromLong((int8_t)p[0]);
    case 0xD1: if (left < 2) return R_BAD; *pp = p + 2; return PyLong_FromLong((int16_t)be(p, 2));
    case 0xD2: if (left < 4) return R_BAD; *pp = p + 4; return PyLong_FromLong((int32_t)be(p, 4));
    case 0xD3: if (left < 8) return R_BAD; *pp = p + 8; return PyLong_FromLongLong((int64_t)be(p, 8));
    case 0xCA: {
        if (left < 4)
            return R_BAD;
        uint32_t u = (uint32_t)be(p, 4);
        float f;
        memcpy(&f, &u, 4);
        *pp = p + 4;
        return PyFloat_FromDouble((double)f);
    }
    case 0xCB: {
        if (left < 8)
            return R_BAD;
        uint64_t u = be(p, 8);
        double d;
        memcpy(&d, &u, 8);
        *pp = p + 8;
        return PyFloat_FromDouble(d);
    }
    case 0xD9: w = 1; goto str_len;
    case 0xDA: w = 2; goto str_len;
    case 0xDB: w = 4; goto str_len;
    case 0xC4: case 0xC5: case 0xC6:
        w = 1 << (c - 0xC4);
        if (left < w)
            return R_BAD;
        n = be(p, w);
        p += w;
        left -= w;
        if ((uint64_t)left < n)
            return R_BAD;
        *pp = p + n;
        return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    case 0xDC: case 0xDD:
        w = c == 0xDC ? 2 : 4;
        if (left < w)
            return R_BAD;
        *pp = p + w;
        return decode_array(pp, end, be(p, w), depth);
    case 0xDE: case 0xDF:
        w = c == 0xDE ? 2 : 4;
        if (left < w)
            return R_BAD;
        *pp = p + w;
        return decode_map(pp, end, be(p, w), depth);
    case 0xD4: case 0xD5: case 0xD6: case 0xD7: case 0xD8: /* fixext 1..16 */
        n = (uint64_t)1 << (c - 0xD4);
        if ((uint64_t)left < n + 1)
            return R_BAD;
        *pp = p + 1 + n;
        return decode_ext(p + 1, (Py_ssize_t)n, (int8_t)p[0]);
    case 0xC7: case 0xC8: case 0xC9: /* ext 8/16/32 */
        w = 1 << (c - 0xC7);
        if (left < w + 1)
            return R_BAD;
        n = be(p, w);
        if ((uint64_t)(left - w - 1) < n)
            return R_BAD;
        *pp = p + w + 1 + n;
        return decode_ext(p + w + 1, (Py_ssize_t)n, (int8_t)p[w]);
    default: /* 0xC1 */
        return R_BAD;
    }
str_len:
    if (left < w)
        return R_BAD;
    n = be(p, w);
    p += w;
    left -= w;
str:
    if ((uint64_t)left < n)
        return R_BAD;
    *pp = p + n;
    return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "surrogateescape");
}

/* The body of one packet: NO_BODY, BAD_BODY, SLOW, or the value (a top
 * map that Python would merge keys of goes through map_pairs). */
static PyObject *
decode_body(const unsigned char *p, const unsigned char *end)
{
    if (p == end) {
        Py_INCREF(NO_BODY);
        return NO_BODY;
    }
    const unsigned char *q = p;
    PyObject *v = decode(&q, end, 0);
    if (v == R_SLOW) {
        Py_INCREF(SLOW);
        return SLOW;
    }
    if (v == NULL || v == R_BAD || q != end) {
        if (v == NULL)
            PyErr_Clear();
        else if (v != R_BAD)
            Py_DECREF(v);
        Py_INCREF(BAD_BODY);
        return BAD_BODY;
    }
    if (PyDict_CheckExact(v)) {
        uint64_t n = *p <= 0x8F ? (uint64_t)(*p & 0x0F) : be(p + 1, *p == 0xDE ? 2 : 4);
        if ((uint64_t)PyDict_GET_SIZE(v) != n) {
            Py_DECREF(v);
            PyObject *raw = PyBytes_FromStringAndSize((const char *)p, end - p);
            if (raw == NULL)
                return NULL;
            v = PyObject_CallOneArg(MAP_PAIRS, raw);
            Py_DECREF(raw);
            if (v == NULL) {
                PyErr_Clear();
                Py_INCREF(BAD_BODY);
                return BAD_BODY;
            }
        }
    }
    return v;
}

/* The header, if it is the plain kind: 1 and the fields and its end; 0 if
 * Python must look at it. */
static int
decode_header(const unsigned char *p, const unsigned char *end, uint64_t f[4],
              const unsigned char **hend)
{
    uint64_t n;
    unsigned char c = *p;
    if (c >= 0x80 && c <= 0x8F) {
        n = c & 0x0F;
        p++;
    } else if (c == 0xDE && end - p >= 3) {
        n = be(p + 1, 2);
        p += 3;
    } else {
        return 0;
    }
    f[0] = f[1] = f[2] = f[3] = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k, v;
        if (!read_uint(&p, end, &k))
            return 0;
        if (k > K_STREAM_ID) {
            if (!skip_scalar(&p, end))
                return 0;
            continue;
        }
        if (k == K_TIMESTAMP) {
            if (p + 5 > end || (*p != 0xCA && *p != 0xCB) || (*p == 0xCB && p + 9 > end))
                return 0;
            p += *p == 0xCA ? 5 : 9;
            continue;
        }
        if (!read_uint(&p, end, &v))
            return 0;
        if (k == K_REQUEST_TYPE)
            f[0] = v;
        else if (k == K_SYNC)
            f[1] = v;
        else if (k == K_SCHEMA_VERSION)
            f[2] = v;
        else if (k == K_STREAM_ID)
            f[3] = v;
    }
    *hend = p;
    return 1;
}

static PyObject *
record(Py_ssize_t pos, Py_ssize_t pend, const unsigned char *base)
{
    const unsigned char *hs = base + pos, *end = base + pend, *hend;
    uint64_t f[4];
    /* skip the length prefix */
    unsigned char c = *hs;
    hs += c < 0x80 ? 1 : c == 0xCC ? 2 : c == 0xCD ? 3 : c == 0xCE ? 5 : 9;
    if (!decode_header(hs, end, f, &hend))
        return Py_BuildValue("nnOOiiO", pos, pend, Py_None, Py_None, 0, 0, SLOW);
    PyObject *body = decode_body(hend, end);
    if (body == NULL)
        return NULL;
    PyObject *r = Py_BuildValue("nnKKKKN", pos, pend, (unsigned long long)f[0],
                                (unsigned long long)f[1], (unsigned long long)f[2],
                                (unsigned long long)f[3], body);
    return r;
}

PyDoc_STRVAR(scan_doc,
"scan(buf, start, end, budget) -> (records, pos, to_read, fatal, slow)\n\n"
"See styx/protocol/scan.py, PyBatchDecoder.scan.");

static PyObject *
scan(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *obj;
    Py_ssize_t start, end, budget;
    if (!PyArg_ParseTuple(args, "Onnn", &obj, &start, &end, &budget))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (start < 0 || end > view.len || start > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "range out of the buffer");
        return NULL;
    }
    const unsigned char *buf = view.buf;
    PyObject *records = PyList_New(0);
    if (records == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t pos = start, to_read = 3, slow = 0;
    PyObject *fatal = Py_None;
    Py_INCREF(fatal);
    while (pos < end) {
        if (PyList_GET_SIZE(records) >= budget) {
            to_read = -1; /* unchanged: the caller keeps its own */
            break;
        }
        unsigned char c = buf[pos];
        Py_ssize_t hl;
        uint64_t length;
        if (c < 0x80) {
            hl = 1;
            length = c;
        } else if (c >= 0xCC && c <= 0xCF) {
            hl = 1 + (1 << (c - 0xCC));
            if (end - pos < hl) {
                to_read = 9;
                break;
            }
            length = be(buf + pos + 1, (int)hl - 1);
            if (length > PACKET_SIZE_MAX) {
                Py_DECREF(fatal);
                fatal = PyUnicode_FromFormat("too big packet size in the header: %llu",
                                             (unsigned long long)length);
                to_read = -1;
                break;
            }
        } else {
            Py_DECREF(fatal);
            fatal = PyUnicode_FromString("packet length");
            to_read = -1;
            break;
        }
        if ((uint64_t)(end - pos - hl) < length) {
            to_read = hl + (Py_ssize_t)length;
            break;
        }
        Py_ssize_t pend = pos + hl + (Py_ssize_t)length;
        if (length) { /* an empty packet gets no reply (as Tarantool) */
            PyObject *r = record(pos, pend, buf);
            if (r == NULL || PyList_Append(records, r) < 0) {
                Py_XDECREF(r);
                goto error;
            }
            if (PyTuple_GET_ITEM(r, 6) == SLOW)
                slow++;
            Py_DECREF(r);
        }
        pos = pend;
    }
    PyBuffer_Release(&view);
    if (fatal == NULL) {
        Py_DECREF(records);
        return NULL;
    }
    return Py_BuildValue("NnnNn", records, pos, to_read, fatal, slow);
error:
    PyBuffer_Release(&view);
    Py_DECREF(records);
    Py_XDECREF(fatal);
    return NULL;
}

/* -- fast_dml: codec._fast_dml ------------------------------------------ */

static PyObject *DML_REQUEST, *SELECT_KEYS, *UPDATE_KEYS, *DELETE_KEYS;
static PyObject *S_TYPE, *S_SPACE_ID, *S_INDEX_ID, *S_ITERATOR, *S_LIMIT, *S_OFFSET, *S_KEY, *S_TUPLE,
    *S_INDEX_BASE, *S_POINT;
static PyObject *K_SPACE_ID_OBJ, *K_INDEX_ID_OBJ, *K_LIMIT_OBJ, *K_OFFSET_OBJ, *K_ITERATOR_OBJ,
    *K_KEY_OBJ, *K_TUPLE_OBJ, *K_FUNCTION_NAME_OBJ, *K_EXPR_OBJ, *ZERO, *K_INDEX_BASE_OBJ;

#define T_SELECT 1
#define T_INSERT 2
#define T_REPLACE 3
#define T_UPDATE 4
#define T_DELETE 5

/* m[key] if it is an int in 0..2^32-1 (1, value in *out), absent (2), or
 * anything else (0). A lookup error counts as anything else. */
static int
get_u32(PyObject *m, PyObject *key, uint64_t *out)
{
    PyObject *v = PyDict_GetItemWithError(m, key);
    if (v == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return 2;
    }
    if (!PyLong_CheckExact(v))
        return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x < 0 || x > 0xFFFFFFFFLL)
        return 0;
    *out = (uint64_t)x;
    return 1;
}

/* Whether every key of m is in the set `allowed` (a lookup error: no). */
static int
keys_within(PyObject *m, PyObject *allowed)
{
    Py_ssize_t i = 0;
    PyObject *k, *v;
    while (PyDict_Next(m, &i, &k, &v)) {
        int in = PySet_Contains(allowed, k);
        if (in != 1) {
            if (in < 0)
                PyErr_Clear();
            return 0;
        }
    }
    return 1;
}

/* m[key] if it is a list (borrowed), else NULL with no error set. */
static PyObject *
get_list(PyObject *m, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(m, key);
    if (v == NULL || !PyList_CheckExact(v)) {
        PyErr_Clear();
        return NULL;
    }
    return v;
}

static int
set(PyObject *d, PyObject *k, PyObject *v)
{
    return PyDict_SetItem(d, k, v);
}

static int
set_u(PyObject *d, PyObject *k, uint64_t v)
{
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    if (o == NULL)
        return -1;
    int rc = PyDict_SetItem(d, k, o);
    Py_DECREF(o);
    return rc;
}

/* Whether a SELECT key is one unsigned int (a point read's, with EQ,
 * offset 0 and a limit). */
static int
is_point(PyObject *key)
{
    if (PyList_GET_SIZE(key) != 1 || !PyLong_CheckExact(PyList_GET_ITEM(key, 0)))
        return 0;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(PyList_GET_ITEM(key, 0), &overflow);
    return overflow > 0 || (overflow == 0 && x >= 0); /* no error: the object is an int */
}

PyDoc_STRVAR(fast_dml_doc,
"fast_dml(req_type, m) -> DmlRequest | None: codec._fast_dml, compiled.");

static PyObject *
fast_dml_impl(int t, PyObject *m)
{
    if (DML_REQUEST == NULL || !PyDict_CheckExact(m))
        Py_RETURN_NONE;
    Py_ssize_t pos = 0;
    PyObject *mk, *mv;
    while (PyDict_Next(m, &pos, &mk, &mv)) /* 16.0 is not SPACE_ID: the general path skips it */
        if (!PyLong_CheckExact(mk))
            Py_RETURN_NONE;
    uint64_t space_id, iid = 0, it = 0, limit = 0, offset = 0, base = 0;
    if (get_u32(m, K_SPACE_ID_OBJ, &space_id) != 1)
        Py_RETURN_NONE;
    PyObject *key = NULL, *tup = NULL;
    if (t == T_SELECT) {
        if (!keys_within(m, SELECT_KEYS) || get_u32(m, K_INDEX_ID_OBJ, &iid) == 0
            || get_u32(m, K_ITERATOR_OBJ, &it) == 0 || get_u32(m, K_LIMIT_OBJ, &limit) != 1
            || get_u32(m, K_OFFSET_OBJ, &offset) == 0 || (key = get_list(m, K_KEY_OBJ)) == NULL)
            Py_RETURN_NONE;
    } else if (t == T_INSERT || t == T_REPLACE) {
        if (PyDict_GET_SIZE(m) != 2 || (tup = get_list(m, K_TUPLE_OBJ)) == NULL)
            Py_RETURN_NONE;
    } else if (t == T_UPDATE || t == T_DELETE) {
        if (!keys_within(m, t == T_UPDATE ? UPDATE_KEYS : DELETE_KEYS) || get_u32(m, K_INDEX_ID_OBJ, &iid) == 0
            || get_u32(m, K_INDEX_BASE_OBJ, &base) == 0 || (key = get_list(m, K_KEY_OBJ)) == NULL
            || (t == T_UPDATE && (tup = get_list(m, K_TUPLE_OBJ)) == NULL))
            Py_RETURN_NONE;
    } else {
        Py_RETURN_NONE;
    }
    PyObject *req = PyObject_CallNoArgs(DML_REQUEST);
    if (req == NULL)
        return NULL;
    PyObject *d = PyObject_GenericGetDict(req, NULL);
    if (d == NULL) {
        Py_DECREF(req);
        return NULL;
    }
    int rc = set_u(d, S_TYPE, (uint64_t)t) || set_u(d, S_SPACE_ID, space_id);
    if (t == T_SELECT)
        rc = rc || set_u(d, S_INDEX_ID, iid) || set_u(d, S_ITERATOR, it) || set_u(d, S_LIMIT, limit)
             || set_u(d, S_OFFSET, offset) || set(d, S_KEY, key)
             || (it == 0 && offset == 0 && limit > 0 && is_point(key) && set(d, S_POINT, PyList_GET_ITEM(key, 0)));
    else if (t == T_UPDATE)
        rc = rc || set_u(d, S_INDEX_ID, iid) || set(d, S_KEY, key) || set(d, S_TUPLE, tup)
             || set_u(d, S_INDEX_BASE, base);
    else if (t == T_DELETE)
        rc = rc || set_u(d, S_INDEX_ID, iid) || set(d, S_KEY, key);
    else
        rc = rc || set(d, S_TUPLE, tup);
    Py_DECREF(d);
    if (rc) {
        Py_DECREF(req);
        return NULL;
    }
    return req;
}

static PyObject *
fast_dml(PyObject *self, PyObject *args)
{
    int t;
    PyObject *m;
    (void)self;
    if (!PyArg_ParseTuple(args, "iO", &t, &m))
        return NULL;
    return fast_dml_impl(t, m);
}

PyDoc_STRVAR(configure_dml_doc,
"configure_dml(DmlRequest, select_keys, update_keys, delete_keys): the class fast_dml builds,\n"
"the keys each shape may have.");

static PyObject *
configure_dml(PyObject *self, PyObject *args)
{
    PyObject *cls, *keys, *ukeys, *dkeys;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &cls, &keys, &ukeys, &dkeys))
        return NULL;
    Py_XSETREF(DML_REQUEST, Py_NewRef(cls));
    Py_XSETREF(SELECT_KEYS, Py_NewRef(keys));
    Py_XSETREF(UPDATE_KEYS, Py_NewRef(ukeys));
    Py_XSETREF(DELETE_KEYS, Py_NewRef(dkeys));
    return Py_NewRef(Py_None);
}

static int
init_names(void)
{
#define NAME(var, s) if ((var = PyUnicode_InternFromString(s)) == NULL) return -1
#define INT(var, v) if ((var = PyLong_FromLong(v)) == NULL) return -1
    NAME(S_TYPE, "type"); NAME(S_SPACE_ID, "space_id"); NAME(S_INDEX_ID, "index_id");
    NAME(S_ITERATOR, "iterator"); NAME(S_LIMIT, "limit"); NAME(S_OFFSET, "offset");
    NAME(S_KEY, "key"); NAME(S_TUPLE, "tuple"); NAME(S_INDEX_BASE, "index_base"); NAME(S_POINT, "point"); NAME(S_ROWS, "rows"); NAME(S_LSN, "lsn");
    INT(K_SPACE_ID_OBJ, 0x10); INT(K_INDEX_ID_OBJ, 0x11); INT(K_LIMIT_OBJ, 0x12);
    INT(K_OFFSET_OBJ, 0x13); INT(K_ITERATOR_OBJ, 0x14); INT(K_KEY_OBJ, 0x20); INT(K_TUPLE_OBJ, 0x21);
    INT(K_FUNCTION_NAME_OBJ, 0x22); INT(K_EXPR_OBJ, 0x27); INT(ZERO, 0); INT(K_INDEX_BASE_OBJ, 0x15);
    return 0;
#undef NAME
#undef INT
}

PyDoc_STRVAR(configure_doc,
"configure(no_body, slow, bad_body, ext_hook, map_pairs): the objects scan uses.");

static PyObject *
configure(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *a, *b, *c, *d, *e;
    if (!PyArg_ParseTuple(args, "OOOOO", &a, &b, &c, &d, &e))
        return NULL;
    Py_XSETREF(NO_BODY, Py_NewRef(a));
    Py_XSETREF(SLOW, Py_NewRef(b));
    Py_XSETREF(BAD_BODY, Py_NewRef(c));
    Py_XSETREF(EXT_HOOK, Py_NewRef(d));
    Py_XSETREF(MAP_PAIRS, Py_NewRef(e));
    Py_RETURN_NONE;
}

/* ---- encode_wal_batch: the WAL writer's rows (styx/wal/writer.py) ---- */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} wbuf;

static int
wb_reserve(wbuf *b, Py_ssize_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 8192;
    while (cap < b->len + n)
        cap *= 2;
    char *p = PyMem_Realloc(b->p, cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* The smallest MessagePack encoding of an unsigned integer (xrow.py's _uint);
 * room for 9 bytes is reserved by the caller. */
static inline void
wb_uint(wbuf *b, uint64_t v)
{
    unsigned char *o = (unsigned char *)b->p + b->len;
    int n;
    if (v < 0x80) {
        o[0] = (unsigned char)v;
        b->len += 1;
        return;
    }
    if (v <= 0xFF) {
        o[0] = 0xCC;
        n = 1;
    } else if (v <= 0xFFFF) {
        o[0] = 0xCD;
        n = 2;
    } else if (v <= 0xFFFFFFFFULL) {
        o[0] = 0xCE;
        n = 4;
    } else {
        o[0] = 0xCF;
        n = 8;
    }
    for (int i = 0; i < n; i++)
        o[1 + i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    b->len += 1 + n;
}

static inline void
wb_byte(wbuf *b, unsigned char c)
{
    b->p[b->len++] = (char)c;
}

static inline void
wb_f64(wbuf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    wb_byte(b, 0xCB);
    for (int i = 7; i >= 0; i--)
        wb_byte(b, (unsigned char)(u >> (8 * i)));
}

PyDoc_STRVAR(encode_wal_batch_doc,
"encode_wal_batch(entries, lsn, replica_id, now, block_max) -> (blocks, lsn)\n\n"
"writer.py's py_encode_batch, which defines the result.");

static PyObject *
encode_wal_batch(PyObject *self, PyObject *args)
{
    PyObject *entries, *blocks = NULL;
    unsigned long long lsn, replica_id;
    double now;
    Py_ssize_t block_max;
    wbuf b = {NULL, 0, 0};
    (void)self;
    if (!PyArg_ParseTuple(args, "OKKdn", &entries, &lsn, &replica_id, &now, &block_max))
        return NULL;
    PyObject *seq = PySequence_Fast(entries, "entries must be a sequence");
    if (seq == NULL)
        return NULL;
    if ((blocks = PyList_New(0)) == NULL)
        goto fail;
    Py_ssize_t n_entries = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t e = 0; e < n_entries; e++) {
        PyObject *entry = PySequence_Fast_GET_ITEM(seq, e);
        PyObject *rows = PyObject_GetAttr(entry, S_ROWS);
        if (rows == NULL)
            goto fail;
        if (!PyList_CheckExact(rows)) {
            Py_DECREF(rows);
            PyErr_SetString(PyExc_TypeError, "an entry's rows must be a list");
            goto fail;
        }
        Py_ssize_t n = PyList_GET_SIZE(rows);
        uint64_t tsn = lsn + 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *row = PyList_GET_ITEM(rows, i);
            if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 3
                || !PyBytes_CheckExact(PyTuple_GET_ITEM(row, 1))) {
                Py_DECREF(rows);
                PyErr_SetString(PyExc_TypeError, "a row must be (type, body bytes, group id)");
                goto fail;
            }
            unsigned long long type = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 0));
            unsigned long long group = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 2));
            if (PyErr_Occurred()) {
                Py_DECREF(rows);
                goto fail;
            }
            PyObject *body = PyTuple_GET_ITEM(row, 1);
            Py_ssize_t blen = PyBytes_GET_SIZE(body);
            if (wb_reserve(&b, 64 + blen) < 0) {
                Py_DECREF(rows);
                goto fail;
            }
            lsn++;
            if (n == 1 && group == 0) { /* autocommit_header: keys 0, 2, 3, 4 */
                wb_byte(&b, 0x84);
                wb_byte(&b, 0x00);
                wb_uint(&b, type);
                wb_byte(&b, 0x02);
                wb_uint(&b, replica_id);
                wb_byte(&b, 0x03);
                wb_uint(&b, lsn);
                wb_byte(&b, 0x04);
                wb_f64(&b, now);
            } else { /* encode_header's general path */
                uint64_t rid = group ? 0 : replica_id;
                int multi = n > 1, last = i == n - 1;
                int keys = 1 + (rid != 0) + (group != 0) + (lsn != 0) + (now != 0.0) + (multi ? 1 + last : 0);
                wb_byte(&b, (unsigned char)(0x80 | keys));
                wb_byte(&b, 0x00);
                wb_uint(&b, type);
                if (rid) {
                    wb_byte(&b, 0x02);
                    wb_uint(&b, rid);
                }
                if (group) {
                    wb_byte(&b, 0x07);
                    wb_uint(&b, group);
                }
                if (lsn) {
                    wb_byte(&b, 0x03);
                    wb_uint(&b, lsn);
                }
                if (now != 0.0) {
                    wb_byte(&b, 0x04);
                    wb_f64(&b, now);
                }
                if (multi) {
                    wb_byte(&b, 0x08);
                    wb_uint(&b, lsn - tsn);
                    if (last) {
                        wb_byte(&b, 0x09);
                        wb_uint(&b, 1); /* FLAG_COMMIT */
                    }
                }
            }
            memcpy(b.p + b.len, PyBytes_AS_STRING(body), blen);
            b.len += blen;
        }
        Py_DECREF(rows);
        PyObject *v = PyLong_FromUnsignedLongLong(lsn);
        if (v == NULL || PyObject_SetAttr(entry, S_LSN, v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(v);
        if (b.len >= block_max) {
            PyObject *block = PyBytes_FromStringAndSize(b.p, b.len);
            if (block == NULL || PyList_Append(blocks, block) < 0) {
                Py_XDECREF(block);
                goto fail;
            }
            Py_DECREF(block);
            b.len = 0;
        }
    }
    if (b.len) {
        PyObject *block = PyBytes_FromStringAndSize(b.p, b.len);
        if (block == NULL || PyList_Append(blocks, block) < 0) {
            Py_XDECREF(block);
            goto fail;
        }
        Py_DECREF(block);
    }
    PyMem_Free(b.p);
    Py_DECREF(seq);
    return Py_BuildValue("(NK)", blocks, lsn);
fail:
    PyMem_Free(b.p);
    Py_DECREF(seq);
    Py_XDECREF(blocks);
    return NULL;
}

/* ------------------------------------------------------------------------
 * data_packet(buf, off, total, code, sync, schema_version, map_size, count, body, skip=0)
 *
 * Writes at buf[off:] the 35-byte head of a `{DATA: [count elements], ...}`
 * reply (codec.py's DATA_HEAD: 0xCE length, the header map {REQUEST_TYPE:
 * code, SYNC: sync, SCHEMA_VERSION: schema_version} in fixed widths, then
 * 0x80|map_size, DATA, 0xDD count), then body[skip:] right after it (a
 * CALL's values come packed as one array: skip is its header). `total` is
 * the whole packet's size (the length field says total - 5); the caller
 * allocated it, or only the head when it streams the body itself (then
 * body is empty). Same bytes as py_data_packet. ok_packet() below is the
 * same for PING's reply.
 */
static void
put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
}

/* A reply's 28-byte head, as codec.py's HEADER: 0xCE length (what follows
 * it), then {REQUEST_TYPE: code, SYNC: sync, SCHEMA_VERSION: sv} in fixed
 * widths. */
static void
put_header(unsigned char *p, uint64_t length, uint64_t code, uint64_t sync, uint64_t sv)
{
    p[0] = 0xCE; put_be(p + 1, length, 4);
    p[5] = 0x83;
    p[6] = K_REQUEST_TYPE; p[7] = 0xCE; put_be(p + 8, code, 4);
    p[12] = K_SYNC; p[13] = 0xCF; put_be(p + 14, sync, 8);
    p[22] = K_SCHEMA_VERSION; p[23] = 0xCE; put_be(p + 24, sv & 0xFFFFFFFFULL, 4);
}

#define DATA_HEAD 35

PyDoc_STRVAR(data_packet_doc,
"data_packet(buf, off, total, code, sync, schema_version, map_size, count, body, skip=0)\n"
"Write a DATA reply's head and body[skip:] into bytearray buf at off.");

static PyObject *
data_packet(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 9 && nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "data_packet takes 9 or 10 arguments");
        return NULL;
    }
    if (!PyByteArray_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "data_packet: buf must be a bytearray");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    Py_ssize_t total = PyLong_AsSsize_t(args[2]);
    unsigned long long code = PyLong_AsUnsignedLongLong(args[3]);
    unsigned long long sync = PyLong_AsUnsignedLongLong(args[4]);
    unsigned long long sv = PyLong_AsUnsignedLongLong(args[5]);
    unsigned long long map_size = PyLong_AsUnsignedLongLong(args[6]);
    unsigned long long count = PyLong_AsUnsignedLongLong(args[7]);
    Py_ssize_t skip = nargs == 10 ? PyLong_AsSsize_t(args[9]) : 0;
    if (PyErr_Occurred())
        return NULL;
    if (total < 5 || total - 5 > 0xFFFFFFFFLL || code > 0xFFFFFFFFULL || map_size > 15 || count > 0xFFFFFFFFULL) {
        PyErr_SetString(PyExc_OverflowError, "data_packet: a field is out of range");
        return NULL;
    }
    Py_buffer body;
    if (PyObject_GetBuffer(args[8], &body, PyBUF_SIMPLE) < 0)
        return NULL;
    if (skip < 0 || skip > body.len) {
        PyBuffer_Release(&body);
        PyErr_SetString(PyExc_IndexError, "data_packet: skip is past the body");
        return NULL;
    }
    Py_ssize_t size = PyByteArray_GET_SIZE(args[0]);
    if (off < 0 || off > size - DATA_HEAD - (body.len - skip)) {
        PyBuffer_Release(&body);
        PyErr_SetString(PyExc_IndexError, "data_packet: no room at this offset");
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(args[0]) + off;
    put_header(p, (uint64_t)(total - 5), code, sync, sv);
    p[28] = (unsigned char)(0x80 | map_size); p[29] = 0x30; p[30] = 0xDD; put_be(p + 31, count, 4);
    if (body.len > skip)
        memcpy(p + DATA_HEAD, (const char *)body.buf + skip, (size_t)(body.len - skip));
    PyBuffer_Release(&body);
    Py_RETURN_NONE;
}

#define OK_PACKET 29

PyDoc_STRVAR(ok_packet_doc,
"ok_packet(buf, off, sync, schema_version)\n"
"Write an OK reply with an empty body map (29 bytes) into bytearray buf at off.");

static PyObject *
ok_packet(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "ok_packet takes 4 arguments");
        return NULL;
    }
    if (!PyByteArray_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "ok_packet: buf must be a bytearray");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    unsigned long long sync = PyLong_AsUnsignedLongLong(args[2]);
    unsigned long long sv = PyLong_AsUnsignedLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (off < 0 || off > PyByteArray_GET_SIZE(args[0]) - OK_PACKET) {
        PyErr_SetString(PyExc_IndexError, "ok_packet: no room at this offset");
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(args[0]) + off;
    put_header(p, OK_PACKET - 5, 0, sync, sv);
    p[28] = 0x80;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * put_data(tx_conn, sync, code, schema_version, body, count, map_size=1, skip=0) -> wpos
 *
 * tx/reply.py's `_data_packet`, the common case compiled: the packet fits
 * in the current slab of the obuf TX is filling (and is not bigger than
 * SMALL_REPLY), so it is written there with data_packet's bytes and
 * committed (iov_len, used) as Obuf.alloc commits. Returns the new end of
 * output, (cur_obuf, used). Anything else (no slab yet, a full one, a big
 * reply, an argument not of the usual type) is the Python twin's, called
 * with the same arguments. The slots are read where the classes keep them
 * (configure_reply).
 */
enum { X_CUR_OBUF, X_OBUF, X_COUNT_TXCONN };
enum { B_IOV, B_IOV_LEN, B_POS, B_USED, B_COUNT };
static const char *TXCONN_SLOTS[X_COUNT_TXCONN] = {"cur_obuf", "obuf"};
static const char *OBUF_SLOTS[B_COUNT] = {"iov", "iov_len", "pos", "used"};
static Py_ssize_t TXCONN_OFFSET[X_COUNT_TXCONN], OBUF_OFFSET[B_COUNT];
static PyTypeObject *TXCONN_CLASS, *OBUF_CLASS;
static PyObject *PUT_DATA_SLOW, *ACCEPT_SLOW, *SMALL_INTS[2];
static Py_ssize_t SMALL_REPLY_MAX;

PyDoc_STRVAR(configure_reply_doc,
"configure_reply(TxConn, Obuf, slow, small_reply): the classes put_data and accept_wpos read,\n"
"put_data's Python twin, and the biggest reply written in one piece.");

static PyObject *
configure_reply(PyObject *self, PyObject *args)
{
    PyObject *txconn, *obuf, *slow;
    Py_ssize_t small;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!On", &PyType_Type, &txconn, &PyType_Type, &obuf, &slow, &small))
        return NULL;
    if (slot_offsets(txconn, TXCONN_SLOTS, X_COUNT_TXCONN, TXCONN_OFFSET) < 0
        || slot_offsets(obuf, OBUF_SLOTS, B_COUNT, OBUF_OFFSET) < 0)
        return NULL;
    Py_XSETREF(TXCONN_CLASS, (PyTypeObject *)Py_NewRef(txconn));
    Py_XSETREF(OBUF_CLASS, (PyTypeObject *)Py_NewRef(obuf));
    Py_XSETREF(PUT_DATA_SLOW, Py_NewRef(slow));
    SMALL_REPLY_MAX = small;
    Py_RETURN_NONE;
}

/* A small non-negative int object's value, or -1. */
static Py_ssize_t
small_int(PyObject *o)
{
    if (o == NULL || !PyLong_CheckExact(o))
        return -1;
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return v;
}

PyDoc_STRVAR(put_data_doc,
"put_data(tx_conn, sync, code, schema_version, body, count, map_size=1, skip=0) -> wpos\n"
"tx/reply.py's _data_packet: a DATA reply written at the end of TX's obuf.");

static PyObject *
put_data(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (PUT_DATA_SLOW == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "put_data: configure_reply first");
        return NULL;
    }
    if (nargs < 6 || nargs > 8 || !Py_IS_TYPE(args[0], TXCONN_CLASS) || !PyBytes_CheckExact(args[4]))
        goto slow;
    PyObject *tx_conn = args[0], *body = args[4];
    Py_ssize_t cur = small_int(SLOT(tx_conn, TXCONN_OFFSET[X_CUR_OBUF]));
    PyObject *obufs = SLOT(tx_conn, TXCONN_OFFSET[X_OBUF]);
    if (cur < 0 || obufs == NULL || !PyTuple_CheckExact(obufs) || cur >= PyTuple_GET_SIZE(obufs))
        goto slow;
    PyObject *ob = PyTuple_GET_ITEM(obufs, cur);
    if (!Py_IS_TYPE(ob, OBUF_CLASS))
        goto slow;
    PyObject *iov = SLOT(ob, OBUF_OFFSET[B_IOV]), *iov_len = SLOT(ob, OBUF_OFFSET[B_IOV_LEN]);
    Py_ssize_t pos = small_int(SLOT(ob, OBUF_OFFSET[B_POS]));
    Py_ssize_t used = small_int(SLOT(ob, OBUF_OFFSET[B_USED]));
    if (pos < 0 || used < 0 || iov == NULL || iov_len == NULL || !PyList_CheckExact(iov)
        || !PyList_CheckExact(iov_len) || pos >= PyList_GET_SIZE(iov) || pos >= PyList_GET_SIZE(iov_len))
        goto slow;
    PyObject *buf = PyList_GET_ITEM(iov, pos);
    Py_ssize_t off = small_int(PyList_GET_ITEM(iov_len, pos));
    Py_ssize_t skip = nargs == 8 ? small_int(args[7]) : 0;
    Py_ssize_t blen = PyBytes_GET_SIZE(body);
    if (!PyByteArray_CheckExact(buf) || off < 0 || skip < 0 || skip > blen)
        goto slow;
    Py_ssize_t total = DATA_HEAD + blen - skip;
    if (total > SMALL_REPLY_MAX || PyByteArray_GET_SIZE(buf) - off < total)
        goto slow;
    unsigned long long sync = PyLong_AsUnsignedLongLong(args[1]);
    unsigned long long code = PyLong_AsUnsignedLongLong(args[2]);
    unsigned long long sv = PyLong_AsUnsignedLongLong(args[3]);
    unsigned long long count = PyLong_AsUnsignedLongLong(args[5]);
    unsigned long long map_size = nargs >= 7 ? PyLong_AsUnsignedLongLong(args[6]) : 1;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        goto slow; /* the twin raises what it raises */
    }
    if (code > 0xFFFFFFFFULL || map_size > 15 || count > 0xFFFFFFFFULL)
        goto slow;
    PyObject *new_len = PyLong_FromSsize_t(off + total);
    PyObject *new_used = PyLong_FromSsize_t(used + total);
    PyObject *wpos = new_used == NULL ? NULL : PyTuple_Pack(2, SLOT(tx_conn, TXCONN_OFFSET[X_CUR_OBUF]), new_used);
    if (new_len == NULL || wpos == NULL) {
        Py_XDECREF(new_len);
        Py_XDECREF(new_used);
        Py_XDECREF(wpos);
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyByteArray_AS_STRING(buf) + off;
    put_header(p, (uint64_t)(total - 5), code, sync, sv);
    p[28] = (unsigned char)(0x80 | map_size); p[29] = 0x30; p[30] = 0xDD; put_be(p + 31, count, 4);
    memcpy(p + DATA_HEAD, PyBytes_AS_STRING(body) + skip, (size_t)(blen - skip));
    PyList_SetItem(iov_len, pos, new_len); /* steals new_len */
    Py_SETREF(SLOT(ob, OBUF_OFFSET[B_USED]), new_used);
    return wpos;
slow:
    return PyObject_Vectorcall(PUT_DATA_SLOW, args, (size_t)nargs, NULL);
}

/* ------------------------------------------------------------------------
 * accept_wpos(tx_conn, wpos) -> int
 *
 * tx/kharon.py's `py_accept_wpos`, compiled: every request's first step in
 * TX (net has written up to `wpos`: recycle the obuf written out, switch
 * to the other one). Obuf.recycle stays Python's, called when there is
 * something to recycle. Anything unusual (an argument not of the usual
 * type) is the twin's.
 */
PyDoc_STRVAR(configure_accept_doc,
"configure_accept(twin): accept_wpos's Python twin, which takes what it does not.");

static PyObject *
configure_accept(PyObject *self, PyObject *twin)
{
    (void)self;
    Py_XSETREF(ACCEPT_SLOW, Py_NewRef(twin));
    if (SMALL_INTS[0] == NULL && ((SMALL_INTS[0] = PyLong_FromLong(0)) == NULL
                                  || (SMALL_INTS[1] = PyLong_FromLong(1)) == NULL))
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(accept_wpos_doc,
"accept_wpos(tx_conn, wpos) -> int: tx/kharon.py's accept_wpos.");

static PyObject *
accept_wpos(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (ACCEPT_SLOW == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "accept_wpos: configure_accept first");
        return NULL;
    }
    if (nargs != 2 || TXCONN_CLASS == NULL || OBUF_CLASS == NULL || !Py_IS_TYPE(args[0], TXCONN_CLASS) || !PyTuple_CheckExact(args[1])
        || PyTuple_GET_SIZE(args[1]) != 2)
        goto slow;
    PyObject *tx_conn = args[0];
    Py_ssize_t cur = small_int(SLOT(tx_conn, TXCONN_OFFSET[X_CUR_OBUF]));
    PyObject *obufs = SLOT(tx_conn, TXCONN_OFFSET[X_OBUF]);
    Py_ssize_t wo = small_int(PyTuple_GET_ITEM(args[1], 0)), wu = small_int(PyTuple_GET_ITEM(args[1], 1));
    if ((cur != 0 && cur != 1) || wo < 0 || wu < 0 || obufs == NULL || !PyTuple_CheckExact(obufs)
        || PyTuple_GET_SIZE(obufs) != 2)
        goto slow;
    PyObject *ob = PyTuple_GET_ITEM(obufs, cur), *prev = PyTuple_GET_ITEM(obufs, 1 - cur);
    if (!Py_IS_TYPE(ob, OBUF_CLASS) || !Py_IS_TYPE(prev, OBUF_CLASS))
        goto slow;
    Py_ssize_t used = small_int(SLOT(ob, OBUF_OFFSET[B_USED])), held = small_int(SLOT(prev, OBUF_OFFSET[B_USED]));
    if (used < 0 || held < 0)
        goto slow;
    if (wo != cur) /* net is still in the other one */
        return PyLong_FromSsize_t(used || held > wu ? held + used : 0);
    if (held) {
        PyObject *r = PyObject_CallMethod(prev, "recycle", NULL);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    if (used)
        Py_XSETREF(SLOT(tx_conn, TXCONN_OFFSET[X_CUR_OBUF]), Py_NewRef(SMALL_INTS[1 - cur]));
    return PyLong_FromSsize_t(used > wu ? used : 0);
slow:
    return PyObject_Vectorcall(ACCEPT_SLOW, args, (size_t)nargs, NULL);
}

/* ------------------------------------------------------------------------
 * Packer(fallback): msgpack.Packer(use_bin_type=True,
 * unicode_errors="surrogateescape", default=...).pack for the plain values,
 * compiled: None, bool, int (-2^63 .. 2^64-1), float (as a double), str
 * that is valid UTF-8, bytes, and lists and dicts of them (exact types,
 * nested up to PACK_DEPTH). Anything else anywhere in the value (an ext
 * type, a str with a lone surrogate, a tuple, a subclass...) and the whole
 * value goes to `fallback`, the msgpack packer it stands for. The bytes
 * are msgpack-python's (tests/unit/test_accel.py compares them).
 */
#define PACK_DEPTH 32

typedef struct {
    char *p;
    Py_ssize_t len, cap;
    char small[256];
} PackBuf;

static int
pb_reserve(PackBuf *b, Py_ssize_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + n)
        cap *= 2;
    char *q = b->p == b->small ? PyMem_Malloc((size_t)cap) : PyMem_Realloc(b->p, (size_t)cap);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (b->p == b->small)
        memcpy(q, b->small, (size_t)b->len);
    b->p = q;
    b->cap = cap;
    return 0;
}

/* A type byte and a big-endian length or value of `n` bytes (n may be 0). */
static int
pb_head(PackBuf *b, unsigned char code, uint64_t v, int n)
{
    if (pb_reserve(b, 1 + n) < 0)
        return -1;
    unsigned char *q = (unsigned char *)b->p + b->len;
    q[0] = code;
    put_be(q + 1, v, n);
    b->len += 1 + n;
    return 0;
}

static int
pb_bytes(PackBuf *b, const char *data, Py_ssize_t n)
{
    if (pb_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, data, (size_t)n);
    b->len += n;
    return 0;
}

/* A container's or a string's header: fix form under `fixmax` (or none:
 * fixmax 0), then 8 (only if `code8`), 16 and 32 bits. */
static int
pb_len(PackBuf *b, uint64_t n, unsigned char fixbase, uint64_t fixmax, unsigned char code8,
       unsigned char code16, unsigned char code32)
{
    if (n < fixmax)
        return pb_head(b, (unsigned char)(fixbase | n), 0, 0);
    if (code8 && n < 256)
        return pb_head(b, code8, n, 1);
    if (n < 65536)
        return pb_head(b, code16, n, 2);
    return pb_head(b, code32, n, 4);
}

/* 0 packed, 1 not a plain value (nothing is to be trusted in `b`), -1 error. */
static int
pack_plain(PackBuf *b, PyObject *o, int depth)
{
    if (o == Py_None)
        return pb_head(b, 0xC0, 0, 0);
    if (o == Py_True || o == Py_False)
        return pb_head(b, o == Py_True ? 0xC3 : 0xC2, 0, 0);
    if (PyLong_CheckExact(o)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow > 0) {
            unsigned long long u = PyLong_AsUnsignedLongLong(o);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return 1; /* past 2^64 - 1: msgpack's error, from the fallback */
            }
            return pb_head(b, 0xCF, u, 8);
        }
        if (overflow < 0)
            return 1;
        if (x >= 0) {
            if (x < 128)
                return pb_head(b, (unsigned char)x, 0, 0);
            if (x < 256)
                return pb_head(b, 0xCC, (uint64_t)x, 1);
            if (x < 65536)
                return pb_head(b, 0xCD, (uint64_t)x, 2);
            if (x < 4294967296LL)
                return pb_head(b, 0xCE, (uint64_t)x, 4);
            return pb_head(b, 0xCF, (uint64_t)x, 8);
        }
        if (x >= -32)
            return pb_head(b, (unsigned char)(x & 0xFF), 0, 0);
        if (x >= -128)
            return pb_head(b, 0xD0, (uint64_t)x & 0xFF, 1);
        if (x >= -32768)
            return pb_head(b, 0xD1, (uint64_t)x & 0xFFFF, 2);
        if (x >= -2147483648LL)
            return pb_head(b, 0xD2, (uint64_t)x & 0xFFFFFFFFULL, 4);
        return pb_head(b, 0xD3, (uint64_t)x, 8);
    }
    if (PyFloat_CheckExact(o)) {
        double d = PyFloat_AS_DOUBLE(o);
        uint64_t u;
        memcpy(&u, &d, 8);
        return pb_head(b, 0xCB, u, 8);
    }
    if (PyUnicode_CheckExact(o)) {
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(o, &n);
        if (u == NULL) {
            PyErr_Clear(); /* a lone surrogate: surrogateescape is the fallback's */
            return 1;
        }
        if ((uint64_t)n > 0xFFFFFFFFULL)
            return 1;
        if (pb_len(b, (uint64_t)n, 0xA0, 32, 0xD9, 0xDA, 0xDB) < 0)
            return -1;
        return pb_bytes(b, u, n);
    }
    if (PyBytes_CheckExact(o)) {
        Py_ssize_t n = PyBytes_GET_SIZE(o);
        if ((uint64_t)n > 0xFFFFFFFFULL)
            return 1;
        if (pb_len(b, (uint64_t)n, 0, 0, 0xC4, 0xC5, 0xC6) < 0)
            return -1;
        return pb_bytes(b, PyBytes_AS_STRING(o), n);
    }
    if (depth >= PACK_DEPTH)
        return 1;
    if (PyList_CheckExact(o)) {
        Py_ssize_t n = PyList_GET_SIZE(o);
        if (pb_len(b, (uint64_t)n, 0x90, 16, 0, 0xDC, 0xDD) < 0)
            return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++) {
            int rc = pack_plain(b, PyList_GET_ITEM(o, i), depth + 1);
            if (rc)
                return rc;
        }
        return PyList_GET_SIZE(o) == n ? 0 : 1; /* changed under us: not plain */
    }
    if (PyDict_CheckExact(o)) {
        Py_ssize_t n = PyDict_GET_SIZE(o), pos = 0, seen = 0;
        PyObject *k, *v;
        if (pb_len(b, (uint64_t)n, 0x80, 16, 0, 0xDE, 0xDF) < 0)
            return -1;
        while (PyDict_Next(o, &pos, &k, &v)) {
            int rc = pack_plain(b, k, depth + 1);
            if (rc == 0)
                rc = pack_plain(b, v, depth + 1);
            if (rc)
                return rc;
            seen++;
        }
        return seen == n ? 0 : 1;
    }
    return 1;
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;
} PackerObject;

static PyObject *
Packer_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "Packer takes one value");
        return NULL;
    }
    PyObject *o = args[0];
    PackBuf b;
    b.p = b.small;
    b.len = 0;
    b.cap = (Py_ssize_t)sizeof(b.small);
    int rc = pack_plain(&b, o, 0);
    PyObject *out = rc == 0 ? PyBytes_FromStringAndSize(b.p, b.len) : NULL;
    if (b.p != b.small)
        PyMem_Free(b.p);
    if (rc > 0)
        return PyObject_CallOneArg(((PackerObject *)callable)->fallback, o);
    return out;
}

static PyObject *
Packer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *fallback;
    static char *names[] = {"fallback", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Packer", names, &fallback))
        return NULL;
    PackerObject *self = (PackerObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->vectorcall = Packer_vectorcall;
        self->fallback = Py_NewRef(fallback);
    }
    return (PyObject *)self;
}

static int
Packer_traverse(PackerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    return 0;
}

static int
Packer_clear(PackerObject *self)
{
    Py_CLEAR(self->fallback);
    return 0;
}

static void
Packer_dealloc(PackerObject *self)
{
    PyObject_GC_UnTrack(self);
    Packer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject PackerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "styx.protocol._accel.Packer",
    .tp_basicsize = sizeof(PackerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(PackerObject, vectorcall),
    .tp_doc = "Packer(fallback)(value) -> bytes: the plain values packed here, the rest by fallback.",
    .tp_new = Packer_new,
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)Packer_traverse,
    .tp_clear = (inquiry)Packer_clear,
    .tp_dealloc = (destructor)Packer_dealloc,
};

/* ------------------------------------------------------------------------
 * prepare(records, start, conn, tx_conn, p_ibuf, wpos, routes, out) -> int
 *
 * Net's `_enqueue` for the plain records, from `start` on: a request with
 * no stream, a route, and a body its kind decodes here (PREP_KINDS: the
 * body as it is, fast_dml's shapes, a CALL's or an EVAL's name and
 * arguments and nothing else). Each becomes an IprotoMsg, appended to
 * `out`, exactly as the general loop of `_enqueue` (its twin) makes it.
 * Returns the index of the first record it leaves (a header error, a
 * stream, a bad or unusual body, an unknown type...), or len(records):
 * the caller handles that one, then calls again. The message is made
 * without its __init__: its slots are written where the class keeps them.
 */
enum { K_AS_IS = 0, K_DML = 1, K_CALL = 2, K_EVAL = 3 };
enum { M_ROUTE, M_HOP, M_CONN, M_TX_CONN, M_P_IBUF, M_LEN, M_WPOS, M_TYPE, M_SYNC, M_SCHEMA_VERSION,
       M_STREAM_ID, M_REQ, M_DIAG, M_TXN_OPEN, M_BOUNCE, M_COUNT };
static const char *MSG_SLOTS[M_COUNT] = {
    "route", "hop", "conn", "tx_conn", "p_ibuf", "len", "wpos", "type", "sync", "schema_version",
    "stream_id", "req", "diag", "txn_open", "bounce",
};
static PyTypeObject *MSG_CLASS, *CALL_REQUEST;
static Py_ssize_t MSG_OFFSET[M_COUNT];
static PyObject *PREP_KINDS;

PyDoc_STRVAR(configure_prepare_doc,
"configure_prepare(IprotoMsg, CallRequest, kinds): the classes prepare makes, and\n"
"request type -> how its body is decoded (0 as it is, 1 DML, 2 CALL, 3 EVAL).");

static PyObject *
configure_prepare(PyObject *self, PyObject *args)
{
    PyObject *cls, *call, *kinds;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyType_Type, &cls, &PyType_Type, &call, &PyDict_Type, &kinds))
        return NULL;
    if (slot_offsets(cls, MSG_SLOTS, M_COUNT, MSG_OFFSET) < 0)
        return NULL;
    Py_XSETREF(MSG_CLASS, (PyTypeObject *)Py_NewRef(cls));
    Py_XSETREF(CALL_REQUEST, (PyTypeObject *)Py_NewRef(call));
    Py_XSETREF(PREP_KINDS, Py_NewRef(kinds));
    Py_RETURN_NONE;
}

static inline void
set_slot(PyObject *obj, int slot, PyObject *value) /* steals `value` */
{
    Py_XSETREF(SLOT(obj, MSG_OFFSET[slot]), value);
}

/* The body a plain kind decodes: a new reference; NULL with no error set
 * if this record is not for here; NULL with an error on failure. */
static PyObject *
prepare_body(long kind, long t, PyObject *body)
{
    if (kind == K_AS_IS)
        return Py_NewRef(body);
    if (!PyDict_CheckExact(body))
        return NULL;
    if (kind == K_DML) {
        if (PyDict_GET_SIZE(body) > 6)
            return NULL;
        PyObject *req = fast_dml_impl((int)t, body);
        if (req == Py_None) {
            Py_DECREF(req);
            return NULL;
        }
        return req;
    }
    if (PyDict_GET_SIZE(body) != 2)
        return NULL;
    PyObject *name = PyDict_GetItemWithError(body, kind == K_CALL ? K_FUNCTION_NAME_OBJ : K_EXPR_OBJ);
    PyObject *fargs = name == NULL ? NULL : PyDict_GetItemWithError(body, K_TUPLE_OBJ);
    if (fargs == NULL || !PyUnicode_CheckExact(name) || !PyList_CheckExact(fargs))
        return NULL; /* (a lookup cannot fail on int keys) */
    PyObject *req = CALL_REQUEST->tp_alloc(CALL_REQUEST, 2);
    if (req == NULL)
        return NULL;
    PyTuple_SET_ITEM(req, 0, Py_NewRef(name));
    PyTuple_SET_ITEM(req, 1, Py_NewRef(fargs));
    return req;
}

PyDoc_STRVAR(prepare_doc,
"prepare(records, start, conn, tx_conn, p_ibuf, wpos, routes, out) -> int\n"
"Make the IprotoMsg of each plain record from start on, into out; the index of the first left.");

static PyObject *
prepare(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 8 || !PyList_CheckExact(args[0]) || !PyDict_CheckExact(args[6]) || !PyList_CheckExact(args[7])) {
        PyErr_SetString(PyExc_TypeError, "prepare(records, start, conn, tx_conn, p_ibuf, wpos, routes, out)");
        return NULL;
    }
    if (MSG_CLASS == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "prepare: configure_prepare was not called");
        return NULL;
    }
    PyObject *records = args[0], *conn = args[2], *tx_conn = args[3], *p_ibuf = args[4], *wpos = args[5];
    PyObject *routes = args[6], *out = args[7];
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(records);
    for (; i < n; i++) {
        PyObject *r = PyList_GET_ITEM(records, i);
        if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 7)
            break;
        PyObject *t = PyTuple_GET_ITEM(r, 2), *stream_id = PyTuple_GET_ITEM(r, 5), *body = PyTuple_GET_ITEM(r, 6);
        if (!PyLong_CheckExact(t) || stream_id != ZERO) /* (scan's zero is the cached one) */
            break;
        if (body == BAD_BODY)
            break;
        PyObject *route = PyDict_GetItemWithError(routes, t);
        PyObject *kind = route == NULL ? NULL : PyDict_GetItemWithError(PREP_KINDS, t);
        if (kind == NULL) {
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        long tv = PyLong_AsLong(t);
        Py_ssize_t pos = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 0)), pend = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 1));
        if (PyErr_Occurred())
            return NULL;
        PyObject *req = prepare_body(PyLong_AsLong(kind), tv, body);
        if (req == NULL) {
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        PyObject *len = PyLong_FromSsize_t(pend - pos);
        PyObject *msg = len == NULL ? NULL : MSG_CLASS->tp_alloc(MSG_CLASS, 0);
        if (msg == NULL) {
            Py_XDECREF(len);
            Py_DECREF(req);
            return NULL;
        }
        set_slot(msg, M_ROUTE, Py_NewRef(route));
        set_slot(msg, M_HOP, Py_NewRef(ZERO));
        set_slot(msg, M_CONN, Py_NewRef(conn));
        set_slot(msg, M_TX_CONN, Py_NewRef(tx_conn));
        set_slot(msg, M_P_IBUF, Py_NewRef(p_ibuf));
        set_slot(msg, M_LEN, len);
        set_slot(msg, M_WPOS, Py_NewRef(wpos));
        set_slot(msg, M_TYPE, Py_NewRef(t));
        set_slot(msg, M_SYNC, Py_NewRef(PyTuple_GET_ITEM(r, 3)));
        set_slot(msg, M_SCHEMA_VERSION, Py_NewRef(PyTuple_GET_ITEM(r, 4)));
        set_slot(msg, M_STREAM_ID, Py_NewRef(ZERO));
        set_slot(msg, M_REQ, req);
        set_slot(msg, M_DIAG, Py_NewRef(Py_None));
        set_slot(msg, M_TXN_OPEN, Py_NewRef(Py_False));
        set_slot(msg, M_BOUNCE, Py_NewRef(ZERO));
        int rc = PyList_Append(out, msg);
        Py_DECREF(msg);
        if (rc < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(i);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {"fast_dml", fast_dml, METH_VARARGS, fast_dml_doc},
    {"configure_dml", configure_dml, METH_VARARGS, configure_dml_doc},
    {"encode_wal_batch", encode_wal_batch, METH_VARARGS, encode_wal_batch_doc},
    {"configure_prepare", configure_prepare, METH_VARARGS, configure_prepare_doc},
    {"prepare", (PyCFunction)(void (*)(void))prepare, METH_FASTCALL, prepare_doc},
    {"data_packet", (PyCFunction)(void (*)(void))data_packet, METH_FASTCALL, data_packet_doc},
    {"ok_packet", (PyCFunction)(void (*)(void))ok_packet, METH_FASTCALL, ok_packet_doc},
    {"configure_reply", configure_reply, METH_VARARGS, configure_reply_doc},
    {"put_data", (PyCFunction)(void (*)(void))put_data, METH_FASTCALL, put_data_doc},
    {"accept_wpos", (PyCFunction)(void (*)(void))accept_wpos, METH_FASTCALL, accept_wpos_doc},
    {"configure_accept", configure_accept, METH_O, configure_accept_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_accel", "Styx's compiled accelerator (see styx/protocol/accel.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__accel(void)
{
    if (init_names() < 0 || PyType_Ready(&PackerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Packer", (PyObject *)&PackerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
