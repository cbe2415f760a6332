//! C-API wrappers the pickler needs beyond the shared ones in `ffi/mod.rs`: type-flag checks, live
//! iteration of lists/dicts/sets, int/float/str payload access, member descriptors at fixed offsets.

use std::cell::UnsafeCell;
use std::os::raw::{c_char, c_int, c_longlong, c_void};
use std::ptr::NonNull;

use pyo3::ffi;
use pyo3::prelude::*;

use super::raw;
use super::{fetch_error, Obj};

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
        let data = obj.bytes_data();
        HeldBytes {
            owner: obj.clone(),
            owner_is_bytes: true,
            ptr: data.as_ptr(),
            len: data.len(),
        }
    }
    /// Part of the content of an exact `bytes` object `owner` (`data` must point into it).
    pub fn of_bytes_part(owner: Obj, data: &[u8]) -> HeldBytes {
        let whole = owner.bytes_data();
        let owner_is_bytes = whole.as_ptr() == data.as_ptr() && whole.len() == data.len();
        HeldBytes {
            owner,
            owner_is_bytes,
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
        // SAFETY: `owner` keeps the memory alive and immutable.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
    pub fn owner(&self) -> &Obj {
        &self.owner
    }
}

impl Obj {
    /// The address of the object's type, for exact-type dispatch.
    #[inline]
    pub fn type_addr(&self) -> usize {
        self.type_ptr() as usize
    }

    /// Whether the object is an iterator (its type defines `__next__`), as `PyIter_Check`.
    pub fn is_iterator(&self) -> bool {
        let ty = self.type_ptr() as *mut ffi::PyObject;
        unsafe { ffi::PyObject_HasAttrString(ty, c"__next__".as_ptr()) != 0 }
    }

    /// `PyType_IsSubtype(type(self) if not a type else self, base)` for a type object `self`.
    pub fn type_is_subtype(&self, base_addr: usize) -> bool {
        unsafe {
            ffi::PyType_IsSubtype(
                self.as_ptr() as *mut ffi::PyTypeObject,
                base_addr as *mut ffi::PyTypeObject,
            ) != 0
        }
    }

    /// `str(self)`.
    pub fn str(&self) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PyObject_Str(self.as_ptr()) })
    }

    /// `repr(self)`.
    pub fn repr(&self) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PyObject_Repr(self.as_ptr()) })
    }

    // ---- int ----

    /// `PyLong_AsLongLongAndOverflow`: the value and the overflow sign (-1, 0, +1). `long long`,
    /// not `long`, which is 32 bits on Windows: every int of 64 bits takes the fast path there too
    /// (the bytes written do not depend on which path an int takes).
    #[inline]
    pub fn int_as_long_overflow(&self) -> PyResult<(i64, i32)> {
        let mut overflow: c_int = 0;
        let v: c_longlong =
            unsafe { ffi::PyLong_AsLongLongAndOverflow(self.as_ptr(), &mut overflow) };
        if v == -1 && overflow == 0 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            return Err(fetch_error());
        }
        Ok((v as i64, overflow as i32))
    }

    // ---- float ----

    #[inline]
    pub fn float_value(&self) -> f64 {
        unsafe { ffi::PyFloat_AsDouble(self.as_ptr()) }
    }

    // ---- bytes / bytearray / str ----

    /// The content of a bytearray (copy it before running any Python code that may resize it).
    pub fn bytearray_data(&self) -> &[u8] {
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
        Obj::from_owned(unsafe { ffi::PyBytes_FromObject(self.as_ptr()) })
    }

    /// The UTF-8 content of a str without copying, or `None` (and no pending error) when the str
    /// holds lone surrogates and needs [`Obj::str_utf8_payload`].
    #[inline]
    pub fn str_utf8_fast(&self) -> Option<&[u8]> {
        let mut n: ffi::Py_ssize_t = 0;
        let p = unsafe { raw::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut n) };
        if p.is_null() {
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n as usize) })
    }

    /// The UTF-8 encoding of a str; strings with lone surrogates are encoded with "surrogatepass".
    pub fn str_utf8_payload(&self) -> PyResult<HeldBytes> {
        let mut n: ffi::Py_ssize_t = 0;
        let p = unsafe { raw::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut n) };
        if !p.is_null() {
            return Ok(HeldBytes {
                owner: self.clone(),
                owner_is_bytes: false,
                ptr: p.cast::<u8>(),
                len: n as usize,
            });
        }
        // Lone surrogates: fall back to "surrogatepass" like the C pickler.
        unsafe { ffi::PyErr_Clear() };
        let encoded = Obj::from_owned(unsafe {
            ffi::PyUnicode_AsEncodedString(
                self.as_ptr(),
                c"utf-8".as_ptr(),
                c"surrogatepass".as_ptr(),
            )
        })?;
        let data = encoded.bytes_data();
        let (ptr, len) = (data.as_ptr(), data.len());
        Ok(HeldBytes {
            owner: encoded,
            owner_is_bytes: true,
            ptr,
            len,
        })
    }

    /// `str.encode("ascii")` (strict) as a bytes object.
    pub fn str_encode_ascii(&self) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PyUnicode_AsASCIIString(self.as_ptr()) })
    }

    /// `str.encode("utf-8")` (strict) as a bytes object.
    pub fn str_encode_utf8(&self) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PyUnicode_AsUTF8String(self.as_ptr()) })
    }

    /// `self.split(".")` for a str, as a Vec of the parts.
    pub fn str_split_dots(&self) -> PyResult<Vec<Obj>> {
        let dot = super::new_str(".")?;
        let list =
            Obj::from_owned(unsafe { ffi::PyUnicode_Split(self.as_ptr(), dot.as_ptr(), -1) })?;
        let n = list.list_len();
        let mut parts = crate::alloc::with_capacity(n)?;
        parts.extend((0..n).filter_map(|i| list.list_get(i)));
        Ok(parts)
    }

    /// Whether a str equals the given ASCII text (false for non-str or non-UTF-8-encodable str).
    pub fn str_eq(&self, text: &str) -> bool {
        if !self.is_str() {
            return false;
        }
        let mut n: ffi::Py_ssize_t = 0;
        let p = unsafe { raw::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut n) };
        if p.is_null() {
            unsafe { ffi::PyErr_Clear() };
            return false;
        }
        let s = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n as usize) };
        s == text.as_bytes()
    }

    /// The text of a str that is pure ASCII, else `None` (`PyUnicode_IS_ASCII`).
    pub fn str_ascii(&self) -> Option<&[u8]> {
        let mut n: ffi::Py_ssize_t = 0;
        let p = unsafe { raw::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut n) };
        if p.is_null() {
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        let s = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n as usize) };
        if s.is_ascii() {
            Some(s)
        } else {
            None
        }
    }

    // ---- containers, read live (they may change while we pickle their items) ----

    #[inline]
    pub fn tuple_len(&self) -> usize {
        let n = unsafe { ffi::PyTuple_Size(self.as_ptr()) };
        if n < 0 {
            unsafe { ffi::PyErr_Clear() };
            return 0;
        }
        n as usize
    }

    /// Item `i` of a tuple (a new reference); `None` when out of range.
    #[inline]
    pub fn tuple_get(&self, i: usize) -> Option<Obj> {
        let p = unsafe { ffi::PyTuple_GetItem(self.as_ptr(), i as ffi::Py_ssize_t) };
        if p.is_null() {
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(Obj::from_borrowed(p))
    }

    /// `self[start:]` of a tuple.
    pub fn tuple_slice_from(&self, start: usize) -> PyResult<Obj> {
        let n = self.tuple_len();
        Obj::from_owned(unsafe {
            ffi::PyTuple_GetSlice(
                self.as_ptr(),
                start as ffi::Py_ssize_t,
                n as ffi::Py_ssize_t,
            )
        })
    }

    /// Item `i` of a list (a new reference); `None` when out of range.
    #[inline]
    pub fn list_get(&self, i: usize) -> Option<Obj> {
        let p = unsafe { ffi::PyList_GetItem(self.as_ptr(), i as ffi::Py_ssize_t) };
        if p.is_null() {
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(Obj::from_borrowed(p))
    }

    #[inline]
    pub fn dict_len(&self) -> usize {
        let n = unsafe { ffi::PyDict_Size(self.as_ptr()) };
        if n < 0 {
            unsafe { ffi::PyErr_Clear() };
            return 0;
        }
        n as usize
    }

    /// Next `(key, value)` of a dict from position `pos` (`PyDict_Next`), as new references.
    #[inline]
    pub fn dict_next(&self, pos: &mut isize) -> Option<(Obj, Obj)> {
        let mut k: *mut ffi::PyObject = std::ptr::null_mut();
        let mut v: *mut ffi::PyObject = std::ptr::null_mut();
        let mut p = *pos as ffi::Py_ssize_t;
        let more = unsafe { ffi::PyDict_Next(self.as_ptr(), &mut p, &mut k, &mut v) } != 0;
        *pos = p as isize;
        if more {
            Some((Obj::from_borrowed(k), Obj::from_borrowed(v)))
        } else {
            None
        }
    }

    pub fn set_len(&self) -> usize {
        let n = unsafe { ffi::PySet_Size(self.as_ptr()) };
        if n < 0 {
            unsafe { ffi::PyErr_Clear() };
            return 0;
        }
        n as usize
    }

    /// `list(self)` via `PySequence_List`.
    pub fn to_list(&self) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PySequence_List(self.as_ptr()) })
    }

    /// Replaces item `key` of a dict-or-mapping, removing it: `del self[key]`.
    pub fn del_item(&self, key: &Obj) -> PyResult<()> {
        let rc = unsafe { ffi::PyObject_DelItem(self.as_ptr(), key.as_ptr()) };
        if rc < 0 {
            return Err(fetch_error());
        }
        Ok(())
    }

    /// `self(arg)` without building an argument tuple where the interpreter allows (3.8+).
    #[inline]
    pub fn call_one(&self, arg: &Obj) -> PyResult<Obj> {
        super::stack::check(super::CALLING)?;
        Obj::from_owned(super::shutdown::call_args(self.as_ptr(), &[arg.as_ptr()]))
    }

    /// `self(a, b)` likewise.
    #[inline]
    pub fn call_two(&self, a: &Obj, b: &Obj) -> PyResult<Obj> {
        super::stack::check(super::CALLING)?;
        Obj::from_owned(super::shutdown::call_args(
            self.as_ptr(),
            &[a.as_ptr(), b.as_ptr()],
        ))
    }
}

