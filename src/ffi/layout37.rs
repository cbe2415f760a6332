//! Object layouts of CPython 3.6 and 3.7 (release builds), whose ABI is frozen: the type object head
//! and the memoryview, read or written only when `version::is_frozen_layout()` holds.

use std::os::raw::{c_char, c_int, c_ulong, c_void};

use pyo3::ffi::{PyObject, Py_hash_t, Py_ssize_t};

use super::raw::PyBuffer;

/// `PyBufferProcs`.
#[repr(C)]
pub struct BufferProcs {
    pub bf_getbuffer: Option<GetBufferFn>,
    pub bf_releasebuffer: Option<ReleaseBufferFn>,
}

pub type GetBufferFn = unsafe extern "C" fn(*mut PyObject, *mut PyBuffer, c_int) -> c_int;
pub type ReleaseBufferFn = unsafe extern "C" fn(*mut PyObject, *mut PyBuffer);
pub type NewFunc = unsafe extern "C" fn(
    *mut pyo3::ffi::PyTypeObject,
    *mut PyObject,
    *mut PyObject,
) -> *mut PyObject;

/// `PyTypeObject` up to `tp_new`.
#[repr(C)]
pub struct TypeObjectHead37 {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub ob_size: Py_ssize_t,
    pub tp_name: *const c_char,
    pub tp_basicsize: Py_ssize_t,
    pub tp_itemsize: Py_ssize_t,
    pub tp_dealloc: *mut c_void,
    pub tp_print: *mut c_void,
    pub tp_getattr: *mut c_void,
    pub tp_setattr: *mut c_void,
    pub tp_as_async: *mut c_void,
    pub tp_repr: *mut c_void,
    pub tp_as_number: *mut c_void,
    pub tp_as_sequence: *mut c_void,
    pub tp_as_mapping: *mut c_void,
    pub tp_hash: *mut c_void,
    pub tp_call: *mut c_void,
    pub tp_str: *mut c_void,
    pub tp_getattro: *mut c_void,
    pub tp_setattro: *mut c_void,
    pub tp_as_buffer: *mut BufferProcs,
    pub tp_flags: c_ulong,
    pub tp_doc: *const c_char,
    pub tp_traverse: *mut c_void,
    pub tp_clear: *mut c_void,
    pub tp_richcompare: *mut c_void,
    pub tp_weaklistoffset: Py_ssize_t,
    pub tp_iter: *mut c_void,
    pub tp_iternext: *mut c_void,
    pub tp_methods: *mut c_void,
    pub tp_members: *mut c_void,
    pub tp_getset: *mut c_void,
    pub tp_base: *mut c_void,
    pub tp_dict: *mut PyObject,
    pub tp_descr_get: *mut c_void,
    pub tp_descr_set: *mut c_void,
    pub tp_dictoffset: Py_ssize_t,
    pub tp_init: *mut c_void,
    pub tp_alloc: *mut c_void,
    pub tp_new: Option<NewFunc>,
}

/// `PyMemoryViewObject` up to its private copy of the exporter's view.
#[repr(C)]
pub struct MemoryViewObject37 {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub ob_size: Py_ssize_t,
    pub mbuf: *mut c_void,
    pub hash: Py_hash_t,
    pub flags: c_int,
    pub exports: Py_ssize_t,
    pub view: PyBuffer,
}
