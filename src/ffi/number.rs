//! `int`, `bool` and `float`: conversions both ways, text parsing (protocol 0's INT, LONG and FLOAT
//! go through CPython's own parsers, as in the C unpickler), and the LONG1/LONG4 payload of ints
//! beyond 64 bits (in place through [`super::int_layout`] where allowed, else through hex text).

use std::os::raw::{c_char, c_int, c_longlong, c_void};

use pyo3::ffi;
use pyo3::prelude::*;

use super::errors::{fetch_error, occurred};
use super::object::Obj;
use crate::alloc;

impl Obj {
    /// An `int` or a subclass of it (`bool` included).
    #[inline]
    pub fn is_int(&self) -> bool {
        // SAFETY: a live object (object.rs notes); reads its type's flags.
        unsafe { ffi::PyLong_Check(self.as_ptr()) != 0 }
    }

    /// `PyLong_AsLongLongAndOverflow`: the value and the overflow sign (-1, 0, +1). `long long`,
    /// not `long`, which is 32 bits on Windows: every int of 64 bits takes the fast path there too
    /// (the bytes written do not depend on which path an int takes).
    #[inline]
    pub fn int_as_long_overflow(&self) -> PyResult<(i64, i32)> {
        let mut overflow: c_int = 0;
        // SAFETY: a live object (object.rs notes); `overflow` is a local the call writes.
        let v: c_longlong =
            unsafe { ffi::PyLong_AsLongLongAndOverflow(self.as_ptr(), &mut overflow) };
        if v == -1 && overflow == 0 && occurred() {
            return Err(fetch_error());
        }
        Ok((v as i64, overflow as i32))
    }

    /// `PyLong_AsLong`: the conversion `_pickle` applies to the `protocol` argument (which
    /// accepts `__int__` before 3.10, with a DeprecationWarning on 3.8/3.9, and `__index__` from
    /// 3.8 on).
    pub fn as_long(&self) -> PyResult<i64> {
        // SAFETY: a live object (object.rs notes); -1 with an exception set on failure.
        let v = unsafe { ffi::PyLong_AsLong(self.as_ptr()) };
        if v == -1 && occurred() {
            return Err(fetch_error());
        }
        Ok(v as i64)
    }

    /// `PyLong_AsSsize_t`: only an int (or subclass) converts; anything else is
    /// TypeError("an integer is required").
    pub fn long_as_ssize(&self) -> PyResult<isize> {
        // SAFETY: a live object (object.rs notes); -1 with an exception set on failure.
        let v = unsafe { ffi::PyLong_AsSsize_t(self.as_ptr()) };
        if v == -1 && occurred() {
            return Err(fetch_error());
        }
        Ok(v)
    }

    /// Converts to a Rust `isize` via `__index__`.
    pub fn as_ssize(&self) -> PyResult<isize> {
        // SAFETY: a live object (object.rs notes) and a live exception class; -1 with an
        // exception set on failure.
        let v = unsafe { ffi::PyNumber_AsSsize_t(self.as_ptr(), ffi::PyExc_OverflowError) };
        if v == -1 && occurred() {
            return Err(fetch_error());
        }
        Ok(v)
    }

    #[inline]
    pub fn float_value(&self) -> f64 {
        // SAFETY: a live object (object.rs notes); callers pass floats, for which it cannot fail.
        unsafe { ffi::PyFloat_AsDouble(self.as_ptr()) }
    }
}

#[inline]
pub fn bool_obj(v: bool) -> Obj {
    // SAFETY: `Py_True`/`Py_False` only read the address of a singleton that lives for ever.
    Obj::from_borrowed(unsafe {
        if v {
            ffi::Py_True()
        } else {
            ffi::Py_False()
        }
    })
}

#[inline]
pub fn new_int(v: i64) -> PyResult<Obj> {
    // PyLong_FromLong is the faster path where the value fits a C `long` (64 bits on Linux and
    // macOS, 32 on Windows); PyLong_FromLongLong takes the rest.
    match std::os::raw::c_long::try_from(v) {
        // SAFETY: plain conversions; a new reference or NULL with an exception set.
        Ok(l) => Obj::from_owned(unsafe { ffi::PyLong_FromLong(l) }),
        // SAFETY: as above.
        Err(_) => Obj::from_owned(unsafe { ffi::PyLong_FromLongLong(v) }),
    }
}