/// The address of an object as a Python int (`PyLong_FromVoidPtr`).
pub fn int_from_addr(addr: usize) -> PyResult<Obj> {
    Obj::from_owned(unsafe { ffi::PyLong_FromVoidPtr(addr as *mut c_void) })
}

/// `bytes.decode("latin-1")` of raw bytes.
pub fn str_from_latin1(data: &[u8]) -> PyResult<Obj> {
    Obj::from_owned(unsafe {
        ffi::PyUnicode_DecodeLatin1(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
            c"strict".as_ptr(),
        )
    })
}

/// `sys.modules` (a new reference), or `None` when it is missing.
pub fn sys_modules() -> Option<Obj> {
    let p = unsafe { ffi::PySys_GetObject(c"modules".as_ptr()) };
    NonNull::new(p).map(|p| Obj::from_borrowed(p.as_ptr()))
}

/// Whether the pending error (carried by `err`) is a `UnicodeEncodeError`.
pub fn is_unicode_encode_error(err: &PyErr) -> bool {
    let py = unsafe { Python::assume_gil_acquired() };
    err.is_instance::<pyo3::exceptions::PyUnicodeEncodeError>(py)
}

/// Whether `err` is a `KeyError`.
pub fn is_key_error(err: &PyErr) -> bool {
    let py = unsafe { Python::assume_gil_acquired() };
    err.is_instance::<pyo3::exceptions::PyKeyError>(py)
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
pub(super) fn int_to_pickle_bytes_by_text(value: &Obj) -> PyResult<Vec<u8>> {
    // SAFETY: `value` is a live int; `PyNumber_ToBase` returns a new reference or NULL.
    let hex = Obj::from_owned(unsafe { ffi::PyNumber_ToBase(value.as_ptr(), 16) })?;
    crate::bigint::pickle_bytes_from_hex(hex.str_utf8()?)
        .ok_or_else(|| pyo3::exceptions::PyMemoryError::new_err(()))
}

/// A Python int from little-endian two's-complement bytes of any length (over 8).
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
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: `text` is NUL-terminated and outlives the call.
    Obj::from_owned(unsafe { ffi::PyLong_FromString(text.as_ptr() as *const c_char, &mut end, 16) })
}

