//! The only home of raw C-API calls.
//!
//! Everything outside this module works with [`Obj`] (an owned, non-null object reference) and the
//! safe wrappers below. Functions that are not in PyO3's abi3 declarations but are exported with the
//! same signature by every CPython >= 3.6 are declared in [`raw`]; see docs/design.md for the policy.

pub mod buffer;
pub mod bytes_layout;
pub mod fastcall;
pub mod getset;
pub mod heap_type;
pub mod int_layout;
mod layout37;
pub mod picklebuffer;
pub mod pickling;
mod raw;
pub use raw::resolve as resolve_late_stable_api;
pub mod seq_layout;
mod shutdown;
pub mod stack;
pub mod vectorcall;
pub mod version;

use std::os::raw::{c_char, c_int};
use std::ptr::NonNull;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::AsPyPointer;

use pyo3::ffi::PyObject;

/// What a `RecursionError` raised before calling into Python says.
const CALLING: &str = " while calling a Python object";
use crate::alloc;

/// `builtins.getattr` and a sentinel no attribute can be, for [`Obj::getattr_if_present`].
fn quiet_getattr() -> PyResult<&'static (Obj, Obj)> {
    static QUIET: once_cell::sync::OnceCell<(Obj, Obj)> = once_cell::sync::OnceCell::new();
    QUIET.get_or_try_init(|| {
        let builtins = import(crate::interned!("builtins"))?;
        let getattr = builtins.getattr(crate::interned!("getattr"))?;
        let object = types::object().as_obj();
        let missing = object.call0()?;
        Ok((getattr, missing))
    })
}

/// An owned (strong) reference to a Python object. Dropping it releases the reference; the GIL must
/// be held, which every holder guarantees by only living inside calls from Python.
#[repr(transparent)]
pub struct Obj(NonNull<PyObject>);

impl Obj {
    /// Takes ownership of a new reference returned by the C API; NULL means an exception is set.
    #[inline]
    pub(crate) fn from_owned(ptr: *mut PyObject) -> PyResult<Obj> {
        match NonNull::new(ptr) {
            Some(p) => Ok(Obj(p)),
            None => Err(fetch_error()),
        }
    }

    /// A new strong reference to a borrowed (non-null) pointer.
    #[inline]
    fn from_borrowed(ptr: *mut PyObject) -> Obj {
        // SAFETY: callers pass pointers to live objects.
        unsafe { ffi::Py_INCREF(ptr) };
        Obj(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// A new reference to any PyO3 object.
    #[inline]
    pub fn of(obj: &PyAny) -> Obj {
        Obj::from_borrowed(obj.as_ptr())
    }

    /// A new reference to a PyO3 `PyObject`.
    #[inline]
    pub fn of_py(obj: &pyo3::PyObject) -> Obj {
        Obj::from_borrowed(obj.as_ptr())
    }

    #[inline]
    pub fn as_ptr(&self) -> *mut PyObject {
        self.0.as_ptr()
    }

    /// Identity (the object's address), for memo keys and `is` checks.
    #[inline]
    pub fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }

    #[inline]
    pub fn is(&self, other: &Obj) -> bool {
        self.0 == other.0
    }

    /// Gives up ownership: the caller now owns the reference.
    #[inline]
    fn into_raw(self) -> *mut PyObject {
        let p = self.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Hands the reference to PyO3.
    #[inline]
    pub fn into_py(self) -> pyo3::PyObject {
        let ptr = self.0.as_ptr();
        std::mem::forget(self);
        // SAFETY: we own one reference and transfer it.
        unsafe { pyo3::PyObject::from_owned_ptr(Python::assume_gil_acquired(), ptr) }
    }

    /// A PyO3 view of the object for the duration of the GIL.
    #[inline]
    pub fn as_any<'py>(&self, py: Python<'py>) -> &'py PyAny {
        // SAFETY: a new reference is registered in the GIL pool, so the borrow outlives `self`.
        unsafe { py.from_borrowed_ptr(self.as_ptr()) }
    }

    #[inline]
    pub fn type_ptr(&self) -> *mut ffi::PyTypeObject {
        // SAFETY: the object is live.
        unsafe { ffi::Py_TYPE(self.as_ptr()) }
    }

    #[inline]
    pub fn is_exact_type(&self, ty: TypeRef) -> bool {
        self.type_ptr() == ty.0
    }

    pub fn type_obj(&self) -> Obj {
        Obj::from_borrowed(self.type_ptr() as *mut PyObject)
    }

    // ---- attribute access and calls ----

