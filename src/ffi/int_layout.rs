//! The digits of Python ints, read and written in place: layout access under the rules of
//! `docs/design.md` (version allow-list, a check on live ints at import, `PICKLE5_RS_API_ONLY`).
//! It lets ints beyond 64 bits cost what they cost the C pickler, whose private
//! `_PyLong_AsByteArray`/`_PyLong_FromByteArray` the stable ABI does not offer; the API path
//! goes through hexadecimal text instead.
//!
//! An int is the object header, one word giving sign and digit count, then 30-bit digits in
//! 32-bit words, least significant first. The word is `ob_size` (sign × count) up to 3.11 and
//! `lv_tag` (count << 3 | sign bits: 0 positive, 1 zero, 2 negative) from 3.12 on.

use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

use super::{version, Obj};
use crate::bigint::{self, DIGIT_BITS};

#[derive(Clone, Copy, PartialEq)]
#[repr(u8)]
enum Layout {
    /// The API path.
    Off,
    /// 3.6 ... 3.11: `ob_size`.
    SignedSize,
    /// 3.12, 3.13: `lv_tag`.
    Tagged,
}

static LAYOUT: AtomicU8 = AtomicU8::new(Layout::Off as u8);

const HEADER_WORD: usize = 2;
const DIGITS_OFFSET: usize = 3 * std::mem::size_of::<usize>();

fn active() -> Layout {
    match LAYOUT.load(Ordering::Relaxed) {
        x if x == Layout::SignedSize as u8 => Layout::SignedSize,
        x if x == Layout::Tagged as u8 => Layout::Tagged,
        _ => Layout::Off,
    }
}

