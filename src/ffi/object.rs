//! [`Obj`], the owned object reference everything outside `ffi` works with, and its generic
//! operations: identity and type, attributes, calls, truth, size, items, iteration, `str`/`repr`.
//!
//! # The invariants every `unsafe` block in `ffi` relies on
//!
//! - **The GIL is held.** Nothing in this crate runs except inside a call from Python (module
//!   initialisation, a method or function PyO3 or [`super::fastcall`] wraps, a slot trampoline),
//!   and no code here releases the GIL. So every C-API call below is made with it held, and
//!   [`gil`] may hand out the token.
//! - **An `Obj` is live.** It holds one strong reference to a non-null object; while an `&Obj` is
//!   borrowed its pointer is valid. C-API functions that accept any object are therefore sound on
//!   `obj.as_ptr()`; those that need a particular type say at each call what guarantees the type.
//! - **Raw pointers stay inside `ffi`.** The functions here that take a `*mut PyObject`
//!   ([`Obj::from_owned`], [`Obj::from_borrowed`], [`super::shutdown::call`], ...) are visible only
//!   within `ffi`; their callers pass pointers the C API just returned or that an `Obj` owns.

use std::ptr::NonNull;

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;
use pyo3::AsPyPointer;

use super::errors::{check, fetch_error, Text};
use super::types::TypeRef;
use super::{shutdown, stack};

/// What a `RecursionError` raised before calling into Python says.
const CALLING: &str = " while calling a Python object";

/// An owned (strong) reference to a Python object. Dropping it releases the reference; the GIL must
/// be held, which every holder guarantees by only living inside calls from Python.
#[repr(transparent)]
pub struct Obj(NonNull<PyObject>);

impl Obj {
    /// Takes ownership of a new reference returned by the C API; NULL means an exception is set.
    #[inline]
    pub(in crate::ffi) fn from_owned(ptr: *mut PyObject) -> PyResult<Obj> {
        match NonNull::new(ptr) {
            Some(p) => Ok(Obj(p)),
            None => Err(fetch_error()),
        }
    }

    /// Takes ownership of a new reference returned by the C API, where NULL needs no error fetched
    /// (the caller tells "absent" from "failed" itself).
    #[inline]
    pub(in crate::ffi) fn from_owned_opt(ptr: *mut PyObject) -> Option<Obj> {
        NonNull::new(ptr).map(Obj)
    }

    /// Takes ownership of a reference known to be non-null.
    ///
    /// # Safety
    /// `ptr` is a live object whose reference the caller owns and hands over.
    #[inline]
    pub(in crate::ffi) unsafe fn from_owned_unchecked(ptr: *mut PyObject) -> Obj {
        // SAFETY: the caller guarantees a live, so non-null, object.
        Obj(unsafe { NonNull::new_unchecked(ptr) })
    }

    /// A new strong reference to a borrowed pointer, which must be non-null and live.
    #[inline]
    pub(in crate::ffi) fn from_borrowed(ptr: *mut PyObject) -> Obj {
        // SAFETY: callers (all inside `ffi`) pass a live object, borrowed from an `Obj` or just
        // returned by the C API as a borrowed reference; the GIL is held.
        unsafe { ffi::Py_INCREF(ptr) };
        // SAFETY: a live object's address is not null.
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

    /// The object's address, for identity checks and for passing to the C API inside `ffi`.
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
    pub(in crate::ffi) fn into_raw(self) -> *mut PyObject {
        let p = self.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Hands the reference to PyO3.
    #[inline]
    pub fn into_py(self) -> pyo3::PyObject {
        let ptr = self.into_raw();
        // SAFETY: `ptr` is the one reference `self` owned, now transferred; the GIL is held.
        unsafe { pyo3::PyObject::from_owned_ptr(gil(), ptr) }
    }

    /// A PyO3 view of the object for the duration of the GIL.
    #[inline]
    pub fn as_any<'py>(&self, py: Python<'py>) -> &'py PyAny {
        // SAFETY: a live object; PyO3 registers a new reference in the GIL pool, so the borrow
        // outlives `self`.
        unsafe { py.from_borrowed_ptr(self.as_ptr()) }
    }

    // ---- type ----

    #[inline]
    pub fn type_ptr(&self) -> *mut ffi::PyTypeObject {
        // SAFETY: a live object (module notes); reading its type needs nothing else.
        unsafe { ffi::Py_TYPE(self.as_ptr()) }
    }

    /// The address of the object's type, for exact-type dispatch.
    #[inline]
    pub fn type_addr(&self) -> usize {
        self.type_ptr() as usize
    }

    #[inline]
    pub fn is_exact_type(&self, ty: TypeRef) -> bool {
        self.type_ptr() == ty.as_type_ptr()
    }

    pub fn type_obj(&self) -> Obj {
        Obj::from_borrowed(self.type_ptr() as *mut PyObject)
    }

