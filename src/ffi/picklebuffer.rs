//! `pickle5_rs.PickleBuffer` for CPython 3.6/3.7, which have no `pickle.PickleBuffer`.
//!
//! The type must export the buffer protocol, which neither PyO3 0.15 under abi3 nor
//! `PyType_FromSpec` before 3.9 can express. So the type is created from a spec with everything
//! else (new, dealloc, GC, methods), and then its buffer slots and weak-reference offset are written
//! into the heap type object using the 3.6/3.7 `PyTypeObject` layout. That ABI is frozen, so the
//! layout can never change under us; callers gate on `version::is_frozen_layout()` and the layout is
//! sanity-checked before anything is written. `raw()` and `readonly_memoryview()` adjust a fresh
//! memoryview's private view the same way, using the (equally frozen) 3.6/3.7 memoryview layout.
//!
//! Semantics follow CPython 3.8's `pickle.PickleBuffer`: it holds one `PyBUF_FULL_RO` view of the
//! wrapped object; exporting a buffer forwards the request (with the consumer's flags) to the wrapped
//! object, so consumers hold their own view on the original exporter and `memoryview(pb).obj` is that
//! exporter; `release()` drops the held view.

use std::os::raw::{c_char, c_int, c_long, c_ulong, c_void};
use std::ptr;

use pyo3::ffi::{self, PyObject, PyTypeObject, Py_ssize_t};
use pyo3::prelude::*;

use super::layout37::{MemoryViewObject37, TypeObjectHead37};
use super::raw::{self, PyBuffer};
use super::{version, Obj};

const TYPE_NAME: &[u8] = b"pickle5_rs.PickleBuffer\0";
const TYPE_DOC: &[u8] = b"PickleBuffer(obj, /)\n--\n\nWraps a bytes-like object so that a pickler \
can pass its memory out-of-band (protocol 5) instead of copying it into the pickle.\0";
const RAW_DOC: &[u8] = b"raw($self, /)\n--\n\nA 1-dimensional memoryview of unsigned bytes over \
the memory under this buffer.\nRaises BufferError if that memory is not contiguous.\0";
const RELEASE_DOC: &[u8] = b"release($self, /)\n--\n\nReleases the wrapped buffer; later use of \
this object raises ValueError.\0";
const REDUCE_DOC: &[u8] = b"PickleBuffer objects cannot be pickled by reduction.\0";

const RELEASED_MSG: &[u8] = b"operation forbidden on released PickleBuffer object\0";
const NON_CONTIGUOUS_MSG: &[u8] = b"cannot extract raw buffer from non-contiguous buffer\0";
// The messages `copyreg` (protocols 0, 1) and `object.__reduce_ex__` (2+) give for 3.8's type.
const CANNOT_PICKLE_OLD_PROTOCOL: &[u8] = b"cannot pickle 'PickleBuffer' object\0";
const CANNOT_PICKLE: &[u8] = b"cannot pickle 'pickle5_rs.PickleBuffer' object\0";

/// The instance layout (3.8's `PyPickleBufferObject` has the same shape).
#[repr(C)]
struct PickleBufferObject {
    ob_base: PyObject,
    /// The wrapped object's `PyBUF_FULL_RO` view; `view.obj` is NULL once released.
    view: PyBuffer,
    weakreflist: *mut PyObject,
}

const MEMORYVIEW_C: c_int = 0x002;
const MEMORYVIEW_FORTRAN: c_int = 0x004;
const PY_TPFLAGS_HEAPTYPE: c_ulong = 1 << 9;

/// Sets `exc` (one of the interpreter's exception classes) with a NUL-terminated message.
fn set_error(exc: *mut PyObject, msg: &'static [u8]) {
    debug_assert_eq!(msg.last(), Some(&0));
    // SAFETY: `exc` is a live exception class (a `PyExc_*` static) and `msg` NUL-terminated
    // static text; the GIL is held.
    unsafe { ffi::PyErr_SetString(exc, msg.as_ptr() as *const c_char) };
}

