//! Module-level tables the pickle format depends on, read once at import: copyreg's extension
//! registry and dispatch table, and `_compat_pickle`'s Python 2 name mappings. They are the
//! stdlib's own dict objects, so registrations made later through `copyreg` are seen.

use once_cell::sync::OnceCell;
use pyo3::prelude::*;

use crate::ffi::Obj;

pub struct Tables {
    /// copyreg.dispatch_table
    pub dispatch_table: Obj,
    /// copyreg._extension_registry: (module, name) -> code
    pub extension_registry: Obj,
    /// copyreg._inverted_registry: code -> (module, name)
    pub inverted_registry: Obj,
    /// copyreg._extension_cache: code -> object
    pub extension_cache: Obj,
    /// _compat_pickle.NAME_MAPPING / IMPORT_MAPPING (2.x -> 3.x)
    pub name_mapping_2to3: Obj,
    pub import_mapping_2to3: Obj,
    /// _compat_pickle.REVERSE_NAME_MAPPING / REVERSE_IMPORT_MAPPING (3.x -> 2.x)
    pub name_mapping_3to2: Obj,
    pub import_mapping_3to2: Obj,
    /// sys.audit on 3.8+ (pickle.find_class events).
    pub audit: Option<Obj>,
    /// types.MethodType
    pub method_type: Obj,
    /// sys.modules
    pub sys_modules: Obj,
    /// builtins.__import__ as it was at import: while it is unchanged, importing a module already
    /// in sys.modules may skip calling it.
    pub original_import: Obj,
}

static TABLES: OnceCell<Tables> = OnceCell::new();

fn dict_attr(module: &PyAny, name: &str) -> PyResult<Obj> {
    let value = module.getattr(name)?;
    if !value.is_instance::<pyo3::types::PyDict>()? {
        return Err(crate::errors::new_fmt::<pyo3::exceptions::PyRuntimeError>(
            format_args!(
                "{}.{} should be a dict, not {}",
                module.getattr("__name__")?,
                name,
                value.get_type().name()?
            ),
        ));
    }
    Ok(Obj::of(value))
}

pub fn init(py: Python) -> PyResult<()> {
    let copyreg = py.import("copyreg")?;
    let compat = py.import("_compat_pickle")?;
    let sys = py.import("sys")?;
    let tables = Tables {
        dispatch_table: dict_attr(copyreg, "dispatch_table")?,
        extension_registry: dict_attr(copyreg, "_extension_registry")?,
        inverted_registry: dict_attr(copyreg, "_inverted_registry")?,
        extension_cache: dict_attr(copyreg, "_extension_cache")?,
        name_mapping_2to3: dict_attr(compat, "NAME_MAPPING")?,
        import_mapping_2to3: dict_attr(compat, "IMPORT_MAPPING")?,
        name_mapping_3to2: dict_attr(compat, "REVERSE_NAME_MAPPING")?,
        import_mapping_3to2: dict_attr(compat, "REVERSE_IMPORT_MAPPING")?,
        audit: sys.getattr("audit").ok().map(Obj::of),
        method_type: Obj::of(py.import("types")?.getattr("MethodType")?),
        sys_modules: Obj::of(sys.getattr("modules")?),
        original_import: Obj::of(py.import("builtins")?.getattr("__import__")?),
    };
    let _ = TABLES.set(tables);
    Ok(())
}

pub fn get() -> &'static Tables {
    TABLES
        .get()
        .expect("pickle5_rs tables used before module initialisation")
}
