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
    let spec = if module.is_exact_type(types::module()) {
        // SAFETY: an exact module (checked); its dict, borrowed and never NULL for a module.
        let dict = Obj::from_borrowed(unsafe { ffi::PyModule_GetDict(module.as_ptr()) });
        if dict.dict_get(crate::interned!("__path__"))?.is_some()
            && dict.dict_get(crate::interned!("__doc__"))?.is_none()
        {
            return Ok(None);
        }
        // What `getattr(module, "__spec__")` finds: a module's type defines no `__spec__`.
        match dict.dict_get(crate::interned!("__spec__"))? {
            Some(spec) => Some(spec),
            None => module.getattr_opt(crate::interned!("__spec__"))?,
        }
    } else if module.getattr_opt(crate::interned!("__path__"))?.is_some() {
        return Ok(None);
    } else {
        module.getattr_opt(crate::interned!("__spec__"))?
    };
    // A module another thread is still importing: `__import__` waits for it.
    if let Some(spec) = spec {
        if !spec.is_none() && is_initializing(&spec)? {
            return Ok(None);
        }
    }
    Ok(Some(module))
}

/// `spec._initializing`, true while the module is being imported. For importlib's own
/// `ModuleSpec` (which defines no such class attribute) the instance dict answers.
fn is_initializing(spec: &Obj) -> PyResult<bool> {
    static MODULE_SPEC: once_cell::sync::OnceCell<Option<Obj>> = once_cell::sync::OnceCell::new();
    let module_spec = MODULE_SPEC.get_or_init(|| {
        let bootstrap = modules_dict()
            .dict_get(crate::interned!("_frozen_importlib"))
            .ok()??;
        bootstrap.getattr_opt(crate::interned!("ModuleSpec")).ok()?
    });
    let name = crate::interned!("_initializing");
    let flag = match module_spec {
        Some(cls) if spec.type_obj().is(cls) => spec.generic_get_dict()?.dict_get(name)?,
        _ => spec.getattr_opt(name)?,
    };
    match flag {
        Some(flag) => flag.is_true(),
        None => Ok(false),
    }
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
    let name = crate::interned!("__import__");
    if builtins.is_dict() {
        builtins.dict_get(name).ok()?
    } else if builtins.is_exact_type(types::module()) {
        // SAFETY: an exact module (checked); its dict, borrowed and never NULL for a module.
        let dict = Obj::from_borrowed(unsafe { ffi::PyModule_GetDict(builtins.as_ptr()) });
        match dict.dict_get(name).ok()? {
            Some(import) => Some(import),
            None => builtins.getattr_opt(name).ok()?,
        }
    } else {
        builtins.getattr_opt(name).ok()?
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

/// `getattr(obj, name, None)` restricted to `AttributeError`, where `obj` is usually a module.
/// A plain module's attribute with an ordinary name is its dict entry (the module type defines
/// only dunder names), so that is read first, without the type lookup that misses its cache for
/// every name read from a pickle; anything else takes `getattr`.
pub fn module_attr(obj: &Obj, name: &Obj) -> PyResult<Option<Obj>> {
    if obj.is_exact_type(types::module())
        && name.is_exact_type(types::str())
        && !name.str_utf8_fast().is_some_and(|t| t.starts_with(b"__"))
    {
        // SAFETY: an exact module (checked); its dict, borrowed and never NULL for a module.
        let dict = Obj::from_borrowed(unsafe { ffi::PyModule_GetDict(obj.as_ptr()) });
        if let Some(found) = dict.dict_get(name)? {
            return Ok(Some(found));
        }
    }
    obj.getattr_opt(name)
}