/// Chooses the layout for the running interpreter and checks it on live ints; called once from
/// module initialisation.
pub fn init(py: Python) -> PyResult<()> {
    let candidate = match version::running() {
        _ if !version::layout_access() => Layout::Off,
        v if v <= (3, 11) => Layout::SignedSize,
        _ => Layout::Tagged,
    };
    let info = py.import("sys")?.getattr("int_info")?;
    let digits_fit = info.getattr("bits_per_digit")?.extract::<u32>()? == DIGIT_BITS
        && info.getattr("sizeof_digit")?.extract::<usize>()? == 4
        && std::mem::size_of::<usize>() == 8;
    if candidate != Layout::Off && digits_fit {
        LAYOUT.store(candidate as u8, Ordering::Relaxed);
        if !self_check()? {
            LAYOUT.store(Layout::Off as u8, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Whether ints are read and written in place (false: the API path).
pub fn in_use() -> bool {
    active() != Layout::Off
}

/// Reads, through the layout, ints whose pickle bytes the API also gives, and builds ints from
/// those bytes: every result must agree.
fn self_check() -> PyResult<bool> {
    const SAMPLES: [&[u8]; 8] = [
        b"10000000000000000",
        b"-10000000000000000",
        b"1000000000000000000000000123456789",
        b"-7fffffffffffffffffffffffffffffff",
        b"3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        b"c000000000000000",
        b"-40000000000000000000001",
        b"123456789abcdef0123456789abcdef0123456789abcdef",
    ];
    for text in SAMPLES {
        let value = super::number::int_from_text(text, 16)?;
        let expected = super::number::int_to_pickle_bytes_by_text(&value)?;
        let read =
            digits(&value).and_then(|(d, negative)| bigint::pickle_bytes_from_digits(d, negative));
        if read.as_ref() != Some(&expected) {
            return Ok(false);
        }
        let built = match int_from_signed_le(&expected) {
            Some(built) => Obj::from_owned(built)?,
            None => return Ok(false),
        };
        // SAFETY: two live objects; the result is 1, 0 or -1 (error).
        let same =
            unsafe { ffi::PyObject_RichCompareBool(built.as_ptr(), value.as_ptr(), ffi::Py_EQ) };
        if same != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The magnitude digits and sign of the exact int `obj`, read in place; None on the API path.
pub fn digits(obj: &Obj) -> Option<(&[u32], bool)> {
    let layout = active();
    if layout == Layout::Off || !obj.is_exact_type(super::types::int()) {
        return None;
    }
    // SAFETY: `obj` is a live exact int and the layout was verified at import; the digits live as long as `obj`, which the returned slice borrows.
    unsafe {
        let base = obj.as_ptr() as *const u8;
        let word = *(base as *const usize).add(HEADER_WORD);
        let (count, negative) = match layout {
            Layout::SignedSize => {
                let size = word as isize;
                (size.unsigned_abs(), size < 0)
            }
            _ => (word >> 3, word & 3 == 2),
        };
        let digits = std::slice::from_raw_parts(base.add(DIGITS_OFFSET) as *const u32, count);
        Some((digits, negative))
    }
}

/// A new int from little-endian two's-complement `data` (over 8 bytes), its digits written in
/// place: a new reference, or NULL with an exception set; None on the API path. Raw, so that the
/// hot caller keeps it in a register (a `PyResult` returned through memory costs a store-forwarding
/// stall per int).
#[inline]
pub fn int_from_signed_le(data: &[u8]) -> Option<*mut ffi::PyObject> {
    let layout = active();
    if layout == Layout::Off {
        return None;
    }
    if let Some((magnitude, negative)) = bigint::small_magnitude(data) {
        if magnitude < 1 << 62 {
            let value = magnitude as i64;
            // SAFETY: plain conversion; a new reference or NULL with an exception set.
            return Some(unsafe {
                ffi::PyLong_FromLongLong(if negative { -value } else { value })
            });
        }
        let (digits, count) = bigint::small_digits(magnitude);
        return Some(new_int_with(count, negative, layout, |slots| {
            slots.copy_from_slice(&digits[..count])
        }));
    }
    let made = bigint::with_magnitude(data, |magnitude, negative| {
        let count = bigint::digit_count(magnitude.len(), magnitude.last().copied().unwrap_or(0));
        if count == 0 {
            // SAFETY: plain conversion; a new reference or NULL with an exception set.
            return unsafe { ffi::PyLong_FromLong(0) };
        }
        new_int_with(count, negative, layout, |slots| {
            bigint::fill_digits(magnitude, slots)
        })
    });
    // SAFETY: `PyErr_NoMemory` sets MemoryError and returns NULL, the failure this function reports.
    Some(made.unwrap_or_else(|| unsafe { ffi::PyErr_NoMemory() }))
}

/// An int of `count` (at least 3) digits, allocated as `int.__new__` allocates subclass instances
/// (`PyType_GenericAlloc`: zeroed, freed by the int deallocator through `tp_free`), its digits
/// written by `fill` (the top one non-zero) before anything else can see it. NULL on failure.
#[inline]
fn new_int_with(
    count: usize,
    negative: bool,
    layout: Layout,
    fill: impl FnOnce(&mut [u32]),
) -> *mut ffi::PyObject {
    let int_type = super::types::int().as_type_ptr();
    // SAFETY: `int` is a ready type; the result is a new reference or NULL.
    let fresh = unsafe { ffi::PyType_GenericAlloc(int_type, count as ffi::Py_ssize_t) };
    if fresh.is_null() {
        return fresh;
    }
    // SAFETY: `fresh` is a new int object with room for `count` digits, referenced only here; the
    // header word and the digits are written with a valid normalized value (callers pass the
    // exact digit count of the value, so the top digit is non-zero).
    unsafe {
        let base = fresh as *mut u8;
        let slots = std::slice::from_raw_parts_mut(base.add(DIGITS_OFFSET) as *mut u32, count);
        fill(slots);
        *(base as *mut usize).add(HEADER_WORD) = match (layout, negative) {
            (Layout::SignedSize, false) => count,
            (Layout::SignedSize, true) => (-(count as isize)) as usize,
            (_, false) => count << 3,
            (_, true) => (count << 3) | 2,
        };
    }
    fresh
}
