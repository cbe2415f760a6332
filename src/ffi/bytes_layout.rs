//! Shortening a new `bytes` object in place: layout access under the rules of `docs/design.md`
//! (version allow-list, a check on a live object at import, `PICKLE5_RS_API_ONLY`).
//!
//! The C pickler's output buffer is a `bytes` object it grows and finally cuts to the pickle's
//! length (`_PyBytes_Resize`, which is private). Without a way to cut a `bytes` object, a large
//! payload that must be copied when it is written (a bytearray, a writable buffer) would be copied
//! twice: into the pickler's buffer, then into the result. With it the pickler writes such a
//! payload once, into a `bytes` object with room to spare that becomes the result.
//!
//! Only `ob_size` (the variable-size object header, the same on every allow-listed version) is
//! written, then the terminating NUL that every `bytes` object keeps after its last byte. The
//! allocation stays as it was; the object's memory allocator needs no size to free it.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi::{self, Py_ssize_t};
use pyo3::prelude::*;

use super::bytes::NewBuffer;
use super::{version, Obj};

static IN_USE: AtomicBool = AtomicBool::new(false);

/// Whether new `bytes` objects may be shortened in place (false: the API path).
#[inline]
pub fn in_use() -> bool {
    IN_USE.load(Ordering::Relaxed)
}

/// Turns the layout on for an allow-listed version where a shortened `bytes` object reads back
/// as expected; called once from module initialisation.
pub fn init(_py: Python) -> PyResult<()> {
    IN_USE.store(version::layout_access() && self_check()?, Ordering::Relaxed);
    Ok(())
}

/// Shortens a 16-byte object to 5 bytes and reads it back through the API.
fn self_check() -> PyResult<bool> {
    let mut buffer = NewBuffer::new(16, false)?;
    buffer.as_mut_slice().copy_from_slice(b"layout-checked!!");
    let obj = buffer.finish();
    // SAFETY: `obj` is a new bytes object no other code has seen; 5 is below its length.
    unsafe { shorten(&obj, 5) };
    // SAFETY: `obj` is a live bytes object.
    let (size, data) = unsafe {
        (
            ffi::PyBytes_Size(obj.as_ptr()),
            ffi::PyBytes_AsString(obj.as_ptr()),
        )
    };
    if size != 5 || data.is_null() {
        return Ok(false);
    }
    // SAFETY: a bytes object of size 5 has 6 readable bytes (its data and the NUL).
    let read = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), 6) };
    Ok(read == b"layou\0" && obj.len()? == 5)
}

/// Cuts `obj` to its first `len` bytes.
///
/// # Safety
/// `obj` is a `bytes` object just created by this crate and not yet seen by other code (nothing
/// has hashed it or taken its length), and `len` is at most its length.
unsafe fn shorten(obj: &Obj, len: usize) {
    let var = obj.as_ptr() as *mut ffi::PyVarObject;
    // SAFETY: every object starts with the variable-size header (the layout checked at import),
    // and the data of a bytes object of at least `len` bytes has room for a NUL after `len`.
    unsafe {
        (*var).ob_size = len as Py_ssize_t;
        *ffi::PyBytes_AsString(obj.as_ptr()).add(len) = 0;
    }
}

impl NewBuffer {
    /// The new `bytes` object cut to its first `len` bytes, when [`in_use`] (otherwise the
    /// buffer back, and the caller copies what it needs).
    pub fn finish_shortened(self, len: usize) -> Result<Obj, NewBuffer> {
        if !in_use() || self.is_bytearray() || len > self.len() {
            return Err(self);
        }
        let obj = self.finish();
        // SAFETY: a bytes object this buffer created and nobody else has seen; `len` fits.
        unsafe { shorten(&obj, len) };
        Ok(obj)
    }
}