/// The view held by a PickleBuffer instance.
#[inline]
unsafe fn held_view(obj: *mut PyObject) -> *mut PyBuffer {
    // SAFETY: `obj` is a live instance of our type or a subtype, whose layout begins with
    // `PickleBufferObject` (the type's basicsize); only a field's address is computed.
    unsafe { ptr::addr_of_mut!((*(obj as *mut PickleBufferObject)).view) }
}

unsafe extern "C" fn pb_new(
    subtype: *mut PyTypeObject,
    args: *mut PyObject,
    kwds: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: CPython calls `tp_new` with the GIL held, our type or a subtype as `subtype`, a
    // live argument tuple and a dict or NULL. The zero-filled instance is ours until returned;
    // its view is acquired in place, and reset before the instance is dropped on failure.
    unsafe {
        let mut wrapped: *mut PyObject = ptr::null_mut();
        let no_keywords = kwds.is_null() || ffi::PyDict_Size(kwds) == 0;
        if no_keywords && ffi::PyTuple_Size(args) == 1 {
            // The usual call, PickleBuffer(obj).
            wrapped = ffi::PyTuple_GetItem(args, 0);
        } else {
            // One positional-only argument (an empty keyword name means positional-only); this
            // also gives the errors for other calls.
            let mut keywords: [*mut c_char; 2] = [c"".as_ptr() as *mut c_char, ptr::null_mut()];
            if ffi::PyArg_ParseTupleAndKeywords(
                args,
                kwds,
                c"O:PickleBuffer".as_ptr(),
                keywords.as_mut_ptr(),
                &mut wrapped as *mut *mut PyObject,
            ) == 0
            {
                return ptr::null_mut();
            }
        }
        // Zero-filled and GC-tracked: `view.obj` is NULL until the view is acquired.
        let obj = ffi::PyType_GenericAlloc(subtype, 0);
        if obj.is_null() {
            return ptr::null_mut();
        }
        // Acquired in place: exporters may point `shape`/`strides` into the view itself.
        let view = held_view(obj);
        if raw::PyObject_GetBuffer(wrapped, view, raw::PYBUF_FULL_RO) < 0 {
            (*view).obj = ptr::null_mut();
            ffi::Py_DECREF(obj);
            return ptr::null_mut();
        }
        obj
    }
}

unsafe extern "C" fn pb_dealloc(obj: *mut PyObject) {
    // SAFETY: CPython calls this once, GIL held, on an instance whose count reached zero:
    // it is untracked first, its weak references cleared, its view released (a no-op once
    // released: `view.obj` is then NULL), its memory freed by the GC allocator
    // `PyType_GenericAlloc` used, then the reference it held on its heap type released.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        ffi::PyObject_GC_UnTrack(obj as *mut c_void);
        if !(*(obj as *mut PickleBufferObject)).weakreflist.is_null() {
            ffi::PyObject_ClearWeakRefs(obj);
        }
        raw::PyBuffer_Release(held_view(obj));
        ffi::PyObject_GC_Del(obj as *mut c_void);
        // PyType_GenericAlloc took a reference to the heap type for each instance.
        ffi::Py_DECREF(ty as *mut PyObject);
    }
}

unsafe extern "C" fn pb_traverse(
    obj: *mut PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: called by the collector (GIL held) on a live instance; `view.obj` is NULL or
    // an object the view holds a reference to, and `visit`/`arg` are the collector's own.
    unsafe {
        let exporter = (*held_view(obj)).obj;
        if !exporter.is_null() {
            let rc = visit(exporter, arg);
            if rc != 0 {
                return rc;
            }
        }
        visit(ffi::Py_TYPE(obj) as *mut PyObject, arg)
    }
}

unsafe extern "C" fn pb_clear(obj: *mut PyObject) -> c_int {
    // SAFETY: called by the collector (GIL held) on a live instance; releasing the view is
    // idempotent (`view.obj` is reset to NULL).
    unsafe {
        raw::PyBuffer_Release(held_view(obj));
        0
    }
}

