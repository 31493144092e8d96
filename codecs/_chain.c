/* iotbench.codecs._chain: call a fixed sequence of callables in C, turning the
 * exceptions a library raises on a refused payload into the codec's own error.
 *
 * Why C: a codec plugin wraps a library call to keep the contract ("decode raises
 * only CodecError"). Written in Python, that wrapper is one Python frame, which
 * costs 20-35 ns on this machine -- 15-25% of a 140-220 ns msgspec decode. A Chain
 * is one C call instead: the plugin's overhead becomes a vectorcall.
 *
 *     Chain(steps, last_keywords=None, refused=None, refuse=None)
 *
 * Calling it with one argument x computes steps[-1](...steps[1](steps[0](x))); with
 * last_keywords (field names) the last step gets the previous result, a tuple such as
 * msgspec.structs.astuple returns, as those keyword arguments -- one vectorcall with
 * keyword names, no dict. When a step raises an exception matching
 * `refused` (a type or a tuple of types), `refuse(exception)` builds the exception
 * raised instead, with __cause__ None and __suppress_context__ True ("from None").
 * iotbench/codecs/chain.py holds the pure-Python twin used when this file was not
 * compiled; tests/test_codec_chain.py runs the same checks on both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define MAX_STEPS 8

typedef struct {
    PyObject_HEAD
    PyObject *steps;    /* tuple of callables, at least one */
    PyObject *refused;  /* exception type or tuple of types, or NULL */
    PyObject *refuse;   /* callable(exception) -> exception to raise, or NULL */
    PyObject *last_keywords; /* tuple of str, or NULL */
    vectorcallfunc vectorcall;
    /* For a step that is a builtin function or C method taking one argument: its C
     * function and self (borrowed: `steps` holds the step), called directly the way
     * the eval loop's specialized calls do, skipping the vectorcall wrapper. */
    struct {
        PyCFunction cfunc;
        PyObject *cself;
        int flags; /* METH_O, METH_FASTCALL or METH_FASTCALL | METH_KEYWORDS; 0: use vectorcall */
    } direct[MAX_STEPS];
} ChainObject;

static PyObject *
chain_refuse(ChainObject *self)
{
    /* An exception is set. Replace it when it is one the chain refuses. */
    if (self->refused == NULL || !PyErr_ExceptionMatches(self->refused)) {
        return NULL;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *value = PyErr_GetRaisedException();
    PyObject *replacement = PyObject_CallOneArg(self->refuse, value);
    Py_DECREF(value);
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    PyObject *replacement = PyObject_CallOneArg(self->refuse, value);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
#endif
    if (replacement == NULL) {
        return NULL;
    }
    if (!PyExceptionInstance_Check(replacement)) {
        PyErr_Format(PyExc_TypeError, "refuse() must return an exception instance, not %.100s",
                     Py_TYPE(replacement)->tp_name);
        Py_DECREF(replacement);
        return NULL;
    }
    PyException_SetCause(replacement, NULL); /* also sets __suppress_context__ */
    PyErr_SetObject((PyObject *)Py_TYPE(replacement), replacement);
    Py_DECREF(replacement);
    return NULL;
}

static PyObject *
chain_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ChainObject *self = (ChainObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_Format(PyExc_TypeError, "a Chain takes exactly one positional argument (%zd given)", nargs);
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(self->steps);
    PyObject *value = args[0];
    Py_INCREF(value);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *step = PyTuple_GET_ITEM(self->steps, i);
        PyObject *result;
        if (self->last_keywords != NULL && i == count - 1) {
            if (!PyTuple_Check(value) || PyTuple_GET_SIZE(value) != PyTuple_GET_SIZE(self->last_keywords)) {
                PyErr_Format(PyExc_TypeError, "the step before the last must return a tuple of %zd items, not %.100s",
                             PyTuple_GET_SIZE(self->last_keywords), Py_TYPE(value)->tp_name);
                Py_DECREF(value);
                return chain_refuse(self);  /* as the Python twin does */
            }
            result = PyObject_Vectorcall(step, &PyTuple_GET_ITEM(value, 0), 0, self->last_keywords);
        }
        else {
            switch (self->direct[i].flags) {
            case METH_O:
                result = self->direct[i].cfunc(self->direct[i].cself, value);
                break;
            case METH_FASTCALL:
                result = ((_PyCFunctionFast)(void (*)(void))self->direct[i].cfunc)(self->direct[i].cself, &value, 1);
                break;
            case METH_FASTCALL | METH_KEYWORDS:
                result = ((_PyCFunctionFastWithKeywords)(void (*)(void))self->direct[i].cfunc)(
                    self->direct[i].cself, &value, 1, NULL);
                break;
            default: {
                PyObject *call_args[2] = {NULL, value};
                result = PyObject_Vectorcall(step, call_args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            }
            }
        }
        Py_DECREF(value);
        if (result == NULL) {
            return chain_refuse(self);
        }
        value = result;
    }
    return value;
}

static PyObject *
chain_call_one(PyObject *self, PyObject *arg)
{
    return chain_vectorcall(self, &arg, 1, NULL);
}

static PyMethodDef chain_function_def = {
    "chained", (PyCFunction)chain_call_one, METH_O,
    PyDoc_STR("chained(x): the chain's steps applied to x (__self__ is the Chain)"),
};

/* CPython 3.11 calls a builtin function ~15 ns faster than an object with a vectorcall
 * slot (the eval loop specializes calls to builtins): measured on msgspec's JSON decode. */
static PyObject *
chain_as_function(PyObject *self, PyObject *unused)
{
    return PyCFunction_New(&chain_function_def, self);
}

static PyMethodDef chain_methods[] = {
    {"as_function", chain_as_function, METH_NOARGS,
     PyDoc_STR("as_function(): a builtin function of one argument calling this chain (the fast way to call it)")},
    {NULL},
};

static PyObject *
chain_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"steps", "last_keywords", "refused", "refuse", NULL};
    PyObject *steps, *keywords = Py_None, *refused = Py_None, *refuse = Py_None, *names = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOO:Chain", kwlist, &steps, &keywords, &refused, &refuse)) {
        return NULL;
    }
    PyObject *tuple = PySequence_Tuple(steps);
    if (tuple == NULL) {
        return NULL;
    }
    if (keywords != Py_None) {
        names = PySequence_Tuple(keywords);
        if (names == NULL) {
            goto fail;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
            if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(names, i))) {
                PyErr_SetString(PyExc_TypeError, "last_keywords must be strings");
                goto fail;
            }
            PyUnicode_InternInPlace(&PyTuple_GET_ITEM(names, i));
        }
    }
    if (PyTuple_GET_SIZE(tuple) == 0) {
        PyErr_SetString(PyExc_ValueError, "a Chain needs at least one step");
        goto fail;
    }
    if (PyTuple_GET_SIZE(tuple) > MAX_STEPS) {
        PyErr_Format(PyExc_ValueError, "a Chain takes at most %d steps", MAX_STEPS);
        goto fail;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        if (!PyCallable_Check(PyTuple_GET_ITEM(tuple, i))) {
            PyErr_Format(PyExc_TypeError, "step %zd is not callable", i);
            goto fail;
        }
    }
    if ((refused == Py_None) != (refuse == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "give refused and refuse together, or neither");
        goto fail;
    }
    if (refuse != Py_None && !PyCallable_Check(refuse)) {
        PyErr_SetString(PyExc_TypeError, "refuse must be callable");
        goto fail;
    }
    ChainObject *self = (ChainObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        goto fail;
    }
    self->steps = tuple;
    self->last_keywords = names;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *step = PyTuple_GET_ITEM(tuple, i);
        self->direct[i].flags = 0;
        if (PyCFunction_Check(step)) {
            int flags = PyCFunction_GET_FLAGS(step) & ~METH_COEXIST;
            if (flags == METH_O || flags == METH_FASTCALL || flags == (METH_FASTCALL | METH_KEYWORDS)) {
                self->direct[i].cfunc = PyCFunction_GET_FUNCTION(step);
                self->direct[i].cself = PyCFunction_GET_SELF(step);
                self->direct[i].flags = flags;
            }
        }
    }
    self->refused = refused == Py_None ? NULL : Py_NewRef(refused);
    self->refuse = refuse == Py_None ? NULL : Py_NewRef(refuse);
    self->vectorcall = chain_vectorcall;
    return (PyObject *)self;
