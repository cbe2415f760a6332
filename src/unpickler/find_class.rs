//! The default `Unpickler.find_class`: Python 2 name mapping, import, and attribute lookup (dotted
//! paths from protocol 4 on).

use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;

use crate::ffi::{self, Obj};
use crate::lookup::{self, tables, Py2Names};

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
    if let Some(audit) = &tables().audit {
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
        lookup::map_py2_names(Py2Names::FromPython2, module_name, global_name)
    } else {
        Ok((module_name.clone(), global_name.clone()))
    }
}

/// Imports `module_name` and looks `global_name` up in it (names already mapped).
pub fn import_and_get(module_name: &Obj, global_name: &Obj, proto: u8) -> PyResult<Obj> {
    let module = ffi::import(module_name)?;
    get_attribute(&module, global_name, proto >= 4)
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
    let Some(path) = lookup::dotted_path(name)? else {
        return Err(crate::errors::new_fmt::<PyAttributeError>(format_args!(
            "Can't get local attribute {} on {}",
            name.repr_string(),
            obj.repr_string()
        )));
    };
    match lookup::follow_path(obj, &path)? {
        Some((found, _)) => Ok(found),
        None => Err(not_found()),
    }
}