    pub fn getattr(&self, name: &Obj) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PyObject_GetAttr(self.as_ptr(), name.as_ptr()) })
    }

    /// `getattr(obj, name, None)` restricted to AttributeError: `Ok(None)` when absent.
    pub fn getattr_opt(&self, name: &Obj) -> PyResult<Option<Obj>> {
        let ptr = unsafe { ffi::PyObject_GetAttr(self.as_ptr(), name.as_ptr()) };
        if ptr.is_null() {
            let err = fetch_error();
            let py = unsafe { Python::assume_gil_acquired() };
            if err.is_instance::<pyo3::exceptions::PyAttributeError>(py) {
                return Ok(None);
            }
            return Err(err);
        }
        Ok(Some(Obj(unsafe { NonNull::new_unchecked(ptr) })))
    }

    /// Like [`Obj::getattr_opt`], but an absent attribute raises no exception on the way (the
    /// builtin `getattr` with a default looks it up quietly): for attributes usually absent, where
    /// raising and clearing `AttributeError` would cost more than the lookup.
    pub fn getattr_if_present(&self, name: &Obj) -> PyResult<Option<Obj>> {
        let (getattr, missing) = quiet_getattr()?;
        let found = Obj::from_owned(shutdown::call_args(
            getattr.as_ptr(),
            &[self.as_ptr(), name.as_ptr(), missing.as_ptr()],
        ))?;
        Ok(if found.is(missing) { None } else { Some(found) })
    }

    pub fn setattr(&self, name: &Obj, value: &Obj) -> PyResult<()> {
        check(unsafe { ffi::PyObject_SetAttr(self.as_ptr(), name.as_ptr(), value.as_ptr()) })
    }

    pub fn call0(&self) -> PyResult<Obj> {
        let args = Obj::from_owned(unsafe { ffi::PyTuple_New(0) })?;
        self.call(&args, None)
    }

    pub fn call1(&self, a: &Obj) -> PyResult<Obj> {
        self.call(&tuple(&[a])?, None)
    }

    pub fn call2(&self, a: &Obj, b: &Obj) -> PyResult<Obj> {
        self.call(&tuple(&[a, b])?, None)
    }

    /// `self(*args, **kwargs)`; `args` must be a tuple.
    pub fn call(&self, args: &Obj, kwargs: Option<&Obj>) -> PyResult<Obj> {
        stack::check(CALLING)?;
        let kw = kwargs.map_or(std::ptr::null_mut(), |k| k.as_ptr());
        Obj::from_owned(shutdown::call(self.as_ptr(), args.as_ptr(), kw))
    }

    /// `self.name(*args)`.
    pub fn call_method(&self, name: &Obj, args: &[&Obj]) -> PyResult<Obj> {
        let method = self.getattr(name)?;
        method.call(&tuple(args)?, None)
    }

    // ---- protocols ----

    pub fn is_true(&self) -> PyResult<bool> {
        let r = unsafe { ffi::PyObject_IsTrue(self.as_ptr()) };
        check(r).map(|_| r == 1)
    }

    pub fn is_none(&self) -> bool {
        self.as_ptr() == unsafe { ffi::Py_None() }
    }

    pub fn len(&self) -> PyResult<usize> {
        let n = unsafe { ffi::PyObject_Size(self.as_ptr()) };
        if n < 0 {
            return Err(fetch_error());
        }
        Ok(n as usize)
    }

    pub fn get_item(&self, key: &Obj) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PyObject_GetItem(self.as_ptr(), key.as_ptr()) })
    }

    pub fn set_item(&self, key: &Obj, value: &Obj) -> PyResult<()> {
        check(unsafe { ffi::PyObject_SetItem(self.as_ptr(), key.as_ptr(), value.as_ptr()) })
    }

    pub fn iter(&self) -> PyResult<Obj> {
        Obj::from_owned(unsafe { ffi::PyObject_GetIter(self.as_ptr()) })
    }

    /// Next item of an iterator; `Ok(None)` when exhausted.
    pub fn next(&self) -> PyResult<Option<Obj>> {
        let ptr = unsafe { ffi::PyIter_Next(self.as_ptr()) };
        if ptr.is_null() {
            if unsafe { !ffi::PyErr_Occurred().is_null() } {
                return Err(fetch_error());
            }
            return Ok(None);
        }
        Ok(Some(Obj(unsafe { NonNull::new_unchecked(ptr) })))
    }

    pub fn is_instance(&self, ty: TypeRef) -> PyResult<bool> {
        let r = unsafe { ffi::PyObject_IsInstance(self.as_ptr(), ty.0 as *mut PyObject) };
        check(r).map(|_| r == 1)
    }

    /// `repr(self)` for an error message.
    pub fn repr_string(&self) -> Text {
        match self.repr() {
            Ok(s) => Text::of_str(s),
            Err(_) => Text::fixed("<unrepresentable object>"),
        }
    }

    /// `type(self).__name__` for an error message.
    pub fn type_name(&self) -> Text {
        match self.type_obj().getattr_opt(crate::interned!("__name__")) {
            Ok(Some(n)) => Text::of_any(n),
            _ => Text::fixed("?"),
        }
    }

    // ---- concrete types ----

    /// The UTF-8 content of a str (no copy; valid while `self` lives).
    pub fn str_utf8(&self) -> PyResult<&[u8]> {
        let mut n: ffi::Py_ssize_t = 0;
        let p = unsafe { raw::PyUnicode_AsUTF8AndSize(self.as_ptr(), &mut n) };
        if p.is_null() {
            return Err(fetch_error());
        }
        Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n as usize) })
    }

    /// The content of an exact or subclassed `bytes` object.
    pub fn bytes_data(&self) -> &[u8] {
        unsafe {
            let p = ffi::PyBytes_AsString(self.as_ptr());
            let n = ffi::PyBytes_Size(self.as_ptr());
            std::slice::from_raw_parts(p.cast::<u8>(), n as usize)
        }
    }

    /// `self[len(self):] = items` for an exact list, taking ownership of the items.
    pub fn list_extend_owned<I>(&self, items: I) -> PyResult<()>
    where
        I: IntoIterator<Item = Obj>,
        I::IntoIter: ExactSizeIterator,
    {
        let items = items.into_iter();
        if seq_layout::in_use() {
            // One resize and the pointers moved in, as the C unpickler's slice assignment does.
            let list = self.as_ptr();
            let old_len = self.list_len();
            let extra = items.len();
            // SAFETY: an exact list, layout checked; no Python code runs until its size is set.
            let slots =
                unsafe { seq_layout::list_reserve_tail(list, extra) }.ok_or_else(fetch_error)?;
            let stored = unsafe { move_into_slots(slots, items, extra) };
            unsafe { seq_layout::list_set_size(list, old_len + stored) };
            return Ok(());
        }
        // Stable ABI: one slice assignment of placeholders grows the list exactly as C's does,
        // then each item replaces its placeholder. Cheaper than building a batch list to splice
        // in: no second list to fill, reference and free item by item.
        let list = self.as_ptr();
        let start = self.list_len() as ffi::Py_ssize_t;
        let placeholders = none_tuple(items.len())?;
        check(unsafe { ffi::PyList_SetSlice(list, start, start, placeholders.as_ptr()) })?;
        for (i, item) in items.enumerate() {
            // SAFETY: the slot exists (added above, no Python code ran since); SetItem steals
            // the reference and releases the placeholder.
            unsafe { ffi::PyList_SetItem(list, start + i as ffi::Py_ssize_t, item.into_raw()) };
        }
        Ok(())
    }

    pub fn list_len(&self) -> usize {
        unsafe { ffi::PyList_Size(self.as_ptr()) as usize }
    }

    pub fn dict_set(&self, key: &Obj, value: &Obj) -> PyResult<()> {
        check(unsafe { ffi::PyDict_SetItem(self.as_ptr(), key.as_ptr(), value.as_ptr()) })
    }

    /// `d[key]` for a dict, without raising KeyError.
    pub fn dict_get(&self, key: &Obj) -> PyResult<Option<Obj>> {
        let p = unsafe { ffi::PyDict_GetItemWithError(self.as_ptr(), key.as_ptr()) };
        if p.is_null() {
            if unsafe { !ffi::PyErr_Occurred().is_null() } {
                return Err(fetch_error());
            }
            return Ok(None);
        }
        Ok(Some(Obj::from_borrowed(p)))
    }

    /// Calls `f(key, value)` for each item of a dict (borrowed for the duration of the call).
    pub fn dict_for_each(&self, mut f: impl FnMut(&Obj, &Obj) -> PyResult<()>) -> PyResult<()> {
        let mut pos: ffi::Py_ssize_t = 0;
        let mut k: *mut PyObject = std::ptr::null_mut();
        let mut v: *mut PyObject = std::ptr::null_mut();
        while unsafe { ffi::PyDict_Next(self.as_ptr(), &mut pos, &mut k, &mut v) } != 0 {
            // New references keep key and value alive even if `f` mutates the dict.
            let (key, value) = (Obj::from_borrowed(k), Obj::from_borrowed(v));
            f(&key, &value)?;
        }
        Ok(())
    }

    /// `(key, value)` pairs of a dict, snapshotted.
    pub fn dict_items(&self) -> PyResult<Vec<(Obj, Obj)>> {
        let n = unsafe { ffi::PyDict_Size(self.as_ptr()) }.max(0) as usize;
        let mut out = alloc::with_capacity(n)?;
        let mut pos: ffi::Py_ssize_t = 0;
        let mut k: *mut PyObject = std::ptr::null_mut();
        let mut v: *mut PyObject = std::ptr::null_mut();
        while unsafe { ffi::PyDict_Next(self.as_ptr(), &mut pos, &mut k, &mut v) } != 0 {
            alloc::push(&mut out, (Obj::from_borrowed(k), Obj::from_borrowed(v)))?;
        }
        Ok(out)
    }

    pub fn set_add(&self, item: &Obj) -> PyResult<()> {
        check(unsafe { ffi::PySet_Add(self.as_ptr(), item.as_ptr()) })
    }

    /// Items of a tuple (exact or subclass), as new references.
    /// The two items of an exact or subclassed tuple of length 2; None for anything else.
    pub fn tuple_pair(&self) -> Option<(Obj, Obj)> {
        // SAFETY: `self` is a live tuple (checked first); indices 0 and 1 exist, borrowed items
        // are turned into new references at once.
        if !self.is_tuple() || unsafe { ffi::PyTuple_Size(self.as_ptr()) } != 2 {
            return None;
        }
        let item = |i| Obj::from_borrowed(unsafe { ffi::PyTuple_GetItem(self.as_ptr(), i) });
        Some((item(0), item(1)))
    }

    pub fn tuple_items(&self) -> PyResult<Vec<Obj>> {
        let n = unsafe { ffi::PyTuple_Size(self.as_ptr()) }.max(0);
        alloc::collect_exact(
            (0..n).map(|i| Obj::from_borrowed(unsafe { ffi::PyTuple_GetItem(self.as_ptr(), i) })),
        )
    }

    /// `PyLong_AsLong`: the conversion `_pickle` applies to the `protocol` argument (which
    /// accepts `__int__` before 3.10, with a DeprecationWarning on 3.8/3.9, and `__index__` from
    /// 3.8 on).
    pub fn as_long(&self) -> PyResult<i64> {
        let v = unsafe { ffi::PyLong_AsLong(self.as_ptr()) };
        if v == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            return Err(fetch_error());
        }
        Ok(v as i64)
    }

    /// `PyLong_AsSsize_t`: only an int (or subclass) converts; anything else is
    /// TypeError("an integer is required").
    pub fn long_as_ssize(&self) -> PyResult<isize> {
        let v = unsafe { ffi::PyLong_AsSsize_t(self.as_ptr()) };
        if v == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            return Err(fetch_error());
        }
        Ok(v)
    }

    /// Converts to a Rust `isize` via `__index__`.
    pub fn as_ssize(&self) -> PyResult<isize> {
        let v = unsafe { ffi::PyNumber_AsSsize_t(self.as_ptr(), ffi::PyExc_OverflowError) };
        if v == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            return Err(fetch_error());
        }
        Ok(v)
    }
}