// ---- member descriptors at fixed offsets (what `PyMemberDef` gives a C type) ----

/// An object slot a `T_OBJECT_EX` member descriptor reads and writes directly; NULL means unset.
#[repr(transparent)]
pub struct ObjectSlot(UnsafeCell<*mut ffi::PyObject>);
// SAFETY: only accessed with the GIL held.
unsafe impl Send for ObjectSlot {}

impl ObjectSlot {
    pub fn empty() -> Self {
        ObjectSlot(UnsafeCell::new(std::ptr::null_mut()))
    }
    /// The current value (a new reference).
    pub fn get(&self) -> Option<Obj> {
        let p = unsafe { *self.0.get() };
        NonNull::new(p).map(|p| Obj::from_borrowed(p.as_ptr()))
    }
    pub fn set(&self, value: Option<Obj>) {
        let new = match value {
            Some(o) => {
                let p = o.as_ptr();
                std::mem::forget(o);
                p
            }
            None => std::ptr::null_mut(),
        };
        let old = unsafe { std::mem::replace(&mut *self.0.get(), new) };
        if !old.is_null() {
            unsafe { ffi::Py_DECREF(old) };
        }
    }
    pub fn address(&self) -> usize {
        self.0.get() as usize
    }
}

impl Drop for ObjectSlot {
    fn drop(&mut self) {
        self.set(None);
    }
}

