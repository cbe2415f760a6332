//! Module-level functions with a cheap calling convention for the common argument shapes.
//!
//! PyO3's generated wrappers parse every call generically (under abi3 each keyword name is
//! converted to a Rust string, in a new bytes object). A [`FastFunction`] is a builtin function
//! whose handler sees the positional arguments and the `(name, value)` keyword pairs as borrowed
//! objects; when the handler does not recognise the call it answers [`Fallback`] and the call is
//! passed on unchanged to a second function (the PyO3 one), so every error and edge case behaves
//! exactly as it does there.
//!
//! The convention is `METH_FASTCALL | METH_KEYWORDS` (arguments in a C array, keyword names in a
//! tuple) on 3.7 and later, where CPython calls it with the same signature in every version, and
//! `METH_VARARGS | METH_KEYWORDS` on 3.6.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use once_cell::sync::OnceCell;

use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;
use smallvec::SmallVec;

use super::Obj;

const METH_FASTCALL: c_int = 0x0080;

/// Room for this many fast functions; each is created with its own slot number.
pub const SLOTS: usize = 3;
static TARGETS: [OnceCell<Target>; SLOTS] = [OnceCell::new(), OnceCell::new(), OnceCell::new()];

/// A `METH_FASTCALL | METH_KEYWORDS` function.
type FastWithKeywords = unsafe extern "C" fn(
    *mut PyObject,
    *const *mut PyObject,
    Py_ssize_t,
    *mut PyObject,
) -> *mut PyObject;

/// The handler did not take the call: run the fallback function instead.
pub struct Fallback;

/// A handler: positional arguments and `(name, value)` keyword pairs in, the result or an
/// error out, or [`Fallback`] to have the call made to the fallback function instead.
pub type Handler = fn(&[Obj], &[(&Obj, &Obj)]) -> Result<PyResult<Obj>, Fallback>;

struct Target {
    handler: Handler,
    fallback: Obj,
}

/// Creates the builtin function `name` of `module` (its `__doc__` and text signature come from
/// `doc`, in the `name(sig)\n--\n\ndoc` form). `SLOT` (below [`SLOTS`]) is this function's own.
pub fn new_function<const SLOT: usize>(
    module: &Obj,
    name: &'static CStr,
    doc: &'static CStr,
    handler: Handler,
    fallback: Obj,
) -> PyResult<Obj> {
    let fast = super::version::running() >= (3, 7);
    let meth: ffi::PyCFunction = if fast {
        // SAFETY: with METH_FASTCALL | METH_KEYWORDS CPython calls the pointer with this signature.
        unsafe { std::mem::transmute::<FastWithKeywords, ffi::PyCFunction>(call_fast::<SLOT>) }
    } else {
        // SAFETY: with METH_VARARGS | METH_KEYWORDS CPython calls the pointer with this signature.
        unsafe {
            std::mem::transmute::<ffi::PyCFunctionWithKeywords, ffi::PyCFunction>(
                call_varargs::<SLOT>,
            )
        }
    };
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: Some(meth),
        ml_flags: if fast {
            METH_FASTCALL | ffi::METH_KEYWORDS
        } else {
            ffi::METH_VARARGS | ffi::METH_KEYWORDS
        },
        ml_doc: doc.as_ptr() as *const c_char,
    }));
    let slot = TARGETS
        .get(SLOT)
        .ok_or_else(|| pyo3::exceptions::PySystemError::new_err("fastcall: no such slot"))?;
    if slot.set(Target { handler, fallback }).is_err() {
        return Err(pyo3::exceptions::PySystemError::new_err(
            "fastcall: slot already used",
        ));
    }
    // Bound to the module, like the functions PyO3 makes: `<built-in function name>`.
    let module_name = module.getattr(&super::str::new_str("__name__")?)?;
    // SAFETY: `def` is leaked (lives for ever, as a function's `PyMethodDef` must), `module` and
    // its name are live objects the function takes its own references to.
    Obj::from_owned(unsafe { ffi::PyCFunction_NewEx(def, module.as_ptr(), module_name.as_ptr()) })
}

fn target_of(slot: usize) -> Option<&'static Target> {
    TARGETS.get(slot).and_then(|t| t.get())
}

/// Runs the handler with panics caught, and hands the call to the fallback when asked.
fn dispatch(
    target: &Target,
    args: &[Obj],
    kwargs: &[(&Obj, &Obj)],
    call_fallback: impl FnOnce(&Obj) -> PyResult<Obj>,
) -> *mut PyObject {
    // SAFETY: called from the two trampolines below, which CPython runs with the GIL held; the
    // pool is dropped at the end of this call, before they return, as PyO3 requires.
    let pool = unsafe { pyo3::GILPool::new() };
    let py = pool.python();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match (target.handler)(args, kwargs) {
            Ok(result) => result,
            Err(Fallback) => call_fallback(&target.fallback),
        }
    }));
    let result = match outcome {
        Ok(r) => r,
        Err(_) => Err(pyo3::exceptions::PySystemError::new_err(
            "pickle5_rs: internal error (panic)",
        )),
    };
    match result {
        Ok(obj) => obj.into_raw(),
        Err(e) => {
            e.restore(py);
            std::ptr::null_mut()
        }
    }
}

