//! The default `Unpickler.find_class`: Python 2 name mapping, import, and attribute lookup (dotted
//! paths from protocol 4 on).

use pyo3::exceptions::{PyAttributeError, PyRuntimeError};
use pyo3::prelude::*;

use crate::ffi::{self, Obj};
use crate::tables;

/// Resolves `module_name.global_name` the way `_pickle.Unpickler.find_class` does.
pub fn find_class(
    module_name: &Obj,
    global_name: &Obj,
    proto: u8,
    fix_imports: bool,
) -> PyResult<Obj> {
    audit(module_name, global_name)?;
    let (module_name, global_name) = mapped_names(module_name, global_name, proto, fix_imports)?;
    import_and_get(&module_name, &global_name, proto)
}

/// The `pickle.find_class` audit event (3.8+).
pub fn audit(module_name: &Obj, global_name: &Obj) -> PyResult<()> {
    if let Some(raised) = ffi::audit::two_objects(c"pickle.find_class", module_name, global_name) {
        return raised;
    }
    if let Some(audit) = &tables::get().audit {
        audit.call(
            &ffi::tuple(&[
                crate::interned!("pickle.find_class"),
                module_name,
                global_name,
            ])?,
            None,
        )?;
    }
    Ok(())
}

/// The names a pickle's global resolves to: its own, or their Python 3 equivalents for the
/// Python 2 names of protocols 0-2 when `fix_imports`.
pub fn mapped_names(
    module_name: &Obj,
    global_name: &Obj,
    proto: u8,
    fix_imports: bool,
) -> PyResult<(Obj, Obj)> {
    if proto < 3 && fix_imports {
        map_2to3(module_name, global_name)
    } else {
        Ok((module_name.clone(), global_name.clone()))
    }
}

/// Imports `module_name` and looks `global_name` up in it (names already mapped).
pub fn import_and_get(module_name: &Obj, global_name: &Obj, proto: u8) -> PyResult<Obj> {
    let module = ffi::import(module_name)?;
    get_attribute(&module, global_name, proto >= 4)
}

fn map_2to3(module_name: &Obj, global_name: &Obj) -> PyResult<(Obj, Obj)> {
    let t = tables::get();
    let key = ffi::tuple(&[module_name, global_name])?;
    if let Some(item) = t.name_mapping_2to3.dict_get(&key)? {
        if !item.is_tuple() || item.len()? != 2 {
            return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                "_compat_pickle.NAME_MAPPING values should be 2-tuples, not {}",
                item.type_name()
            )));
        }
        let parts = item.tuple_items()?;
        if !parts[0].is_str() || !parts[1].is_str() {
            return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                "_compat_pickle.NAME_MAPPING values should be pairs of str, not ({}, {})",
                parts[0].type_name(),
                parts[1].type_name()
            )));
        }
        return Ok((parts[0].clone(), parts[1].clone()));
    }
    if let Some(item) = t.import_mapping_2to3.dict_get(module_name)? {
        if !item.is_str() {
            return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                "_compat_pickle.IMPORT_MAPPING values should be strings, not {}",
                item.type_name()
            )));
        }
        return Ok((item, global_name.clone()));
    }
    Ok((module_name.clone(), global_name.clone()))
}

/// `getattr(obj, name)`, following dotted paths when `allow_qualname` (refusing `<locals>`).
pub fn get_attribute(obj: &Obj, name: &Obj, allow_qualname: bool) -> PyResult<Obj> {
    let not_found = || {
        crate::errors::new_fmt::<PyAttributeError>(format_args!(
            "Can't get attribute {} on {}",
            name.repr_string(),
            obj.repr_string()
        ))
    };
    let text = name.str_utf8()?;
    if !allow_qualname || !text.contains(&b'.') {
        return ffi::modules::module_attr(obj, name)?.ok_or_else(not_found);
    }
    if text.split(|&b| b == b'.').any(|part| part == b"<locals>") {
        return Err(crate::errors::new_fmt::<PyAttributeError>(format_args!(
            "Can't get local attribute {} on {}",
            name.repr_string(),
            obj.repr_string()
        )));
    }
    let mut current = obj.clone();
    for part in text.split(|&b| b == b'.') {
        // Each part of valid UTF-8 split at an ASCII byte is valid UTF-8.
        let part = std::str::from_utf8(part).map_err(|_| not_found())?;
        match ffi::modules::module_attr(&current, &ffi::new_str(part)?)? {
            Some(next) => current = next,
            None => return Err(not_found()),
        }
    }
    Ok(current)
}