fail:
    Py_DECREF(tuple);
    Py_XDECREF(names);
    return NULL;
}

static int
chain_traverse(ChainObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->steps);
    Py_VISIT(self->last_keywords);
    Py_VISIT(self->refused);
    Py_VISIT(self->refuse);
    return 0;
}

static int
chain_clear(ChainObject *self)
{
    Py_CLEAR(self->steps);
    Py_CLEAR(self->last_keywords);
    Py_CLEAR(self->refused);
    Py_CLEAR(self->refuse);
    return 0;
}

static void
chain_dealloc(ChainObject *self)
{
    PyObject_GC_UnTrack(self);
    chain_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
chain_repr(ChainObject *self)
{
    return PyUnicode_FromFormat("Chain(%R, last_keywords=%R, refused=%R)", self->steps,
                                self->last_keywords ? self->last_keywords : Py_None,
                                self->refused ? self->refused : Py_None);
}

static PyMemberDef chain_members[] = {
    {"steps", T_OBJECT, offsetof(ChainObject, steps), READONLY, "the callables, in call order"},
    {"last_keywords", T_OBJECT, offsetof(ChainObject, last_keywords), READONLY, "the last step's keyword names"},
    {NULL},
};

static PyTypeObject ChainType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "iotbench.codecs._chain.Chain",
    .tp_doc = PyDoc_STR("Chain(steps, *, last_keywords=None, refused=None, refuse=None): "
                        "call steps in turn in C; refused exceptions become refuse(exc)."),
    .tp_basicsize = sizeof(ChainObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = chain_new,
    .tp_dealloc = (destructor)chain_dealloc,
    .tp_traverse = (traverseproc)chain_traverse,
    .tp_clear = (inquiry)chain_clear,
    .tp_repr = (reprfunc)chain_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ChainObject, vectorcall),
    .tp_members = chain_members,
    .tp_methods = chain_methods,
};

static struct PyModuleDef chain_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "iotbench.codecs._chain",
    .m_doc = "Chain: a codec's library calls and error conversion in one C call (see chain.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__chain(void)
{
    if (PyType_Ready(&ChainType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&chain_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Chain", (PyObject *)&ChainType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