    pub fn is_instance(&self, ty: TypeRef) -> PyResult<bool> {
        // SAFETY: a live object and a live type object (module notes).
        let r = unsafe { ffi::PyObject_IsInstance(self.as_ptr(), ty.as_type_ptr().cast()) };
        check(r).map(|_| r == 1)
    }

    // ---- attribute access ----

    pub fn getattr(&self, name: &Obj) -> PyResult<Obj> {
        // SAFETY: live objects (module notes); a new reference or NULL with an exception set.
        Obj::from_owned(unsafe { ffi::PyObject_GetAttr(self.as_ptr(), name.as_ptr()) })
    }

    /// `getattr(obj, name, None)` restricted to AttributeError: `Ok(None)` when absent.
    pub fn getattr_opt(&self, name: &Obj) -> PyResult<Option<Obj>> {
        // SAFETY: live objects (module notes); a new reference or NULL with an exception set.
        let ptr = unsafe { ffi::PyObject_GetAttr(self.as_ptr(), name.as_ptr()) };
        match Obj::from_owned_opt(ptr) {
            Some(value) => Ok(Some(value)),
            None => {
                let err = fetch_error();
                if err.is_instance::<pyo3::exceptions::PyAttributeError>(gil()) {
                    return Ok(None);
                }
                Err(err)
            }
        }
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
        // SAFETY: live objects (module notes); the call takes its own reference to `value`.
        check(unsafe { ffi::PyObject_SetAttr(self.as_ptr(), name.as_ptr(), value.as_ptr()) })
    }

    /// The instance `__dict__` (created if missing), as `PyObject_GenericGetDict`.
    pub fn generic_get_dict(&self) -> PyResult<Obj> {
        // SAFETY: a live object (module notes); NULL context is what the C pickler passes.
        Obj::from_owned(unsafe {
            super::raw::PyObject_GenericGetDict(self.as_ptr(), std::ptr::null_mut())
        })
    }

    // ---- calls ----

    pub fn call0(&self) -> PyResult<Obj> {
        // SAFETY: a new reference (the shared empty tuple) or NULL with an exception set.
        let args = Obj::from_owned(unsafe { ffi::PyTuple_New(0) })?;
        self.call(&args, None)
    }

    pub fn call1(&self, a: &Obj) -> PyResult<Obj> {
        self.call(&super::containers::tuple(&[a])?, None)
    }

    pub fn call2(&self, a: &Obj, b: &Obj) -> PyResult<Obj> {
        self.call(&super::containers::tuple(&[a, b])?, None)
    }

    /// `self(*args, **kwargs)`; `args` must be a tuple, `kwargs` a dict.
    pub fn call(&self, args: &Obj, kwargs: Option<&Obj>) -> PyResult<Obj> {
        stack::check(CALLING)?;
        let kw = kwargs.map_or(std::ptr::null_mut(), |k| k.as_ptr());
        Obj::from_owned(shutdown::call(self.as_ptr(), args.as_ptr(), kw))
    }

    /// `self(arg)` without building an argument tuple where the interpreter allows (3.8+).
    #[inline]
    pub fn call_one(&self, arg: &Obj) -> PyResult<Obj> {
        stack::check(CALLING)?;
        Obj::from_owned(shutdown::call_args(self.as_ptr(), &[arg.as_ptr()]))
    }

    /// `self(a, b)` likewise.
    #[inline]
    pub fn call_two(&self, a: &Obj, b: &Obj) -> PyResult<Obj> {
        stack::check(CALLING)?;
        Obj::from_owned(shutdown::call_args(
            self.as_ptr(),
            &[a.as_ptr(), b.as_ptr()],
        ))
    }

    /// `self.name(*args)`.
    pub fn call_method(&self, name: &Obj, args: &[&Obj]) -> PyResult<Obj> {
        let method = self.getattr(name)?;
        method.call(&super::containers::tuple(args)?, None)
    }

    #[inline]
    pub fn is_callable(&self) -> bool {
        // SAFETY: a live object (module notes).
        unsafe { ffi::PyCallable_Check(self.as_ptr()) != 0 }
    }

    // ---- protocols ----

    pub fn is_true(&self) -> PyResult<bool> {
        // SAFETY: a live object (module notes); 1, 0, or -1 with an exception set.
        let r = unsafe { ffi::PyObject_IsTrue(self.as_ptr()) };
        check(r).map(|_| r == 1)
    }

    pub fn is_none(&self) -> bool {
        // SAFETY: `Py_None` only reads the address of the `None` singleton.
        self.as_ptr() == unsafe { ffi::Py_None() }
    }

    pub fn len(&self) -> PyResult<usize> {
        // SAFETY: a live object (module notes); -1 with an exception set on failure.
        let n = unsafe { ffi::PyObject_Size(self.as_ptr()) };
        if n < 0 {
            return Err(fetch_error());
        }
        Ok(n as usize)
    }

