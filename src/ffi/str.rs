//! `str`: UTF-8 views and encodings, constructors and decoders, interning (the raw call behind
//! `crate::lookup`'s [`interned!`](crate::interned) names).

use std::os::raw::c_char;

use pyo3::ffi;
use pyo3::prelude::*;

use super::bytes::HeldBytes;
use super::errors::fetch_error;
use super::object::Obj;
use super::raw;
use crate::alloc;

impl Obj {
    /// A `str` or a subclass of it.
    #[inline]
    pub fn is_str(&self) -> bool {
        // SAFETY: a live object (object.rs notes); reads its type's flags.
        unsafe { ffi::PyUnicode_Check(self.as_ptr()) != 0 }
    }

    /// The UTF-8 content of a str (no copy; valid while `self` lives).
    pub fn str_utf8(&self) -> PyResult<&[u8]> {
        self.utf8_cache().ok_or_else(fetch_error)
    }

    /// The UTF-8 content of a str without copying, or `None` (and no pending error) when the str
    /// holds lone surrogates and needs [`Obj::str_utf8_payload`].
    #[inline]
    pub fn str_utf8_fast(&self) -> Option<&[u8]> {
        let utf8 = self.utf8_cache();
        if utf8.is_none() {
            // SAFETY: clears the exception the failed conversion set; the GIL is held.
            unsafe { ffi::PyErr_Clear() };
        }
        utf8
    }

    /// `PyUnicode_AsUTF8AndSize`: the str's UTF-8 cache, made on first use and kept by the str
    /// (so it lives as long as `self`); `None` with an exception set when there is none (a
    /// non-str, or lone surrogates).
    #[inline(always)]
    fn utf8_cache(&self) -> Option<&[u8]> {
        let mut n: ffi::Py_ssize_t = 0;
        // SAFETY: a live object (object.rs notes); the call checks that it is a str.
        let p = unsafe { raw::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut n) };
        if p.is_null() {
            return None;
        }
        // SAFETY: `n` bytes at `p`, owned by the str and unchanged while it lives; `&self`
        // keeps it alive for the returned borrow.
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n as usize) })
    }

    /// The UTF-8 encoding of a str; strings with lone surrogates are encoded with "surrogatepass".
    pub fn str_utf8_payload(&self) -> PyResult<HeldBytes> {
        if let Some(data) = self.utf8_cache() {
            return Ok(HeldBytes::of_str_cache(self.clone(), data));
        }
        // Lone surrogates: fall back to "surrogatepass" like the C pickler.
        // SAFETY: clears the exception the failed conversion set; the GIL is held.
        unsafe { ffi::PyErr_Clear() };
        Ok(HeldBytes::of_owned_bytes(self.str_encode_surrogatepass()?))
    }

    /// `str.encode("utf-8", "surrogatepass")` as a bytes object.
    pub fn str_encode_surrogatepass(&self) -> PyResult<Obj> {
        // SAFETY: a live object (object.rs notes) and NUL-terminated codec and handler names; a
        // new reference or NULL with an exception set.
        Obj::from_owned(unsafe {
            ffi::PyUnicode_AsEncodedString(
                self.as_ptr(),
                c"utf-8".as_ptr(),
                c"surrogatepass".as_ptr(),
            )
        })
    }

    /// `str.encode("ascii")` (strict) as a bytes object.
    pub fn str_encode_ascii(&self) -> PyResult<Obj> {
        // SAFETY: a live object (object.rs notes); the call checks its type.
        Obj::from_owned(unsafe { ffi::PyUnicode_AsASCIIString(self.as_ptr()) })
    }

    /// `str.encode("utf-8")` (strict) as a bytes object.
    pub fn str_encode_utf8(&self) -> PyResult<Obj> {
        // SAFETY: a live object (object.rs notes); the call checks its type.
        Obj::from_owned(unsafe { ffi::PyUnicode_AsUTF8String(self.as_ptr()) })
    }

    /// `self.split(".")` for a str, as a Vec of the parts.
    pub fn str_split_dots(&self) -> PyResult<Vec<Obj>> {
        let dot = new_str(".")?;
        // SAFETY: live objects (object.rs notes); the call checks their types.
        let list =
            Obj::from_owned(unsafe { ffi::PyUnicode_Split(self.as_ptr(), dot.as_ptr(), -1) })?;
        let n = list.list_len();
        let mut parts = alloc::with_capacity(n)?;
        parts.extend((0..n).filter_map(|i| list.list_get(i)));
        Ok(parts)
    }

    /// Whether a str equals the given ASCII text (false for non-str or non-UTF-8-encodable str).
    pub fn str_eq(&self, text: &str) -> bool {
        if !self.is_str() {
            return false;
        }
        self.str_utf8_fast() == Some(text.as_bytes())
    }

    /// The text of a str that is pure ASCII, else `None` (`PyUnicode_IS_ASCII`).
    pub fn str_ascii(&self) -> Option<&[u8]> {
        self.str_utf8_fast().filter(|s| s.is_ascii())
    }
}

