/* Slots read and written where their classes keep them: the compiled
 * accelerators (styx/_cbus.c, styx/protocol/_accel.c) reach the objects
 * of the request path (messages, pipes, obufs) without an attribute
 * look-up. The offsets come from each class's member descriptors, taken
 * once at configure time; a name that is not an object slot is refused
 * there. */
#ifndef STYX_SLOTS_H
#define STYX_SLOTS_H

#include <Python.h>
#include <structmember.h>

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* The offsets of `names`' slots in `cls`, into `out`: 0, or -1 with an
 * error set. */
static int
slot_offsets(PyObject *cls, const char **names, int n, Py_ssize_t *out)
{
    for (int i = 0; i < n; i++) {
        PyObject *d = PyObject_GetAttrString(cls, names[i]);
        if (d == NULL)
            return -1;
        if (!Py_IS_TYPE(d, &PyMemberDescr_Type) || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            Py_DECREF(d);
            PyErr_Format(PyExc_TypeError, "%s is not a slot", names[i]);
            return -1;
        }
        out[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
    }
    return 0;
}

#endif
