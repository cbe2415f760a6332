//! Global names: the Python 2 mapping of `_compat_pickle` in both directions, and dotted paths.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::tables;
use crate::errors;
use crate::ffi::Obj;

/// Which way [`map_py2_names`] maps.
#[derive(Clone, Copy)]
pub enum Py2Names {
    /// The pickler, protocols 0-2 with `fix_imports`: Python 3 names written as Python 2's
    /// (`_compat_pickle.REVERSE_*`).
    ToPython2,
    /// The unpickler, protocols 0-2 with `fix_imports`: Python 2 names read as Python 3's
    /// (`_compat_pickle.NAME_MAPPING` / `IMPORT_MAPPING`).
    FromPython2,
}

impl Py2Names {
    fn tables(self) -> (&'static Obj, &'static Obj, &'static str, &'static str) {
        let t = tables();
        match self {
            Py2Names::ToPython2 => (
                &t.name_mapping_3to2,
                &t.import_mapping_3to2,
                "REVERSE_NAME_MAPPING",
                "REVERSE_IMPORT_MAPPING",
            ),
            Py2Names::FromPython2 => (
                &t.name_mapping_2to3,
                &t.import_mapping_2to3,
                "NAME_MAPPING",
                "IMPORT_MAPPING",
            ),
        }
    }

    /// The type of a bad table value as the error names it: the pickler as `_pickle` does (the
    /// module-qualified name of a static type outside builtins), the unpickler by `__name__`.
    fn type_name(self, value: &Obj) -> String {
        match self {
            Py2Names::ToPython2 => errors::tp_name(&value.type_obj()).to_string(),
            Py2Names::FromPython2 => value.type_name().to_string(),
        }
    }
}

/// `(module_name, global_name)` mapped through `_compat_pickle`'s tables: the pair's entry in the
/// name mapping, else the module's in the import mapping (the global name kept), else unchanged.
pub fn map_py2_names(
    direction: Py2Names,
    module_name: &Obj,
    global_name: &Obj,
) -> PyResult<(Obj, Obj)> {
    let (name_mapping, import_mapping, name_table, import_table) = direction.tables();
    let key = crate::ffi::tuple(&[module_name, global_name])?;
    if let Some(item) = name_mapping.dict_get(&key)? {
        if !item.is_tuple() || item.tuple_len() != 2 {
            return Err(errors::new_fmt::<PyRuntimeError>(format_args!(
                "_compat_pickle.{} values should be 2-tuples, not {}",
                name_table,
                direction.type_name(&item)
            )));
        }
        let (m, n) = match (item.tuple_get(0), item.tuple_get(1)) {
            (Some(m), Some(n)) => (m, n),
            _ => unreachable!("a 2-tuple has two items"),
        };
        if !m.is_str() || !n.is_str() {
            return Err(errors::new_fmt::<PyRuntimeError>(format_args!(
                "_compat_pickle.{} values should be pairs of str, not ({}, {})",
                name_table,
                direction.type_name(&m),
                direction.type_name(&n)
            )));
        }
        return Ok((m, n));
    }
    if let Some(item) = import_mapping.dict_get(module_name)? {
        if !item.is_str() {
            return Err(errors::new_fmt::<PyRuntimeError>(format_args!(
                "_compat_pickle.{} values should be strings, not {}",
                import_table,
                direction.type_name(&item)
            )));
        }
        return Ok((item, global_name.clone()));
    }
    Ok((module_name.clone(), global_name.clone()))
}

/// `name.split(".")`, or `None` when a part is `<locals>`: a function's local object, which no
/// lookup by name can find (each side raises its own error).
pub fn dotted_path(name: &Obj) -> PyResult<Option<Vec<Obj>>> {
    let parts = name.str_split_dots()?;
    if parts.iter().any(|part| part.str_eq("<locals>")) {
        return Ok(None);
    }
    Ok(Some(parts))
}

/// Follows `path` from `obj` attribute by attribute: the object found and its parent (`obj`
/// itself for a one-part path), or `None` when an attribute is missing.
pub fn follow_path(obj: &Obj, path: &[Obj]) -> PyResult<Option<(Obj, Obj)>> {
    let mut current = obj.clone();
    let mut parent = obj.clone();
    for name in path {
        match crate::ffi::modules::module_attr(&current, name)? {
            Some(next) => parent = std::mem::replace(&mut current, next),
            None => return Ok(None),
        }
    }
    Ok(Some((current, parent)))
}
