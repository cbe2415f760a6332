//! Object layouts of CPython 3.6 and 3.7 (release builds), whose ABI is frozen: the only structs
//! this crate reads or writes directly, and only when `version::is_frozen_layout()` holds.

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

/// `PyListObject`.
#[repr(C)]
pub struct ListObject37 {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub ob_size: Py_ssize_t,
    pub ob_item: *mut *mut PyObject,
    pub allocated: Py_ssize_t,
}

/// `PyTupleObject` up to its inline items.
#[repr(C)]
pub struct TupleObject37 {
    pub ob_refcnt: Py_ssize_t,
    pub ob_type: *mut c_void,
    pub ob_size: Py_ssize_t,
    pub ob_item: [*mut PyObject; 0],
}

/// The tuple's item array.
///
/// # Safety
/// `tuple` is a live tuple on 3.6/3.7.
pub unsafe fn tuple_items(tuple: *mut PyObject) -> *mut *mut PyObject {
    std::ptr::addr_of_mut!((*(tuple as *mut TupleObject37)).ob_item) as *mut *mut PyObject
}

/// The list's item array.
///
/// # Safety
/// `list` is a live list on 3.6/3.7.
pub unsafe fn list_items(list: *mut PyObject) -> *mut *mut PyObject {
    (*(list as *mut ListObject37)).ob_item
}

/// Makes room for `extra` more items at the end of `list`, growing it exactly as 3.6/3.7's
/// `list_resize` does (so the result's allocation is the one `list[n:n] = items` gives), and
/// returns where they go. `ob_size` is left unchanged: the caller stores the items, then the size.
/// `None` (with `MemoryError` set) when the allocation fails.
///
/// # Safety
/// `list` is a live list on 3.6/3.7, and nothing else touches it until the caller is done.
pub unsafe fn list_reserve_tail(list: *mut PyObject, extra: usize) -> Option<*mut *mut PyObject> {
    let l = &mut *(list as *mut ListObject37);
    let size = l.ob_size as usize;
    let new_size = size.saturating_add(extra);
    if (l.allocated as usize) < new_size {
        let grown = new_size.saturating_add((new_size >> 3) + if new_size < 9 { 3 } else { 6 });
        if grown > isize::MAX as usize / std::mem::size_of::<*mut PyObject>() {
            pyo3::ffi::PyErr_NoMemory();
            return None;
        }
        let bytes = grown * std::mem::size_of::<*mut PyObject>();
        let items = pyo3::ffi::PyMem_Realloc(l.ob_item as *mut c_void, bytes) as *mut *mut PyObject;
        if items.is_null() {
            pyo3::ffi::PyErr_NoMemory();
            return None;
        }
        l.ob_item = items;
        l.allocated = grown as Py_ssize_t;
    }
    Some(l.ob_item.add(size))
}

/// Sets the list's length after its new items were stored by [`list_reserve_tail`]'s caller.
///
/// # Safety
/// As for [`list_reserve_tail`]; the first `size` items are valid references.
pub unsafe fn list_set_size(list: *mut PyObject, size: usize) {
    (*(list as *mut ListObject37)).ob_size = size as Py_ssize_t;
}