    pub fn get_item(&self, key: &Obj) -> PyResult<Obj> {
        // SAFETY: live objects (module notes); a new reference or NULL with an exception set.
        Obj::from_owned(unsafe { ffi::PyObject_GetItem(self.as_ptr(), key.as_ptr()) })
    }

    pub fn set_item(&self, key: &Obj, value: &Obj) -> PyResult<()> {
        // SAFETY: live objects (module notes); the call takes its own references.
        check(unsafe { ffi::PyObject_SetItem(self.as_ptr(), key.as_ptr(), value.as_ptr()) })
    }

    /// `del self[key]`.
    pub fn del_item(&self, key: &Obj) -> PyResult<()> {
        // SAFETY: live objects (module notes); -1 with an exception set on failure.
        check(unsafe { ffi::PyObject_DelItem(self.as_ptr(), key.as_ptr()) })
    }

    /// `key in self` (`PySequence_Contains`).
    pub fn contains(&self, key: &Obj) -> PyResult<bool> {
        // SAFETY: live objects (module notes); 1, 0, or -1 with an exception set.
        match unsafe { ffi::PySequence_Contains(self.as_ptr(), key.as_ptr()) } {
            r if r < 0 => Err(fetch_error()),
            r => Ok(r == 1),
        }
    }

    pub fn iter(&self) -> PyResult<Obj> {
        // SAFETY: a live object (module notes); a new reference or NULL with an exception set.
        Obj::from_owned(unsafe { ffi::PyObject_GetIter(self.as_ptr()) })
    }

    /// Next item of an iterator; `Ok(None)` when exhausted.
    pub fn next(&self) -> PyResult<Option<Obj>> {
        // SAFETY: a live object (module notes); callers pass iterators (from `iter`, or checked
        // with `is_iterator`); a new reference, or NULL when exhausted or failed.
        let ptr = unsafe { ffi::PyIter_Next(self.as_ptr()) };
        match Obj::from_owned_opt(ptr) {
            Some(item) => Ok(Some(item)),
            None if super::errors::occurred() => Err(fetch_error()),
            None => Ok(None),
        }
    }

    /// Whether the object is an iterator (its type defines `__next__`), as `PyIter_Check`.
    pub fn is_iterator(&self) -> bool {
        let ty = self.type_ptr() as *mut PyObject;
        // SAFETY: a live type object and a NUL-terminated name.
        unsafe { ffi::PyObject_HasAttrString(ty, c"__next__".as_ptr()) != 0 }
    }

    // ---- text ----

    /// `str(self)`.
    pub fn str(&self) -> PyResult<Obj> {
        // SAFETY: a live object (module notes); a new reference or NULL with an exception set.
        Obj::from_owned(unsafe { ffi::PyObject_Str(self.as_ptr()) })
    }

    /// `repr(self)`.
    pub fn repr(&self) -> PyResult<Obj> {
        // SAFETY: a live object (module notes); a new reference or NULL with an exception set.
        Obj::from_owned(unsafe { ffi::PyObject_Repr(self.as_ptr()) })
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
}

// SAFETY: an `Obj` is only created, used and dropped while its thread holds the GIL, which
// serialises every access to the object; holders (pyclasses, statics) rely on that.
unsafe impl Send for Obj {}
// SAFETY: as for `Send`: shared access happens only under the GIL.
unsafe impl Sync for Obj {}

impl Clone for Obj {
    #[inline]
    fn clone(&self) -> Obj {
        Obj::from_borrowed(self.as_ptr())
    }
}

impl Drop for Obj {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `self` owns one reference, released once here; the GIL is held (module notes).
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Obj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Obj({:p})", self.0.as_ptr())
    }
}

impl pyo3::AsPyPointer for Obj {
    fn as_ptr(&self) -> *mut ffi::PyObject {
        Obj::as_ptr(self)
    }
}

/// The GIL token, for code that only runs inside calls from Python (every entry point of this crate).
#[inline]
pub fn gil() -> Python<'static> {
    // SAFETY: the GIL is held whenever code of this crate runs (module notes).
    unsafe { Python::assume_gil_acquired() }
}

/// `None` (a new reference).
#[inline]
pub fn none() -> Obj {
    // SAFETY: `Py_None` only reads the address of the `None` singleton, which lives for ever.
    Obj::from_borrowed(unsafe { ffi::Py_None() })
}

/// `builtins.getattr` and a sentinel no attribute can be, for [`Obj::getattr_if_present`].
fn quiet_getattr() -> PyResult<&'static (Obj, Obj)> {
    static QUIET: once_cell::sync::OnceCell<(Obj, Obj)> = once_cell::sync::OnceCell::new();
    QUIET.get_or_try_init(|| {
        let builtins = super::modules::import(crate::interned!("builtins"))?;
        let getattr = builtins.getattr(crate::interned!("getattr"))?;
        let object = super::types::object().as_obj();
        let missing = object.call0()?;
        Ok((getattr, missing))
    })
}