// SAFETY: an `Obj` is only created, used and dropped while its thread holds the GIL, which
// serialises every access to the object; holders (pyclasses, statics) rely on that.
unsafe impl Send for Obj {}
unsafe impl Sync for Obj {}

/// The GIL token, for code that only runs inside calls from Python (every entry point of this crate).
#[inline]
pub fn gil() -> Python<'static> {
    // SAFETY: see above; nothing in this crate runs without the GIL.
    unsafe { Python::assume_gil_acquired() }
}

impl Clone for Obj {
    #[inline]
    fn clone(&self) -> Obj {
        Obj::from_borrowed(self.as_ptr())
    }
}

impl Drop for Obj {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one reference and the GIL is held.
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Obj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Obj({:p})", self.0.as_ptr())
    }
}

/// A borrowed type object pointer, for exact-type checks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TypeRef(*mut ffi::PyTypeObject);

impl TypeRef {
    pub fn of_obj(obj: &Obj) -> TypeRef {
        TypeRef(obj.as_ptr() as *mut ffi::PyTypeObject)
    }
    pub fn as_obj(self) -> Obj {
        Obj::from_borrowed(self.0 as *mut PyObject)
    }
}

/// Builtin type objects, read once.
pub mod types {
    use super::TypeRef;
    use pyo3::ffi;
    macro_rules! builtin {
        ($($name:ident => $sym:ident),* $(,)?) => {$(
            #[inline]
            pub fn $name() -> TypeRef { TypeRef(std::ptr::addr_of_mut!(ffi::$sym)) }
        )*};
    }
    builtin! {
        bytes => PyBytes_Type, bytearray => PyByteArray_Type, str => PyUnicode_Type,
        int => PyLong_Type, float => PyFloat_Type, bool => PyBool_Type, tuple => PyTuple_Type,
        list => PyList_Type, dict => PyDict_Type, set => PySet_Type, frozenset => PyFrozenSet_Type,
        type_ => PyType_Type, object => PyBaseObject_Type, module => PyModule_Type,
    }
}