pub fn new_str(s: &str) -> PyResult<Obj> {
    str_from_utf8(s.as_bytes(), b"strict\0")
}

/// Decodes UTF-8 with the given error handler (NUL-terminated, e.g. "surrogatepass").
pub fn str_from_utf8(data: &[u8], errors: &'static [u8]) -> PyResult<Obj> {
    debug_assert_eq!(errors.last(), Some(&0));
    // SAFETY: `data` is readable for its length and `errors` NUL-terminated, both for the call;
    // a new reference or NULL with an exception set.
    Obj::from_owned(unsafe {
        ffi::PyUnicode_DecodeUTF8(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
            errors.as_ptr() as *const c_char,
        )
    })
}

/// Decodes with any codec; `encoding` and `errors` are Python str objects.
pub fn decode(data: &[u8], encoding: &Obj, errors: &Obj) -> PyResult<Obj> {
    let enc = encoding.str_utf8()?;
    let err = errors.str_utf8()?;
    let enc_c = alloc::with_nul(enc)?;
    let err_c = alloc::with_nul(err)?;
    // SAFETY: `data` is readable for its length, the two names NUL-terminated copies that live
    // through the call; a new reference or NULL with an exception set.
    Obj::from_owned(unsafe {
        ffi::PyUnicode_Decode(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
            enc_c.as_ptr() as *const c_char,
            err_c.as_ptr() as *const c_char,
        )
    })
}

/// Decodes `raw_unicode_escape` (protocol 0 UNICODE).
pub fn str_from_raw_unicode_escape(data: &[u8]) -> PyResult<Obj> {
    // SAFETY: `data` is readable for its length; NULL errors means "strict".
    Obj::from_owned(unsafe {
        ffi::PyUnicode_DecodeRawUnicodeEscape(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        )
    })
}

/// `bytes.decode("latin-1")` of raw bytes.
pub fn str_from_latin1(data: &[u8]) -> PyResult<Obj> {
    // SAFETY: `data` is readable for its length, the handler name NUL-terminated.
    Obj::from_owned(unsafe {
        ffi::PyUnicode_DecodeLatin1(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
            c"strict".as_ptr(),
        )
    })
}

/// Interns an exact str in place (as the C unpickler does for instance `__dict__` keys).
pub fn intern_in_place(s: Obj) -> Obj {
    let mut p = s.into_raw();
    // SAFETY: `p` is an owned reference to a live exact str; the call replaces it with an owned
    // reference to the interned equal str (or leaves it), never with NULL, so taking it back as
    // an `Obj` is sound.
    unsafe {
        ffi::PyUnicode_InternInPlace(&mut p);
        Obj::from_owned_unchecked(p)
    }
}

/// The interned str with the text `name` (what `sys.intern` returns), for the names cached by
/// `crate::lookup`'s [`interned!`](crate::interned).
pub fn intern(name: &str) -> PyResult<Obj> {
    let mut text = String::with_capacity(name.len() + 1);
    text.push_str(name);
    text.push('\0');
    // SAFETY: `text` is NUL-terminated and lives through the call; a new reference or NULL with
    // an exception set.
    Obj::from_owned(unsafe { ffi::PyUnicode_InternFromString(text.as_ptr() as *const c_char) })
}