unsafe extern "C" fn pb_getbuffer(obj: *mut PyObject, view: *mut PyBuffer, flags: c_int) -> c_int {
    // SAFETY: CPython calls this (GIL held) with a live instance and the consumer's view to
    // fill; the exporter is kept alive by a reference of our own across its own getbuffer.
    unsafe {
        let exporter = (*held_view(obj)).obj;
        if exporter.is_null() {
            (*view).obj = ptr::null_mut();
            set_error(ffi::PyExc_ValueError, RELEASED_MSG);
            return -1;
        }
        // The consumer gets its own view from the wrapped object, so its release goes there directly.
        // Keep the exporter alive across the call in case its getbuffer releases this PickleBuffer.
        ffi::Py_INCREF(exporter);
        let rc = raw::PyObject_GetBuffer(exporter, view, flags);
        ffi::Py_DECREF(exporter);
        rc
    }
}

/// Never called (views are handed out by the wrapped object); its presence tells argument parsers
/// that buffers from this type need releasing, as with 3.8's type.
unsafe extern "C" fn pb_releasebuffer(_obj: *mut PyObject, _view: *mut PyBuffer) {}

unsafe extern "C" fn pb_raw(obj: *mut PyObject, _unused: *mut PyObject) -> *mut PyObject {
    // SAFETY: a METH_NOARGS method: `obj` is a live instance (GIL held). The memoryview's
    // private view is rewritten only after its layout was checked against the frozen 3.6/3.7
    // `MemoryViewObject37`, and its new `format`/`shape`/`strides` point at static text or at
    // its own fields.
    unsafe {
        let held = held_view(obj);
        if (*held).obj.is_null() {
            set_error(ffi::PyExc_ValueError, RELEASED_MSG);
            return ptr::null_mut();
        }
        // Also false when there are suboffsets.
        if raw::PyBuffer_IsContiguous(held, b'A' as c_char) == 0 {
            set_error(ffi::PyExc_BufferError, NON_CONTIGUOUS_MSG);
            return ptr::null_mut();
        }
        let mv = ffi::PyMemoryView_FromObject(obj);
        if mv.is_null() {
            return ptr::null_mut();
        }
        if !memoryview_layout_ok(mv) {
            ffi::Py_DECREF(mv);
            set_error(ffi::PyExc_SystemError, b"unexpected memoryview layout\0");
            return ptr::null_mut();
        }
        let mvo = mv as *mut MemoryViewObject37;
        let v = ptr::addr_of_mut!((*mvo).view);
        // The exporter answered this request afresh; only contiguous memory may be reinterpreted.
        if raw::PyBuffer_IsContiguous(v, b'A' as c_char) == 0 {
            ffi::Py_DECREF(mv);
            set_error(ffi::PyExc_BufferError, NON_CONTIGUOUS_MSG);
            return ptr::null_mut();
        }
        // Reinterpret the memoryview's private view as one dimension of unsigned bytes covering the
        // whole (contiguous) memory; the exporter's own view, released later, stays untouched.
        (*v).format = c"B".as_ptr() as *mut c_char;
        (*v).ndim = 1;
        (*v).itemsize = 1;
        (*v).shape = ptr::addr_of_mut!((*v).len);
        (*v).strides = ptr::addr_of_mut!((*v).itemsize);
        (*v).suboffsets = ptr::null_mut();
        (*mvo).flags = MEMORYVIEW_C | MEMORYVIEW_FORTRAN;
        mv
    }
}

