/* cbus's delivery loop, compiled: styx/cbus.py's `py_deliver` is its twin.
 *
 * Why: every request crosses it twice (TX's hop, then net's), and under
 * pipelined load it is the hottest loop in Styx. In Python each message
 * costs a route look-up, a call, the staging on the next pipe and their
 * attribute reads, about 0.2 us a pass; here the same steps are C calls
 * and slot reads.
 *
 * What it does, message by message, exactly as the twin: run the current
 * hop `f(msg)`; an awaitable goes to `spawn(waiter, msg)` (a TypeError if
 * the endpoint has none), PARK leaves the message where it is, anything
 * else stages it on the hop's pipe (`Pipe.push`: the first staged message
 * defers the pipe's flush to the feed, `max_input` of them flush at once).
 * An Exception in any of it goes to `failed(msg, exc)` and the loop goes
 * on; a BaseException that is not an Exception stops it, as in Python.
 *
 * It reads the slots of Cmsg (route, hop) and Pipe (_input, feed,
 * max_input) where the classes keep them (configure; styx/_slots.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include "_slots.h"

static PyObject *PARK, *S_DEFER, *S_FLUSH, *S_ROUTE, *S_HOP, *ONE;
static PyTypeObject *PIPE_CLASS, *CMSG_CLASS;
enum { C_ROUTE, C_HOP, C_COUNT };
enum { P_INPUT, P_FEED, P_MAX_INPUT, P_COUNT };
static const char *CMSG_SLOTS[C_COUNT] = {"route", "hop"};
static const char *PIPE_SLOTS[P_COUNT] = {"_input", "feed", "max_input"};
static Py_ssize_t CMSG_OFFSET[C_COUNT], PIPE_OFFSET[P_COUNT];

PyDoc_STRVAR(configure_doc, "configure(Cmsg, Pipe, PARK): the classes deliver reads, and PARK.");

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *cmsg, *pipe, *park;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyType_Type, &cmsg, &PyType_Type, &pipe, &park))
        return NULL;
    if (slot_offsets(cmsg, CMSG_SLOTS, C_COUNT, CMSG_OFFSET) < 0
        || slot_offsets(pipe, PIPE_SLOTS, P_COUNT, PIPE_OFFSET) < 0)
        return NULL;
    Py_XSETREF(PIPE_CLASS, (PyTypeObject *)Py_NewRef(pipe));
    Py_XSETREF(CMSG_CLASS, (PyTypeObject *)Py_NewRef(cmsg));
    Py_XSETREF(PARK, Py_NewRef(park));
    Py_RETURN_NONE;
}

/* Pipe.push(msg), for a Pipe: 0, or -1 with an error set. */
static int
push(PyObject *pipe, PyObject *msg)
{
    PyObject *staged = SLOT(pipe, PIPE_OFFSET[P_INPUT]);
    PyObject *max_input = SLOT(pipe, PIPE_OFFSET[P_MAX_INPUT]);
    if (staged == NULL || max_input == NULL || !PyList_CheckExact(staged)) {
        PyErr_SetString(PyExc_TypeError, "deliver: a pipe without its input list");
        return -1;
    }
    if (PyList_Append(staged, msg) < 0)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(staged);
    PyObject *r;
    if (n == 1) {
        PyObject *feed = SLOT(pipe, PIPE_OFFSET[P_FEED]);
        PyObject *flush = PyObject_GetAttr(pipe, S_FLUSH);
        if (flush == NULL)
            return -1;
        r = feed == NULL ? NULL : PyObject_CallMethodOneArg(feed, S_DEFER, flush);
        Py_DECREF(flush);
        if (feed == NULL)
            PyErr_SetString(PyExc_AttributeError, "feed");
    } else {
        PyObject *nn = PyLong_FromSsize_t(n);
        if (nn == NULL)
            return -1;
        int full = PyObject_RichCompareBool(nn, max_input, Py_GE);
        Py_DECREF(nn);
        if (full <= 0)
            return full;
        r = PyObject_CallMethodNoArgs(pipe, S_FLUSH);
    }
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* msg.hop += 1 (the hop as it is now: the hop just run may have moved it). */
static int
advance(PyObject *msg, int is_cmsg)
{
    PyObject *hop = is_cmsg ? Py_XNewRef(SLOT(msg, CMSG_OFFSET[C_HOP])) : PyObject_GetAttr(msg, S_HOP);
    if (hop == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "hop");
        return -1;
    }
    PyObject *next = PyNumber_Add(hop, ONE);
    Py_DECREF(hop);
    if (next == NULL)
        return -1;
    if (is_cmsg) {
        Py_XSETREF(SLOT(msg, CMSG_OFFSET[C_HOP]), next);
        return 0;
    }
    int rc = PyObject_SetAttr(msg, S_HOP, next);
    Py_DECREF(next);
    return rc;
}

