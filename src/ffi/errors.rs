//! The interpreter's pending exception as a `PyErr`, checks on an error's class, exceptions built
//! with a value, and [`Text`]: Python text shown in error messages.

use std::os::raw::c_int;

use pyo3::ffi;
use pyo3::prelude::*;

use super::object::{gil, Obj};

/// The current exception as a `PyErr` (a SystemError if none is set, which would be a bug).
#[inline]
pub fn fetch_error() -> PyErr {
    PyErr::fetch(gil())
}

/// Whether an exception is pending (after a C-API call whose result alone does not tell).
#[inline]
pub(in crate::ffi) fn occurred() -> bool {
    // SAFETY: reads the thread state's pending exception; the GIL is held (object.rs notes).
    unsafe { !ffi::PyErr_Occurred().is_null() }
}

/// The result of a C-API call that returns a negative number with an exception set on failure.
#[inline]
pub(in crate::ffi) fn check(rc: c_int) -> PyResult<()> {
    if rc < 0 {
        Err(fetch_error())
    } else {
        Ok(())
    }
}

/// Whether the pending error (carried by `err`) is a `UnicodeEncodeError`.
pub fn is_unicode_encode_error(err: &PyErr) -> bool {
    err.is_instance::<pyo3::exceptions::PyUnicodeEncodeError>(gil())
}

/// Whether `err` is a `KeyError`.
pub fn is_key_error(err: &PyErr) -> bool {
    err.is_instance::<pyo3::exceptions::PyKeyError>(gil())
}

/// Builds an exception instance of class `ty` with one argument (e.g. `KeyError(key)`).
pub fn error_with_value(ty: &PyAny, value: &Obj) -> PyErr {
    match Obj::of(ty).call1(value) {
        Ok(instance) => PyErr::from_instance(instance.as_any(gil())),
        Err(e) => e,
    }
}

/// Text from Python for an error message: shown through `Display` straight from the Python
/// object, never copied into a Rust `String` (whose allocation could not fail gracefully).
/// Non-UTF-8 text (lone surrogates) shows as U+FFFD, like PyO3's `to_string_lossy`.
pub struct Text(TextRepr);

enum TextRepr {
    /// A str whose UTF-8 form exists.
    Utf8(Obj),
    /// A str's `surrogatepass` encoding, shown lossily.
    Lossy(Obj),
    Fixed(&'static str),
}

impl Text {
    pub fn fixed(text: &'static str) -> Text {
        Text(TextRepr::Fixed(text))
    }

    /// The text of a str object.
    pub fn of_str(s: Obj) -> Text {
        if s.str_utf8().is_ok() {
            return Text(TextRepr::Utf8(s));
        }
        match s.str_encode_surrogatepass() {
            Ok(b) => Text(TextRepr::Lossy(b)),
            _ => Text::fixed("<unrepresentable object>"),
        }
    }

    /// `str(obj)`.
    pub fn of_any(obj: Obj) -> Text {
        if obj.is_str() {
            return Text::of_str(obj);
        }
        match obj.str() {
            Ok(s) => Text::of_str(s),
            Err(_) => Text::fixed("<unprintable object>"),
        }
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            TextRepr::Utf8(s) => match s.str_utf8().map(std::str::from_utf8) {
                Ok(Ok(text)) => f.write_str(text),
                _ => Ok(()),
            },
            TextRepr::Lossy(b) => {
                for chunk in b.bytes_data().utf8_chunks() {
                    f.write_str(chunk.valid())?;
                    if !chunk.invalid().is_empty() {
                        f.write_str("\u{FFFD}")?;
                    }
                }
                Ok(())
            }
            TextRepr::Fixed(text) => f.write_str(text),
        }
    }
}
