//! C-API functions missing from PyO3's abi3 declarations. Each is exported with this exact signature
//! by every CPython from 3.6 to 3.13 and is part of today's stable ABI (checked with `nm -D`).

use std::os::raw::{c_char, c_int, c_void};

use pyo3::ffi::{PyObject, Py_ssize_t};

/// `Py_buffer`, whose layout has not changed since 3.3 (stable ABI since 3.11).
#[repr(C)]
pub struct PyBuffer {
    pub buf: *mut c_void,
    pub obj: *mut PyObject,
    pub len: Py_ssize_t,
    pub itemsize: Py_ssize_t,
    pub readonly: c_int,
    pub ndim: c_int,
    pub format: *mut c_char,
    pub shape: *mut Py_ssize_t,
    pub strides: *mut Py_ssize_t,
    pub suboffsets: *mut Py_ssize_t,
    pub internal: *mut c_void,
}

pub const PYBUF_SIMPLE: c_int = 0;
pub const PYBUF_FORMAT: c_int = 0x0004;
pub const PYBUF_ND: c_int = 0x0008;
pub const PYBUF_STRIDES: c_int = 0x0010 | PYBUF_ND;
pub const PYBUF_INDIRECT: c_int = 0x0100 | PYBUF_STRIDES;
pub const PYBUF_FULL_RO: c_int = PYBUF_INDIRECT | PYBUF_FORMAT;

extern "C" {
    pub fn PyUnicode_AsUTF8AndSize(unicode: *mut PyObject, size: *mut Py_ssize_t) -> *const c_char;
    pub fn PyObject_GetBuffer(obj: *mut PyObject, view: *mut PyBuffer, flags: c_int) -> c_int;
    pub fn PyBuffer_Release(view: *mut PyBuffer);
    pub fn PyBuffer_IsContiguous(view: *const PyBuffer, fort: c_char) -> c_int;
    pub fn PyObject_GenericGetDict(obj: *mut PyObject, context: *mut c_void) -> *mut PyObject;
}

// The calls into Python code, declared so that an unwind may come out of them: on CPython < 3.14
// a daemon thread that wants the GIL back while the interpreter shuts down is ended by
// `pthread_exit`, whose forced unwind must meet a landing pad (see `super::shutdown`).
#[allow(clashing_extern_declarations)]
extern "C-unwind" {
    #[link_name = "PyObject_Call"]
    pub fn PyObject_Call_may_unwind(
        callable: *mut PyObject,
        args: *mut PyObject,
        kwargs: *mut PyObject,
    ) -> *mut PyObject;
    #[link_name = "PyObject_CallFunctionObjArgs"]
    pub fn PyObject_CallFunctionObjArgs_may_unwind(callable: *mut PyObject, ...) -> *mut PyObject;
}
