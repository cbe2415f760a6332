//! `bytes` and `bytearray`: their content, constructors (also ones the caller fills), the STRING
//! opcode's escape decoding, and [`HeldBytes`], immutable bytes kept alive by their owner. The
//! buffer protocol and memoryviews are in [`super::buffer`].

use std::os::raw::c_char;

use pyo3::ffi;
use pyo3::prelude::*;

use super::object::Obj;

impl Obj {
    /// The content of an exact or subclassed `bytes` object.
    pub fn bytes_data(&self) -> &[u8] {
        // SAFETY: callers pass `bytes` objects (exact or subclass: checked by them), whose content
        // is `n` immutable bytes owned by the object, alive while `&self` is borrowed.
        unsafe {
            let p = ffi::PyBytes_AsString(self.as_ptr());
            let n = ffi::PyBytes_Size(self.as_ptr());
            std::slice::from_raw_parts(p.cast::<u8>(), n as usize)
        }
    }

    /// The content of a bytearray (copy it before running any Python code that may resize it).
    pub fn bytearray_data(&self) -> &[u8] {
        // SAFETY: callers pass bytearrays; `n` bytes at `p` stay valid until the bytearray is
        // resized, which needs Python code to run: callers copy them before any does.
        unsafe {
            let p = ffi::PyByteArray_AsString(self.as_ptr());
            let n = ffi::PyByteArray_Size(self.as_ptr());
            if p.is_null() || n <= 0 {
                return &[];
            }
            std::slice::from_raw_parts(p.cast::<u8>(), n as usize)
        }
    }

    /// `bytes(self)` via `PyBytes_FromObject`.
    pub fn to_bytes_object(&self) -> PyResult<Obj> {
        // SAFETY: a live object (object.rs notes); a new reference or NULL with an exception set.
        Obj::from_owned(unsafe { ffi::PyBytes_FromObject(self.as_ptr()) })
    }
}

#[inline]
pub fn new_bytes(data: &[u8]) -> PyResult<Obj> {
    // SAFETY: `data` is readable for its length during the call, which copies it.
    Obj::from_owned(unsafe {
        ffi::PyBytes_FromStringAndSize(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
        )
    })
}

pub fn new_bytearray(data: &[u8]) -> PyResult<Obj> {
    // SAFETY: `data` is readable for its length during the call, which copies it.
    Obj::from_owned(unsafe {
        ffi::PyByteArray_FromStringAndSize(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
        )
    })
}

/// A new `bytes` or `bytearray` of `len` bytes, whose content the caller fills before sharing it.
pub struct NewBuffer {
    obj: Obj,
    bytearray: bool,
}

impl NewBuffer {
    pub fn new(len: usize, bytearray: bool) -> PyResult<Self> {
        let n = len as ffi::Py_ssize_t;
        // SAFETY: a NULL source asks for `n` uninitialised bytes (zeroed for a bytearray); a new
        // reference or NULL with an exception set.
        let obj = Obj::from_owned(unsafe {
            if bytearray {
                ffi::PyByteArray_FromStringAndSize(std::ptr::null(), n)
            } else {
                ffi::PyBytes_FromStringAndSize(std::ptr::null(), n)
            }
        })?;
        Ok(NewBuffer { obj, bytearray })
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let o = self.obj.as_ptr();
        // SAFETY: the object was made by `new` and is not shared yet, so nothing else reads or
        // resizes its `n` bytes while the mutable borrow of `self` lasts.
        unsafe {
            let (p, n) = if self.bytearray {
                (ffi::PyByteArray_AsString(o), ffi::PyByteArray_Size(o))
            } else {
                (ffi::PyBytes_AsString(o), ffi::PyBytes_Size(o))
            };
            if n == 0 {
                return &mut [];
            }
            std::slice::from_raw_parts_mut(p.cast::<u8>(), n as usize)
        }
    }

    pub fn finish(self) -> Obj {
        self.obj
    }