/// A C `int` slot a `T_INT` member descriptor reads and writes directly.
#[repr(transparent)]
pub struct IntSlot(UnsafeCell<c_int>);
// SAFETY: only accessed with the GIL held.
unsafe impl Send for IntSlot {}

impl IntSlot {
    pub fn new(v: i32) -> Self {
        IntSlot(UnsafeCell::new(v))
    }
    pub fn get(&self) -> i32 {
        unsafe { *self.0.get() }
    }
    pub fn set(&self, v: i32) {
        unsafe { *self.0.get() = v }
    }
    pub fn address(&self) -> usize {
        self.0.get() as usize
    }
}

/// Kinds of member a type can expose.
#[derive(Clone, Copy)]
pub enum MemberKind {
    /// `T_OBJECT_EX`: an [`ObjectSlot`]; reading an empty slot raises AttributeError.
    Object,
    /// `T_INT`: an [`IntSlot`].
    Int,
}

/// Installs a member descriptor `name` on `ty` for the field at `offset` bytes from the start of
/// each instance. The name must be NUL-terminated and static.
pub fn install_member(
    ty: &Obj,
    name: &'static [u8],
    kind: MemberKind,
    offset: usize,
) -> PyResult<()> {
    let def = Box::leak(Box::new(ffi::structmember::PyMemberDef {
        name: name.as_ptr() as *mut c_char,
        type_code: match kind {
            MemberKind::Object => ffi::structmember::T_OBJECT_EX,
            MemberKind::Int => ffi::structmember::T_INT,
        },
        offset: offset as ffi::Py_ssize_t,
        flags: 0,
        doc: std::ptr::null_mut(),
    }));
    let descr = Obj::from_owned(unsafe {
        ffi::PyDescr_NewMember(ty.as_ptr() as *mut ffi::PyTypeObject, def)
    })?;
    let name_obj = super::new_str(std::str::from_utf8(&name[..name.len() - 1]).unwrap_or("?"))?;
    ty.setattr(&name_obj, &descr)
}

/// Whether a type is a subclass of list or dict (from its flags).
pub fn is_list_or_dict_subclass(type_obj: &Obj) -> bool {
    let flags = unsafe { ffi::PyType_GetFlags(type_obj.as_ptr() as *mut ffi::PyTypeObject) };
    flags & (ffi::Py_TPFLAGS_LIST_SUBCLASS | ffi::Py_TPFLAGS_DICT_SUBCLASS) != 0
}

/// The interpreter's module dict (what `sys.modules` is at start-up), borrowed.
pub fn modules_dict() -> Obj {
    Obj::from_borrowed(unsafe { ffi::PyImport_GetModuleDict() })
}

impl Obj {
    /// The instance `__dict__` (created if missing), as `PyObject_GenericGetDict`.
    pub fn generic_get_dict(&self) -> PyResult<Obj> {
        Obj::from_owned(unsafe {
            raw::PyObject_GenericGetDict(self.as_ptr(), std::ptr::null_mut())
        })
    }

    /// `key in self` (`PySequence_Contains`).
    pub fn contains(&self, key: &Obj) -> PyResult<bool> {
        match unsafe { ffi::PySequence_Contains(self.as_ptr(), key.as_ptr()) } {
            r if r < 0 => Err(fetch_error()),
            r => Ok(r == 1),
        }
    }
}

impl super::TypeRef {
    /// The type object's address.
    #[inline]
    pub fn addr(self) -> usize {
        self.0 as usize
    }
}

impl pyo3::AsPyPointer for Obj {
    fn as_ptr(&self) -> *mut ffi::PyObject {
        Obj::as_ptr(self)
    }
}