#[inline]
pub fn new_uint(v: u64) -> PyResult<Obj> {
    // SAFETY: a plain conversion; a new reference or NULL with an exception set.
    Obj::from_owned(unsafe { ffi::PyLong_FromUnsignedLongLong(v) })
}

#[inline]
pub fn new_float(v: f64) -> PyResult<Obj> {
    // SAFETY: a plain conversion; a new reference or NULL with an exception set.
    Obj::from_owned(unsafe { ffi::PyFloat_FromDouble(v) })
}

/// The address of an object as a Python int (`PyLong_FromVoidPtr`).
pub fn int_from_addr(addr: usize) -> PyResult<Obj> {
    // SAFETY: the pointer is only converted to a number, never dereferenced.
    Obj::from_owned(unsafe { ffi::PyLong_FromVoidPtr(addr as *mut c_void) })
}

/// `int(text, base)`; raises ValueError like `int()` for malformed text.
pub fn int_from_text(text: &[u8], base: c_int) -> PyResult<Obj> {
    let owned = alloc::with_nul(text)?;
    int_from_nul_text(&owned, base)
}

/// `PyLong_FromString` on NUL-terminated text.
fn int_from_nul_text(text_nul: &[u8], base: c_int) -> PyResult<Obj> {
    assert_eq!(text_nul.last(), Some(&0), "int_from_nul_text: no NUL");
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: `text_nul` is NUL-terminated (checked) and outlives the call; `end` is a local the
    // call writes.
    Obj::from_owned(unsafe {
        ffi::PyLong_FromString(text_nul.as_ptr() as *const c_char, &mut end, base)
    })
}

/// Parses the longest float prefix of `text` (which must be NUL-terminated) with CPython's own
/// parser; returns the value and the number of bytes consumed. Raises ValueError if no prefix parses.
pub fn parse_float_prefix(text_nul: &[u8]) -> PyResult<(f64, usize)> {
    assert_eq!(text_nul.last(), Some(&0), "parse_float_prefix: no NUL");
    let start = text_nul.as_ptr() as *const c_char;
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: the text is NUL-terminated (checked) and outlives the call; `end` is a local the
    // call points into the text.
    let v = unsafe { ffi::PyOS_string_to_double(start, &mut end, ffi::PyExc_OverflowError) };
    if v == -1.0 && occurred() {
        return Err(fetch_error());
    }
    Ok((v, end as usize - start as usize))
}

/// The LONG1/LONG4 payload of an int beyond 64 bits (see [`crate::bigint`]).
pub fn int_to_pickle_bytes(value: &Obj) -> PyResult<Vec<u8>> {
    if let Some((digits, negative)) = super::int_layout::digits(value) {
        return crate::bigint::pickle_bytes_from_digits(digits, negative)
            .ok_or_else(|| pyo3::exceptions::PyMemoryError::new_err(()));
    }
    int_to_pickle_bytes_by_text(value)
}

/// The same through `hex(value)` text: the API path, and what the layout is checked against.
pub(in crate::ffi) fn int_to_pickle_bytes_by_text(value: &Obj) -> PyResult<Vec<u8>> {
    // SAFETY: `value` is a live int; `PyNumber_ToBase` returns a new reference or NULL.
    let hex = Obj::from_owned(unsafe { ffi::PyNumber_ToBase(value.as_ptr(), 16) })?;
    crate::bigint::pickle_bytes_from_hex(hex.str_utf8()?)
        .ok_or_else(|| pyo3::exceptions::PyMemoryError::new_err(()))
}

/// A Python int from little-endian two's-complement bytes of any length (over 8): LONG1/LONG4.
#[inline(always)]
pub fn int_from_signed_le(data: &[u8]) -> PyResult<Obj> {
    match super::int_layout::int_from_signed_le(data) {
        Some(ptr) => Obj::from_owned(ptr),
        None => int_from_signed_le_by_text(data),
    }
}

#[inline(never)]
fn int_from_signed_le_by_text(data: &[u8]) -> PyResult<Obj> {
    let text = crate::bigint::hex_from_signed_le(data)
        .ok_or_else(|| pyo3::exceptions::PyMemoryError::new_err(()))?;
    int_from_nul_text(&text, 16)
}

#[cfg(test)]
#[path = "number_tests.rs"]
mod tests;
