//! Modules: `import` as `PyImport_Import` does it (with a shortcut for modules already loaded), and
//! the interpreter's module dict.

use pyo3::ffi;
use pyo3::prelude::*;

use super::object::Obj;
use super::types;

/// `PyImport_Import(name)`: `__import__(name)`, then `sys.modules[name]`.
pub fn import(name: &Obj) -> PyResult<Obj> {
    if let Some(module) = imported_module(name)? {
        return Ok(module);
    }
    // SAFETY: a live str (object.rs notes); a new reference or NULL with an exception set.
    Obj::from_owned(unsafe { ffi::PyImport_Import(name.as_ptr()) })
}

/// The module `name` when `PyImport_Import` would only look it up: `__import__(name, globals,
/// globals, ['__doc__'], 0)` is the builtin one (found, as `PyImport_Import` finds it, in the running
/// frame's `__builtins__`), the module is in the interpreter's module dict, fully initialised, and
/// (a package) has the `__doc__` the fromlist asks for. Saves the `__import__` call and, for
/// packages, importlib's Python-level fromlist handling; anything else takes the import.
fn imported_module(name: &Obj) -> PyResult<Option<Obj>> {
    match current_import_function() {
        Some(import) if import.is(&crate::lookup::tables().original_import) => {}
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
        // SAFETY: an exact module (checked); its dict, borrowed and never NULL for a module.
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

/// The interpreter's module dict (what `sys.modules` is at start-up), borrowed.
pub fn modules_dict() -> Obj {
    // SAFETY: a borrowed reference to the interpreter's module dict, which exists while the
    // interpreter runs code of ours.
    Obj::from_borrowed(unsafe { ffi::PyImport_GetModuleDict() })
}

/// `sys.modules` (a new reference), or `None` when it is missing.
pub fn sys_modules() -> Option<Obj> {
    // SAFETY: a NUL-terminated name; a borrowed reference or NULL (no exception set).
    let p = unsafe { ffi::PySys_GetObject(c"modules".as_ptr()) };
    std::ptr::NonNull::new(p).map(|p| Obj::from_borrowed(p.as_ptr()))
}