// ---- errors ----

/// The current exception as a `PyErr` (a SystemError if none is set, which would be a bug).
#[inline]
pub fn fetch_error() -> PyErr {
    let py = unsafe { Python::assume_gil_acquired() };
    PyErr::fetch(py)
}

#[inline]
fn check(rc: c_int) -> PyResult<()> {
    if rc < 0 {
        Err(fetch_error())
    } else {
        Ok(())
    }
}

// ---- constructors ----

#[inline]
pub fn none() -> Obj {
    Obj::from_borrowed(unsafe { ffi::Py_None() })
}

#[inline]
pub fn bool_obj(v: bool) -> Obj {
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
        Ok(l) => Obj::from_owned(unsafe { ffi::PyLong_FromLong(l) }),
        Err(_) => Obj::from_owned(unsafe { ffi::PyLong_FromLongLong(v) }),
    }
}

#[inline]
pub fn new_uint(v: u64) -> PyResult<Obj> {
    Obj::from_owned(unsafe { ffi::PyLong_FromUnsignedLongLong(v) })
}

#[inline]
pub fn new_float(v: f64) -> PyResult<Obj> {
    Obj::from_owned(unsafe { ffi::PyFloat_FromDouble(v) })
}

/// `int(text, base)`; raises ValueError like `int()` for malformed text.
pub fn int_from_text(text: &[u8], base: c_int) -> PyResult<Obj> {
    let owned = alloc::with_nul(text)?;
    let mut end: *mut c_char = std::ptr::null_mut();
    let obj = Obj::from_owned(unsafe {
        ffi::PyLong_FromString(owned.as_ptr() as *const c_char, &mut end, base)
    })?;
    Ok(obj)
}