unsafe extern "C" fn pb_release(obj: *mut PyObject, _unused: *mut PyObject) -> *mut PyObject {
    // SAFETY: a METH_NOARGS method: `obj` is a live instance (GIL held); releasing is
    // idempotent. Returns a new reference to None.
    unsafe {
        raw::PyBuffer_Release(held_view(obj));
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

unsafe extern "C" fn pb_reduce_ex(_obj: *mut PyObject, protocol: *mut PyObject) -> *mut PyObject {
    // SAFETY: a METH_O method (GIL held): `protocol` is a live object.
    unsafe {
        let proto: c_long = ffi::PyLong_AsLong(protocol);
        if proto == -1 && !ffi::PyErr_Occurred().is_null() {
            return ptr::null_mut();
        }
        let msg = if proto < 2 {
            CANNOT_PICKLE_OLD_PROTOCOL
        } else {
            CANNOT_PICKLE
        };
        set_error(ffi::PyExc_TypeError, msg);
        ptr::null_mut()
    }
}

unsafe extern "C" fn pb_reduce(_obj: *mut PyObject, _unused: *mut PyObject) -> *mut PyObject {
    // SAFETY: a METH_NOARGS method (GIL held); it only sets an exception.
    unsafe {
        set_error(ffi::PyExc_TypeError, CANNOT_PICKLE_OLD_PROTOCOL);
        ptr::null_mut()
    }
}

/// Whether `mv` is a memoryview whose private view matches the 3.6/3.7 layout we write to.
unsafe fn memoryview_layout_ok(mv: *mut PyObject) -> bool {
    // SAFETY: `mv` is a live object (the caller's contract); its view is read only when it is
    // an exact memoryview on 3.6/3.7, whose layout `MemoryViewObject37` is (frozen ABI).
    unsafe {
        if !version::is_frozen_layout()
            || ffi::Py_TYPE(mv) != ptr::addr_of_mut!(ffi::PyMemoryView_Type)
        {
            return false;
        }
        let v = &(*(mv as *mut MemoryViewObject37)).view;
        !v.obj.is_null() && v.len >= 0 && v.itemsize > 0 && v.ndim >= 0
    }
}

/// Creates the PickleBuffer type. Only for 3.6/3.7; fails (without touching anything) elsewhere or
/// if the created type does not have the layout we expect.
pub fn create_type() -> PyResult<Obj> {
    if !version::is_frozen_layout() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "pickle5_rs builds its own PickleBuffer type only on CPython 3.6/3.7",
        ));
    }
    let method = |name: &'static [u8], meth: ffi::PyCFunction, flags: c_int, doc: &'static [u8]| {
        ffi::PyMethodDef {
            ml_name: name.as_ptr() as *const c_char,
            ml_meth: Some(meth),
            ml_flags: flags,
            ml_doc: doc.as_ptr() as *const c_char,
        }
    };
    // The type refers to its method table for its whole life; it lives as long as the process.
    let methods: &'static mut [ffi::PyMethodDef; 5] = Box::leak(Box::new([
        method(b"raw\0", pb_raw, ffi::METH_NOARGS, RAW_DOC),
        method(b"release\0", pb_release, ffi::METH_NOARGS, RELEASE_DOC),
        method(b"__reduce_ex__\0", pb_reduce_ex, ffi::METH_O, REDUCE_DOC),
        method(b"__reduce__\0", pb_reduce, ffi::METH_NOARGS, REDUCE_DOC),
        ffi::PyMethodDef {
            ml_name: ptr::null(),
            ml_meth: None,
            ml_flags: 0,
            ml_doc: ptr::null(),
        },
    ]));
    let newfunc: ffi::newfunc = pb_new;
    let destructor: ffi::destructor = pb_dealloc;
    let traverseproc: ffi::traverseproc = pb_traverse;
    let inquiry: ffi::inquiry = pb_clear;
    let mut slots = [
        ffi::PyType_Slot {
            slot: ffi::Py_tp_new,
            pfunc: newfunc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: destructor as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_traverse,
            pfunc: traverseproc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_clear,
            pfunc: inquiry as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_methods,
            pfunc: methods.as_mut_ptr() as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: TYPE_DOC.as_ptr() as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: ptr::null_mut(),
        },
    ];
    let basicsize = std::mem::size_of::<PickleBufferObject>();
    let mut spec = ffi::PyType_Spec {
        // tp_name keeps pointing at this name: it must be static.
        name: TYPE_NAME.as_ptr() as *const c_char,
        basicsize: basicsize as c_int,
        itemsize: 0,
        // Not a base type, like 3.8's.
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as std::os::raw::c_uint,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: a complete spec whose slots and method table are valid (the methods leaked, so they
    // outlive the type; the spec itself is only read during the call).
    let ty = Obj::from_owned(unsafe { ffi::PyType_FromSpec(&mut spec) })?;
    // SAFETY: 3.6/3.7 only (checked above), whose `PyTypeObject` head is `TypeObjectHead37` (frozen
    // ABI); `ty` is the heap type just made and not shared yet. The fields are checked against
    // what the spec asked for before anything is written, and a heap type's `tp_as_buffer`
    // points at its own `PyBufferProcs`.
    unsafe {
        let head = ty.as_ptr() as *mut TypeObjectHead37;
        let layout_ok = std::ptr::eq((*head).tp_name, TYPE_NAME.as_ptr().cast::<c_char>())
            && (*head).tp_basicsize == basicsize as Py_ssize_t
            && (*head).tp_itemsize == 0
            && (*head).tp_flags & PY_TPFLAGS_HEAPTYPE != 0
            && (*head).tp_weaklistoffset == 0
            && !(*head).tp_as_buffer.is_null()
            && (*(*head).tp_as_buffer).bf_getbuffer.is_none();
        if !layout_ok {
            return Err(pyo3::exceptions::PySystemError::new_err(
                "pickle5_rs: unexpected type object layout; PickleBuffer unavailable",
            ));
        }
        // A heap type's tp_as_buffer points at its own PyBufferProcs, filled here.
        let procs = (*head).tp_as_buffer;
        (*procs).bf_getbuffer = Some(pb_getbuffer);
        (*procs).bf_releasebuffer = Some(pb_releasebuffer);
        (*head).tp_weaklistoffset =
            std::mem::offset_of!(PickleBufferObject, weakreflist) as Py_ssize_t;
    }
    Ok(ty)
}

/// A read-only memoryview of `obj`, or `None` if `obj`'s buffer is read-only already (then `obj`
/// itself serves): what the unpickler's READONLY_BUFFER does. No copy is made.
pub fn readonly_memoryview(obj: &Obj) -> PyResult<Option<Obj>> {
    // The common case, an already read-only exporter (bytes), needs no memoryview at all.
    match super::buffer::BufferView::full(obj) {
        Ok(view) if view.readonly() => return Ok(None),
        Ok(_) => {}
        // Not a buffer: `memoryview(obj)` raises the error `_pickle` shows ("memoryview: a
        // bytes-like object is required, ...").
        Err(e) if e.is_instance::<pyo3::exceptions::PyTypeError>(super::gil()) => {}
        Err(e) => return Err(e),
    }
    // SAFETY: a live object (object.rs notes); a new reference or NULL with an exception set.
    let mv = Obj::from_owned(unsafe { ffi::PyMemoryView_FromObject(obj.as_ptr()) })?;
    if version::is_frozen_layout() {
        // SAFETY: `mv` is a fresh memoryview nobody else holds; its layout is checked against
        // the frozen 3.6/3.7 `MemoryViewObject37` before its private view is written.
        unsafe {
            if !memoryview_layout_ok(mv.as_ptr()) {
                return Err(pyo3::exceptions::PySystemError::new_err(
                    "pickle5_rs: unexpected memoryview layout",
                ));
            }
            let v = ptr::addr_of_mut!((*(mv.as_ptr() as *mut MemoryViewObject37)).view);
            if (*v).readonly != 0 {
                return Ok(None);
            }
            (*v).readonly = 1;
        }
        return Ok(Some(mv));
    }
    // memoryview.toreadonly() exists from 3.8 on.
    Ok(Some(mv.call_method(crate::interned!("toreadonly"), &[])?))
}