/// Borrowed views of `n` object pointers as `Obj`s (which are never dropped from the slice).
unsafe fn borrowed<'a>(ptr: *const *mut PyObject, n: usize) -> &'a [Obj] {
    if n == 0 {
        return &[];
    }
    // SAFETY: `Obj` is a transparent non-null pointer, and the caller passes `n` live object
    // pointers at `ptr` that stay alive (and in place) for `'a`.
    unsafe { std::slice::from_raw_parts(ptr as *const Obj, n) }
}

/// The target of `slot`, or None with SystemError set (a function called before registration).
fn target_or_raise(slot: usize) -> Option<&'static Target> {
    let target = target_of(slot);
    if target.is_none() {
        // SAFETY: a live exception class and a NUL-terminated message; the GIL is held.
        unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c"fastcall: unset slot".as_ptr()) };
    }
    target
}

/// NULL with MemoryError set: a trampoline's answer when it cannot allocate.
#[cold]
fn no_memory() -> *mut PyObject {
    // SAFETY: sets MemoryError and returns NULL; the GIL is held.
    unsafe { ffi::PyErr_NoMemory() }
}

// CPython calls both trampolines with the GIL held and with arguments that stay alive for the
// duration of the call: for METH_FASTCALL | METH_KEYWORDS, `nargs` positional values followed by
// one value per name of `kwnames` (a tuple of str, or NULL) at `args`; for METH_VARARGS |
// METH_KEYWORDS, a tuple and a dict (or NULL).

unsafe extern "C" fn call_fast<const SLOT: usize>(
    _module: *mut PyObject,
    args: *const *mut PyObject,
    nargs: Py_ssize_t,
    kwnames: *mut PyObject,
) -> *mut PyObject {
    let target = match target_or_raise(SLOT) {
        Some(t) => t,
        None => return std::ptr::null_mut(),
    };
    let nargs = nargs.max(0) as usize;
    let nkw = if kwnames.is_null() {
        0
    } else {
        // SAFETY: `kwnames` is a live tuple (see above).
        unsafe { ffi::PyTuple_Size(kwnames) }.max(0) as usize
    };
    // SAFETY: `args` holds `nargs + nkw` live pointers for the duration of the call (see above),
    // which outlasts every use of the two slices.
    let (positional, values) = unsafe { (borrowed(args, nargs), borrowed(args.add(nargs), nkw)) };
    let mut name_objs: SmallVec<[Obj; 8]> = SmallVec::new();
    if name_objs.try_reserve(nkw).is_err() {
        return no_memory();
    }
    if nkw > 0 {
        let tuple = Obj::from_borrowed(kwnames);
        for i in 0..nkw {
            match tuple.tuple_get(i) {
                Some(n) => name_objs.push(n),
                None => return std::ptr::null_mut(),
            }
        }
    }
    let mut pairs: SmallVec<[(&Obj, &Obj); 8]> = SmallVec::new();
    if pairs.try_reserve(nkw).is_err() {
        return no_memory();
    }
    pairs.extend(name_objs.iter().zip(values));
    dispatch(target, positional, &pairs, |fallback| {
        let tuple = super::new_tuple(positional.iter().cloned())?;
        let kwargs = if nkw > 0 {
            let d = super::new_dict()?;
            for (n, v) in &pairs {
                d.dict_set(n, v)?;
            }
            Some(d)
        } else {
            None
        };
        fallback.call(&tuple, kwargs.as_ref())
    })
}

unsafe extern "C" fn call_varargs<const SLOT: usize>(
    _module: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    let target = match target_or_raise(SLOT) {
        Some(t) => t,
        None => return std::ptr::null_mut(),
    };
    let args = Obj::from_borrowed(args);
    let kwargs = if kwargs.is_null() {
        None
    } else {
        Some(Obj::from_borrowed(kwargs))
    };
    let nargs = args.tuple_len();
    let mut positional: SmallVec<[Obj; 4]> = SmallVec::new();
    if positional.try_reserve(nargs).is_err() {
        return no_memory();
    }
    positional.extend((0..nargs).filter_map(|i| args.tuple_get(i)));
    let items = match &kwargs {
        Some(d) => match d.dict_items() {
            Ok(items) => items,
            Err(_) => return no_memory(),
        },
        None => Vec::new(),
    };
    let mut pairs: SmallVec<[(&Obj, &Obj); 8]> = SmallVec::new();
    if pairs.try_reserve(items.len()).is_err() {
        return no_memory();
    }
    pairs.extend(items.iter().map(|(k, v)| (k, v)));
    dispatch(target, &positional, &pairs, |fallback| {
        fallback.call(&args, kwargs.as_ref())
    })
}
