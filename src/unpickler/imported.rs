//! Finding an already imported module without the cost of `PyImport_Import`, with the same result.
//!
//! `PyImport_Import(name)` calls `__import__(name, globals, globals, ['__doc__'], 0)` and returns
//! `sys.modules[name]`. When `__import__` is the builtin one and the module is in `sys.modules`,
//! fully initialised, that call changes nothing: it finds the module there, waits for nothing, and
//! `'__doc__'`, which every module has, needs no submodule import. Then `sys.modules[name]` is the
//! answer, found with a few dict lookups instead of a call through the import machinery (which
//! costs as much as loading a small pickle). In every other case (an `__import__` override, a
//! module not imported yet or still initialising, a module subclass, a module-level
//! `__getattr__`) the import is made as `PyImport_Import` makes it.

use once_cell::sync::OnceCell;
use pyo3::prelude::*;

use crate::ffi::{self, imports, Obj};
use crate::tables;

/// `builtins.__import__` when the module was set up, if it was the builtin function then.
fn builtin_import() -> Option<&'static Obj> {
    static BUILTIN: OnceCell<Option<Obj>> = OnceCell::new();
    BUILTIN
        .get_or_init(|| {
            let builtins = ffi::import(crate::interned!("builtins")).ok()?;
            let import = builtins.getattr(crate::interned!("__import__")).ok()?;
            imports::is_builtin_function(&import).then_some(import)
        })
        .as_ref()
}

/// The module `PyImport_Import(name)` returns.
pub fn import_module(name: &Obj) -> PyResult<Obj> {
    match already_imported(name) {
        Some(module) => Ok(module),
        None => ffi::import(name),
    }
}

fn already_imported(name: &Obj) -> Option<Obj> {
    let builtin = builtin_import()?;
    if !imports::current_import_function()?.is(builtin) {
        return None;
    }
    let module = tables::get().sys_modules.dict_get(name).ok()??;
    if !imports::is_exact_module(&module) {
        return None;
    }
    let dict = imports::module_dict(&module).ok()?;
    let has = |key: &Obj| dict.dict_get(key).ok().flatten();
    if has(crate::interned!("__getattr__")).is_some() {
        return None;
    }
    if has(crate::interned!("__path__")).is_some() && has(crate::interned!("__doc__")).is_none() {
        return None;
    }
    if let Some(spec) = has(crate::interned!("__spec__")) {
        if !spec.is_none() {
            let initializing = spec
                .getattr_opt(crate::interned!("_initializing"))
                .ok()?
                .map_or(Ok(false), |flag| flag.is_true())
                .ok()?;
            if initializing {
                return None;
            }
        }
    }
    Some(module)
}
