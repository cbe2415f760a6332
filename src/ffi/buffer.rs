//! Safe access to the buffer protocol (`PyObject_GetBuffer`), which the limited API lacks before 3.11.

use pyo3::prelude::*;

use super::raw::{self, PyBuffer};
use super::{fetch_error, Obj};

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

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn readonly(&self) -> bool {
        self.view.readonly != 0
    }

    /// Whether the memory is contiguous in C ('C'), Fortran ('F') or either ('A') order.
    pub fn is_contiguous(&self, order: u8) -> bool {
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
        unsafe { raw::PyBuffer_Release(&mut *self.view) }
    }
}

/// An exact `bytes` object held with its content's address and length read once, so that reading
/// it is one slice construction instead of two calls into the interpreter.
pub struct HeldBytes {
    /// Keeps the content alive.
    _obj: Obj,
    data: *const u8,
    len: usize,
}

impl HeldBytes {
    /// `None` unless `obj` is an exact `bytes` object.
    pub fn of(obj: &Obj) -> Option<HeldBytes> {
        if !obj.is_exact_type(super::types::bytes()) {
            return None;
        }
        let data = obj.bytes_data();
        Some(HeldBytes {
            _obj: obj.clone(),
            data: data.as_ptr(),
            len: data.len(),
        })
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: a bytes object's content never moves or changes, and `obj` keeps it alive.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}