#[inline]
pub fn new_bytes(data: &[u8]) -> PyResult<Obj> {
    Obj::from_owned(unsafe {
        ffi::PyBytes_FromStringAndSize(
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

    fn is_bytearray(&self) -> bool {
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

pub fn new_bytearray(data: &[u8]) -> PyResult<Obj> {
    Obj::from_owned(unsafe {
        ffi::PyByteArray_FromStringAndSize(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
        )
    })
}

/// A writable memoryview over Rust-owned memory; the caller keeps the memory alive while the view
/// is used and releases the view before the memory goes away.
pub fn memoryview_of_mut(data: &mut [u8]) -> PyResult<Obj> {
    Obj::from_owned(unsafe {
        ffi::PyMemoryView_FromMemory(
            data.as_mut_ptr() as *mut c_char,
            data.len() as ffi::Py_ssize_t,
            0x200,
        )
    })
}

/// Decodes UTF-8 with the given error handler (e.g. "surrogatepass").
pub fn str_from_utf8(data: &[u8], errors: &'static [u8]) -> PyResult<Obj> {
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
    Obj::from_owned(unsafe {
        ffi::PyUnicode_DecodeRawUnicodeEscape(
            data.as_ptr() as *const c_char,
            data.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        )
    })
}

/// A str interned once per call site (attribute and method names): `&*interned!("name")`.
#[macro_export]
macro_rules! interned {
    ($name:literal) => {{
        static CELL: $crate::ffi::InternedName = $crate::ffi::InternedName::new();
        CELL.get($name)
    }};
}

/// Storage behind `interned!`.
pub struct InternedName(once_cell::sync::OnceCell<Obj>);

impl InternedName {
    pub const fn new() -> Self {
        InternedName(once_cell::sync::OnceCell::new())
    }

    pub fn get(&self, name: &str) -> &Obj {
        self.0.get_or_init(|| {
            let mut text = String::with_capacity(name.len() + 1);
            text.push_str(name);
            text.push('\0');
            let p = unsafe { ffi::PyUnicode_InternFromString(text.as_ptr() as *const c_char) };
            // Only fails on memory exhaustion at first use; an unusable name is then fatal anyway.
            Obj::from_owned(p).expect("cannot create an interned attribute name")
        })
    }
}

pub fn new_str(s: &str) -> PyResult<Obj> {
    str_from_utf8(s.as_bytes(), b"strict\0")
}

/// A tuple that takes ownership of `items`.
pub fn new_tuple<I>(items: I) -> PyResult<Obj>
where
    I: IntoIterator<Item = Obj>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let n = items.len();
    let t = Obj::from_owned(unsafe { ffi::PyTuple_New(n as ffi::Py_ssize_t) })?;
    if seq_layout::in_use() {
        // SAFETY: a fresh tuple of `n` empty slots, layout checked.
        unsafe { move_into_slots(seq_layout::tuple_items(t.as_ptr()), items, n) };
        return Ok(t);
    }
    for (i, item) in items.enumerate() {
        // SAFETY: a fresh tuple; SetItem steals the reference.
        unsafe { ffi::PyTuple_SetItem(t.as_ptr(), i as ffi::Py_ssize_t, item.into_raw()) };
    }
    Ok(t)
}

pub fn tuple(items: &[&Obj]) -> PyResult<Obj> {
    new_tuple(items.iter().map(|o| (*o).clone()))
}

pub fn new_list(items: &[Obj]) -> PyResult<Obj> {
    let l = Obj::from_owned(unsafe { ffi::PyList_New(items.len() as ffi::Py_ssize_t) })?;
    for (i, item) in items.iter().enumerate() {
        // SAFETY: a fresh list; SetItem steals the new reference.
        unsafe {
            ffi::Py_INCREF(item.as_ptr());
            ffi::PyList_SetItem(l.as_ptr(), i as ffi::Py_ssize_t, item.as_ptr());
        }
    }
    Ok(l)
}

/// Moves up to `n` of `items` into consecutive slots (each slot takes over one reference), as
/// `PyList_SET_ITEM`/`PyTuple_SET_ITEM` do; returns how many were stored.
///
/// # Safety
/// `slots` has room for `n` pointers and holds no references yet.
unsafe fn move_into_slots(
    slots: *mut *mut PyObject,
    items: impl Iterator<Item = Obj>,
    n: usize,
) -> usize {
    let mut stored = 0;
    for item in items.take(n) {
        *slots.add(stored) = item.into_raw();
        stored += 1;
    }
    stored
}

/// A tuple of `n` Nones. The size of an APPENDS batch from a pickler (1000) is kept, so the
/// common case costs a reference; other sizes take a slice of it or a repeat.
fn none_tuple(n: usize) -> PyResult<Obj> {
    const KEPT: usize = 1000;
    static KEPT_NONES: once_cell::sync::OnceCell<Obj> = once_cell::sync::OnceCell::new();
    let kept = KEPT_NONES.get_or_try_init(|| repeated_none(KEPT))?;
    match n {
        KEPT => Ok(kept.clone()),
        n if n < KEPT => Obj::from_owned(unsafe {
            ffi::PyTuple_GetSlice(kept.as_ptr(), 0, n as ffi::Py_ssize_t)
        }),
        n => repeated_none(n),
    }
}

fn repeated_none(n: usize) -> PyResult<Obj> {
    let one = Obj::from_owned(unsafe { ffi::PyTuple_Pack(1, ffi::Py_None()) })?;
    Obj::from_owned(unsafe { ffi::PySequence_Repeat(one.as_ptr(), n as ffi::Py_ssize_t) })
}

/// A list that takes ownership of `items`.
pub fn new_list_owned<I>(items: I) -> PyResult<Obj>
where
    I: IntoIterator<Item = Obj>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let n = items.len();
    let l = Obj::from_owned(unsafe { ffi::PyList_New(n as ffi::Py_ssize_t) })?;
    if seq_layout::in_use() {
        // SAFETY: a fresh list of `n` empty slots, layout checked.
        unsafe { move_into_slots(seq_layout::list_items(l.as_ptr()), items, n) };
        return Ok(l);
    }
    for (i, item) in items.enumerate() {
        // SAFETY: a fresh list; SetItem steals the reference.
        unsafe { ffi::PyList_SetItem(l.as_ptr(), i as ffi::Py_ssize_t, item.into_raw()) };
    }
    Ok(l)
}

pub fn new_dict() -> PyResult<Obj> {
    Obj::from_owned(unsafe { ffi::PyDict_New() })
}

pub fn new_set(items: &[Obj]) -> PyResult<Obj> {
    let s = Obj::from_owned(unsafe { ffi::PySet_New(std::ptr::null_mut()) })?;
    for item in items {
        s.set_add(item)?;
    }
    Ok(s)
}

/// A frozenset of `items`, built from a tuple that takes them over (as the C unpickler does).
pub fn new_frozenset(items: Vec<Obj>) -> PyResult<Obj> {
    let t = new_tuple(items)?;
    Obj::from_owned(unsafe { ffi::PyFrozenSet_New(t.as_ptr()) })
}

/// `PyImport_Import(name)`: `__import__(name)`, then `sys.modules[name]`.
pub fn import(name: &Obj) -> PyResult<Obj> {
    if let Some(module) = imported_module(name)? {
        return Ok(module);
    }
    Obj::from_owned(unsafe { ffi::PyImport_Import(name.as_ptr()) })
}

/// The module `name` when `PyImport_Import` would only look it up: `__import__(name, globals,
/// globals, ['__doc__'], 0)` is the builtin one (found, as `PyImport_Import` finds it, in the running
/// frame's `__builtins__`), the module is in the interpreter's module dict, fully initialised, and
/// (a package) has the `__doc__` the fromlist asks for. Saves the `__import__` call and, for
/// packages, importlib's Python-level fromlist handling; anything else takes the import.
fn imported_module(name: &Obj) -> PyResult<Option<Obj>> {
    match current_import_function() {
        Some(import) if import.is(&crate::tables::get().original_import) => {}
        _ => return Ok(None),
    }
    // SAFETY: a borrowed reference (or NULL) owned by the running interpreter.
    let modules = unsafe { ffi::PyImport_GetModuleDict() };
    if modules.is_null() {
        return Ok(None);
    }
    let modules = Obj::from_borrowed(modules);
    if !modules.is_exact_type(types::dict()) {
        return Ok(None);
    }
    let module = match modules.dict_get(name)? {
        Some(module) if !module.is_none() => module,
        _ => return Ok(None),
    };
    if module.is_exact_type(types::module()) {
        // SAFETY: a module object's dict, borrowed.
        let dict = Obj::from_borrowed(unsafe { ffi::PyModule_GetDict(module.as_ptr()) });
        if dict.dict_get(crate::interned!("__path__"))?.is_some()
            && dict.dict_get(crate::interned!("__doc__"))?.is_none()
        {
            return Ok(None);
        }
    } else if module.getattr_opt(crate::interned!("__path__"))?.is_some() {
        return Ok(None);
    }
    // A module another thread is still importing: `__import__` waits for it.
    if let Some(spec) = module.getattr_opt(crate::interned!("__spec__"))? {
        if !spec.is_none() {
            if let Some(flag) = spec.getattr_opt(crate::interned!("_initializing"))? {
                if flag.is_true()? {
                    return Ok(None);
                }
            }
        }
    }
    Ok(Some(module))
}

/// The `__import__` that `PyImport_Import` would call now: the one in the `__builtins__` of the
/// running frame's globals. `None` without a frame (it then imports `builtins` itself) or when the
/// lookup fails (it then raises: the caller takes that path to get the same error).
fn current_import_function() -> Option<Obj> {
    // SAFETY: a borrowed reference to the running frame's globals, or NULL.
    let globals = unsafe { ffi::PyEval_GetGlobals() };
    if globals.is_null() {
        return None;
    }
    let globals = Obj::from_borrowed(globals);
    let builtins = globals.dict_get(crate::interned!("__builtins__")).ok()??;
    if builtins.is_dict() {
        builtins.dict_get(crate::interned!("__import__")).ok()?
    } else {
        builtins.getattr_opt(crate::interned!("__import__")).ok()?
    }
}

/// `sys.getrecursionlimit()`.
pub fn recursion_limit() -> usize {
    let r = unsafe { ffi::Py_GetRecursionLimit() };
    if r < 0 {
        0
    } else {
        r as usize
    }
}

// ---- type predicates ----

impl Obj {
    #[inline]
    pub fn is_type(&self) -> bool {
        unsafe { ffi::PyType_Check(self.as_ptr()) != 0 }
    }
    #[inline]
    pub fn is_tuple(&self) -> bool {
        unsafe { ffi::PyTuple_Check(self.as_ptr()) != 0 }
    }
    #[inline]
    pub fn is_dict(&self) -> bool {
        unsafe { ffi::PyDict_Check(self.as_ptr()) != 0 }
    }
    #[inline]
    pub fn is_str(&self) -> bool {
        unsafe { ffi::PyUnicode_Check(self.as_ptr()) != 0 }
    }
    #[inline]
    pub fn is_int(&self) -> bool {
        unsafe { ffi::PyLong_Check(self.as_ptr()) != 0 }
    }
    /// A `set` or a subclass of it (not a frozenset).
    #[inline]
    pub fn is_set(&self) -> bool {
        unsafe { ffi::PySet_Check(self.as_ptr()) != 0 }
    }
    #[inline]
    pub fn is_callable(&self) -> bool {
        unsafe { ffi::PyCallable_Check(self.as_ptr()) != 0 }
    }
    /// Whether the type's flags include `Py_TPFLAGS_HEAPTYPE` (self must be a type).
    pub fn is_heap_type(&self) -> bool {
        let flags = unsafe { ffi::PyType_GetFlags(self.as_ptr() as *mut ffi::PyTypeObject) };
        flags & (1 << 9) != 0
    }
}

/// The `tp_new` slot of a type, where it can be read under the stable ABI.
enum TypeNew {
    Slot(layout37::NewFunc),
    Missing,
    /// Not readable (static types on 3.8/3.9): go through `cls.__new__`.
    Unknown,
}

fn type_new_slot(cls: &Obj) -> TypeNew {
    let tp = cls.as_ptr() as *mut ffi::PyTypeObject;
    if version::running() >= (3, 10) || cls.is_heap_type() {
        let p = unsafe { ffi::PyType_GetSlot(tp, ffi::Py_tp_new) };
        if p.is_null() {
            // A heap type's NULL slot (or a lookup error, which we clear) both mean "no __new__".
            unsafe { ffi::PyErr_Clear() };
            return TypeNew::Missing;
        }
        return TypeNew::Slot(unsafe {
            std::mem::transmute::<*mut std::os::raw::c_void, layout37::NewFunc>(p)
        });
    }
    if version::is_frozen_layout() {
        let head = unsafe { &*(tp as *const layout37::TypeObjectHead37) };
        return match head.tp_new {
            Some(f) => TypeNew::Slot(f),
            None => TypeNew::Missing,
        };
    }
    TypeNew::Unknown
}

/// Whether the type `cls` has a `tp_new` slot (the C unpickler refuses NEWOBJ for one without).
pub fn type_has_new(cls: &Obj) -> PyResult<bool> {
    match type_new_slot(cls) {
        TypeNew::Missing => Ok(false),
        TypeNew::Slot(_) => Ok(true),
        TypeNew::Unknown => {
            // A static type: its slot is set iff it or a base other than `object` defines
            // `__new__` in its own dict (`type_ready` adds the wrapper for a slot of its own, and
            // inherits the slot from any base but `object`).
            let mro = cls.getattr(crate::interned!("__mro__"))?;
            let object = types::object().as_obj();
            for base in mro.tuple_items()? {
                if base.is(&object) {
                    continue;
                }
                let dict = base.getattr(crate::interned!("__dict__"))?;
                if dict.get_item(crate::interned!("__new__")).is_ok() {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// `cls.tp_new(cls, args, kwargs)` as the C unpickler calls it for NEWOBJ/NEWOBJ_EX; `Ok(None)` when
/// the type has no `tp_new`. `cls` must be a type and `args` a tuple, `kwargs` a dict.
pub fn call_type_new(cls: &Obj, args: &Obj, kwargs: Option<&Obj>) -> PyResult<Option<Obj>> {
    match type_new_slot(cls) {
        TypeNew::Missing => Ok(None),
        TypeNew::Slot(f) => {
            let kw = kwargs.map_or(std::ptr::null_mut(), |k| k.as_ptr());
            let r = unsafe { f(cls.as_ptr() as *mut ffi::PyTypeObject, args.as_ptr(), kw) };
            Obj::from_owned(r).map(Some)
        }
        TypeNew::Unknown => {
            let new = cls.getattr(crate::interned!("__new__"))?;
            let args = args.tuple_items()?;
            let mut items = alloc::with_capacity(args.len() + 1)?;
            items.push(cls.clone());
            items.extend(args);
            new.call(&new_tuple(items)?, kwargs).map(Some)
        }
    }
}

// ---- text and number parsing helpers the C unpickler gets from libc/CPython ----

/// `bytes` decoded from a Python-escaped byte string (the STRING opcode's `'...'` body).
pub fn bytes_decode_escape(data: &[u8]) -> PyResult<Obj> {
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

/// Parses the longest float prefix of `text` (which must be NUL-terminated) with CPython's own
/// parser; returns the value and the number of bytes consumed. Raises ValueError if no prefix parses.
pub fn parse_float_prefix(text_nul: &[u8]) -> PyResult<(f64, usize)> {
    let start = text_nul.as_ptr() as *const c_char;
    let mut end: *mut c_char = std::ptr::null_mut();
    let v = unsafe { ffi::PyOS_string_to_double(start, &mut end, ffi::PyExc_OverflowError) };
    if v == -1.0 && unsafe { !ffi::PyErr_Occurred().is_null() } {
        return Err(fetch_error());
    }
    Ok((v, end as usize - start as usize))
}

/// Interns an exact str in place (as the C unpickler does for instance `__dict__` keys).
pub fn intern_in_place(s: Obj) -> Obj {
    let mut p = s.as_ptr();
    std::mem::forget(s);
    unsafe { ffi::PyUnicode_InternInPlace(&mut p) };
    Obj(unsafe { NonNull::new_unchecked(p) })
}

/// Builds an exception instance of class `ty` with one argument (e.g. `KeyError(key)`).
pub fn error_with_value(ty: &PyAny, value: &Obj) -> PyErr {
    match Obj::of(ty).call1(value) {
        Ok(instance) => {
            let py = unsafe { Python::assume_gil_acquired() };
            PyErr::from_instance(instance.as_any(py))
        }
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
        let encoded = Obj::from_owned(unsafe {
            ffi::PyUnicode_AsEncodedString(s.as_ptr(), c"utf-8".as_ptr(), c"surrogatepass".as_ptr())
        });
        match encoded {
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
