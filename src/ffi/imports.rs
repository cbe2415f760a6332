//! What `PyImport_Import` consults before it imports: the `__import__` function it would call and
//! the dict of a module object (see `crate::unpickler::imported`).

use pyo3::ffi;
use pyo3::prelude::*;

use super::{Obj, TypeRef};

/// The `__import__` that `PyImport_Import` would call now: the one in the `__builtins__` of the
/// running frame's globals. `None` without a frame (it then imports `builtins` itself) or when the
/// lookup fails (it then raises: the caller takes that path to get the same error).
pub fn current_import_function() -> Option<Obj> {
    // SAFETY: a borrowed reference to the running frame's globals, or NULL.
    let globals = unsafe { ffi::PyEval_GetGlobals() };
    if globals.is_null() {
        return None;
    }
    let globals = Obj::from_borrowed(globals);
    let builtins = globals.get_item(crate::interned!("__builtins__")).ok()?;
    if builtins.is_dict() {
        builtins.dict_get(crate::interned!("__import__")).ok()?
    } else {
        builtins.getattr(crate::interned!("__import__")).ok()
    }
}

/// Whether `obj` is exactly a module (not a subclass, whose attribute lookup may be anything).
pub fn is_exact_module(obj: &Obj) -> bool {
    obj.is_exact_type(TypeRef(std::ptr::addr_of_mut!(ffi::PyModule_Type)))
}

/// Whether `obj` is a function implemented in C (`builtin_function_or_method`).
pub fn is_builtin_function(obj: &Obj) -> bool {
    obj.is_exact_type(TypeRef(std::ptr::addr_of_mut!(ffi::PyCFunction_Type)))
}

/// The `__dict__` of an exact module.
pub fn module_dict(module: &Obj) -> PyResult<Obj> {
    // SAFETY: a borrowed reference to the module's dict (never NULL for a module object).
    let dict = unsafe { ffi::PyModule_GetDict(module.as_ptr()) };
    if dict.is_null() {
        return Err(super::fetch_error());
    }
    Ok(Obj::from_borrowed(dict))
}
