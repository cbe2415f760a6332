//! Safe access to the buffer protocol (`PyObject_GetBuffer`), which the limited API lacks before 3.11,
//! and memoryviews over Rust memory.

use std::os::raw::c_char;

use pyo3::ffi;

use pyo3::prelude::*;

use super::errors::fetch_error;
use super::object::Obj;
use super::raw::{self, PyBuffer};

/// An acquired buffer view; released on drop. Holds a reference to the exporter.
pub struct BufferView {
    view: Box<PyBuffer>,
    /// `buf`/`len` copied out of the view (a dangling non-null pointer when empty), so that reading
    /// the bytes is one slice construction, not a pointer chase and two checks.
    data: *const u8,
    len: usize,
}

impl BufferView {
    fn acquire(obj: &Obj, flags: std::os::raw::c_int) -> PyResult<BufferView> {
        let mut view = Box::new(PyBuffer {
            buf: std::ptr::null_mut(),
            obj: std::ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            strides: std::ptr::null_mut(),
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        });
        // SAFETY: a live object (object.rs notes) and a zeroed view the call fills; on success
        // the view is released once, by `drop`.
        if unsafe { raw::PyObject_GetBuffer(obj.as_ptr(), &mut *view, flags) } < 0 {
            return Err(fetch_error());
        }
        let (data, len) = if view.buf.is_null() || view.len <= 0 {
            (std::ptr::NonNull::<u8>::dangling().as_ptr() as *const u8, 0)
        } else {
            (view.buf as *const u8, view.len as usize)
        };
        Ok(BufferView { view, data, len })
    }

    /// A C-contiguous read-only byte view of any bytes-like object.
    pub fn contiguous(obj: &Obj) -> PyResult<BufferView> {
        Self::acquire(obj, raw::PYBUF_SIMPLE)
    }

    /// A full read-only view (any layout), for inspecting shape and contiguity.
    pub fn full(obj: &Obj) -> PyResult<BufferView> {
        Self::acquire(obj, raw::PYBUF_FULL_RO)
    }

    pub fn readonly(&self) -> bool {
        self.view.readonly != 0
    }

    /// Whether the memory is contiguous in C ('C'), Fortran ('F') or either ('A') order.
    pub fn is_contiguous(&self, order: u8) -> bool {
        // SAFETY: a view acquired by `acquire` and not yet released.
        unsafe { raw::PyBuffer_IsContiguous(&*self.view, order as std::os::raw::c_char) != 0 }
    }

    /// The bytes (only meaningful for contiguous views).
    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the exporter keeps `len` bytes at `data` alive until the view is released on drop.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl BufferView {
    /// The exporting object when it is an exact `bytes` object, whose memory never changes.
    pub fn immutable_exporter(&self) -> Option<Obj> {
        let exporter = self.view.obj;
        if exporter.is_null() {
            return None;
        }
        let exporter = Obj::from_borrowed(exporter);
        if exporter.is_exact_type(super::types::bytes()) {
            Some(exporter)
        } else {
            None
        }
    }
}

impl Drop for BufferView {
    fn drop(&mut self) {
        // SAFETY: the view was acquired by `acquire` and is released only here, once.
        unsafe { raw::PyBuffer_Release(&mut *self.view) }
    }
}

/// The content of a bytes-like object, held for reading: an exact `bytes` object directly (its
/// content never moves or changes), anything else through a contiguous buffer view. The address and
/// length are read once, so reading is one slice construction.
pub struct Contiguous {
    /// Keeps the content alive.
    _owner: Owner,
    data: *const u8,
    len: usize,
}

/// Held only to keep the content alive, never read.
#[allow(dead_code)]
enum Owner {
    Bytes(Obj),
    View(BufferView),
}

impl Contiguous {
    pub fn of(obj: &Obj) -> PyResult<Contiguous> {
        if obj.is_exact_type(super::types::bytes()) {
            let data = obj.bytes_data();
            return Ok(Contiguous {
                data: data.as_ptr(),
                len: data.len(),
                _owner: Owner::Bytes(obj.clone()),
            });
        }
        let view = BufferView::contiguous(obj)?;
        Ok(Contiguous {
            data: view.data,
            len: view.len,
            _owner: Owner::View(view),
        })
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the owner (the bytes object, or the view until it is released on drop) keeps
        // `len` bytes at `data` alive and unmoved.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// A writable memoryview over `data`; the caller keeps the memory alive while the view is used
/// and releases the view before the memory goes away (see `NewBuffer::readinto_from`).
pub(super) fn memoryview_of_mut(data: &mut [u8]) -> PyResult<Obj> {
    // SAFETY: `data` is writable for its length now; the caller's contract (above) keeps it so for
    // as long as the view is used. 0x200 is `PyBUF_WRITE`.
    Obj::from_owned(unsafe {
        ffi::PyMemoryView_FromMemory(
            data.as_mut_ptr() as *mut c_char,
            data.len() as ffi::Py_ssize_t,
            0x200,
        )
    })
}