    /// `readinto(view)` filling the object's bytes from `start` on; its result. A view of memory
    /// may outlive the call (Python code can keep a slice of it), so the view given to Python
    /// code always reaches memory an object owns, which such a slice keeps alive: a bytearray
    /// result's own memory, else a scratch bytearray copied from. Only a builtin method (the io
    /// classes' `readinto`) is given a view of the new object's memory directly, as the C
    /// unpickler does, and that view is released when it returns.
    pub fn readinto_from(&mut self, start: usize, readinto: &Obj) -> PyResult<Obj> {
        // SAFETY: reading the type of a live object.
        let builtin = unsafe {
            ffi::Py_TYPE(readinto.as_ptr()) == std::ptr::addr_of_mut!(ffi::PyCFunction_Type)
        };
        if builtin && !self.bytearray {
            let tail = &mut self.as_mut_slice()[start..];
            let view = super::buffer::memoryview_of_mut(tail)?;
            let result = readinto.call1(&view);
            let _ = view.call_method(crate::interned!("release"), &[]);
            return result;
        }
        let owner = if self.bytearray {
            self.obj.clone()
        } else {
            let mut scratch = NewBuffer::new(self.len() - start, true)?;
            scratch.as_mut_slice().fill(0);
            scratch.finish()
        };
        // SAFETY: a live object that exports a writable buffer (a bytearray).
        let whole = Obj::from_owned(unsafe { ffi::PyMemoryView_FromObject(owner.as_ptr()) })?;
        let view = if self.bytearray && start > 0 {
            let from = super::number::new_int(start as i64)?;
            // SAFETY: a new slice object from a live int and two NULLs (None).
            let slice = Obj::from_owned(unsafe {
                ffi::PySlice_New(from.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut())
            })?;
            whole.get_item(&slice)?
        } else {
            whole
        };
        let result = readinto.call1(&view);
        let _ = view.call_method(crate::interned!("release"), &[]);
        if !self.bytearray {
            // Whatever readinto wrote by the time it returned, as from the C unpickler (no Python
            // code has run since, so the bytearray still has its length).
            let written = owner.bytearray_data();
            let tail = &mut self.as_mut_slice()[start..];
            let n = written.len().min(tail.len());
            tail[..n].copy_from_slice(&written[..n]);
        }
        result
    }

    pub(super) fn is_bytearray(&self) -> bool {
        self.bytearray
    }

    /// The length the object was created with.
    pub fn len(&self) -> usize {
        // SAFETY: the object is a live bytes or bytearray object.
        let n = unsafe {
            if self.bytearray {
                ffi::PyByteArray_Size(self.obj.as_ptr())
            } else {
                ffi::PyBytes_Size(self.obj.as_ptr())
            }
        };
        n.max(0) as usize
    }
}

/// `bytes` decoded from a Python-escaped byte string (the STRING opcode's `'...'` body).
pub fn bytes_decode_escape(data: &[u8]) -> PyResult<Obj> {
    // SAFETY: `data` is readable for its length; NULL errors means "strict", and the last two
    // arguments are unused (as in CPython's own callers).
    Obj::from_owned(unsafe {
        ffi::PyBytes_DecodeEscape(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
            std::ptr::null(),
            0,
            std::ptr::null(),
        )
    })
}

/// Immutable bytes kept alive by the object that owns them: a `bytes` object's content or a str's
/// UTF-8 cache (or the bytes object a str was encoded into).
pub struct HeldBytes {
    owner: Obj,
    /// True when `owner` is an exact `bytes` object (it can be handed to `file.write` as is).
    pub owner_is_bytes: bool,
    ptr: *const u8,
    len: usize,
}

impl HeldBytes {
    /// The content of an exact `bytes` object.
    pub fn of_bytes(obj: &Obj) -> HeldBytes {
        HeldBytes::of_owned_bytes(obj.clone())
    }

    /// The content of an exact `bytes` object, taking over the reference.
    pub fn of_owned_bytes(owner: Obj) -> HeldBytes {
        let data = owner.bytes_data();
        let (ptr, len) = (data.as_ptr(), data.len());
        HeldBytes {
            owner,
            owner_is_bytes: true,
            ptr,
            len,
        }
    }

    /// Part of the content of an exact `bytes` object `owner`: `data` must lie inside it (checked,
    /// since `as_slice` reads it for as long as `owner` lives).
    pub fn of_bytes_part(owner: Obj, data: &[u8]) -> HeldBytes {
        let whole = owner.bytes_data();
        let (start, end) = (
            whole.as_ptr() as usize,
            whole.as_ptr() as usize + whole.len(),
        );
        let at = data.as_ptr() as usize;
        assert!(
            at >= start && at <= end && data.len() <= end - at,
            "HeldBytes::of_bytes_part: the data is not inside its owner"
        );
        let owner_is_bytes = whole.as_ptr() == data.as_ptr() && whole.len() == data.len();
        HeldBytes {
            owner,
            owner_is_bytes,
            ptr: data.as_ptr(),
            len: data.len(),
        }
    }

    /// The UTF-8 cache `data` of the str `owner`, which keeps it.
    pub(in crate::ffi) fn of_str_cache(owner: Obj, data: &[u8]) -> HeldBytes {
        HeldBytes {
            owner,
            owner_is_bytes: false,
            ptr: data.as_ptr(),
            len: data.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: every constructor takes `ptr`/`len` from memory `owner` owns and never changes
        // (a bytes object's content, a str's UTF-8 cache); `owner` lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn owner(&self) -> &Obj {
        &self.owner
    }
}