/* One message's hop and staging: 0, or -1 with an error set. A Cmsg's
 * route and hop are read from their slots; anything else's by name. */
static int
deliver_one(PyObject *msg, PyObject *spawn)
{
    int is_cmsg = PyObject_TypeCheck(msg, CMSG_CLASS);
    PyObject *route, *hop;
    if (is_cmsg) {
        route = Py_XNewRef(SLOT(msg, CMSG_OFFSET[C_ROUTE]));
        hop = Py_XNewRef(SLOT(msg, CMSG_OFFSET[C_HOP]));
        if (route == NULL || hop == NULL)
            PyErr_SetString(PyExc_AttributeError, "route");
    } else {
        route = PyObject_GetAttr(msg, S_ROUTE);
        hop = route == NULL ? NULL : PyObject_GetAttr(msg, S_HOP);
    }
    if (route == NULL || hop == NULL) {
        Py_XDECREF(route);
        Py_XDECREF(hop);
        return -1;
    }
    PyObject *step = PyObject_GetItem(route, hop);
    Py_DECREF(route);
    if (step == NULL) {
        Py_DECREF(hop);
        return -1;
    }
    if (!PyTuple_Check(step) || PyTuple_GET_SIZE(step) != 2) {
        Py_DECREF(step);
        Py_DECREF(hop);
        PyErr_SetString(PyExc_ValueError, "a hop is (f, pipe)");
        return -1;
    }
    PyObject *f = Py_NewRef(PyTuple_GET_ITEM(step, 0)), *pipe = Py_NewRef(PyTuple_GET_ITEM(step, 1));
    Py_DECREF(step);
    int rc = 0;
    PyObject *waiter = PyObject_CallOneArg(f, msg);
    if (waiter == NULL) {
        rc = -1;
    } else if (waiter != Py_None) {
        if (waiter != PARK) {
            if (spawn == Py_None) {
                PyErr_Format(PyExc_TypeError, "%R returned an awaitable on an endpoint without fibers", f);
                rc = -1;
            } else {
                PyObject *r = PyObject_CallFunctionObjArgs(spawn, waiter, msg, NULL);
                rc = r == NULL ? -1 : 0;
                Py_XDECREF(r);
            }
        }
    } else if (pipe != Py_None) {
        rc = advance(msg, is_cmsg);
        if (rc == 0 && Py_IS_TYPE(pipe, PIPE_CLASS)) {
            rc = push(pipe, msg);
        } else if (rc == 0) {
            PyObject *r = PyObject_CallMethod(pipe, "push", "O", msg);
            rc = r == NULL ? -1 : 0;
            Py_XDECREF(r);
        }
    }
    Py_XDECREF(waiter);
    Py_DECREF(f);
    Py_DECREF(pipe);
    Py_DECREF(hop);
    return rc;
}

PyDoc_STRVAR(deliver_doc,
"deliver(batch, spawn, failed): run each message's current hop and stage it on the next\n"
"pipe (cbus.py's py_deliver, compiled).");

static PyObject *
deliver(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "deliver(batch: list, spawn, failed)");
        return NULL;
    }
    if (PIPE_CLASS == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "deliver: configure first");
        return NULL;
    }
    PyObject *batch = args[0], *spawn = args[1], *failed = args[2];
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *msg = Py_NewRef(PyList_GET_ITEM(batch, i));
        if (deliver_one(msg, spawn) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                Py_DECREF(msg);
                return NULL; /* not an Exception: it stops the loop, as in Python */
            }
            PyObject *type, *exc, *tb;
            PyErr_Fetch(&type, &exc, &tb);
            PyErr_NormalizeException(&type, &exc, &tb);
            if (tb != NULL)
                PyException_SetTraceback(exc, tb);
            Py_XDECREF(type);
            Py_XDECREF(tb);
            PyObject *r = PyObject_CallFunctionObjArgs(failed, msg, exc, NULL);
            Py_XDECREF(exc);
            if (r == NULL) {
                Py_DECREF(msg);
                return NULL;
            }
            Py_DECREF(r);
        }
        Py_DECREF(msg);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, configure_doc},
    {"deliver", (PyCFunction)(void (*)(void))deliver, METH_FASTCALL, deliver_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cbus", "cbus's delivery loop, compiled (styx/cbus.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cbus(void)
{
    if ((S_DEFER = PyUnicode_InternFromString("defer")) == NULL
        || (S_FLUSH = PyUnicode_InternFromString("flush")) == NULL
        || (S_ROUTE = PyUnicode_InternFromString("route")) == NULL
        || (S_HOP = PyUnicode_InternFromString("hop")) == NULL
        || (ONE = PyLong_FromLong(1)) == NULL)
        return NULL;
    return PyModule_Create(&module);
}
