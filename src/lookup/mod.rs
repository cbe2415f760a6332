//! Everything found by name, looked up once and shared by the pickler and the unpickler:
//!
//! | what | where |
//! | --- | --- |
//! | attribute, method and keyword names, interned once per call site | [`interned!`](crate::interned) (here) |
//! | the stdlib objects the format depends on, read at import | [`Tables`] (here) |
//! | the Python 2 name mapping, 3→2 for the pickler and 2→3 for the unpickler | `names.rs`: [`map_py2_names`] |
//! | dotted paths (`Outer.Inner.method`) and their lookup | `names.rs`: [`dotted_path`], [`follow_path`] |
//! | hooks found as attributes of an instance (`persistent_id`, `persistent_load`, ...) | `hooks.rs`: [`Hook`], [`BuiltinAttr`] |
//!
//! The tables are the stdlib's own dict objects, so registrations made later through `copyreg`
//! are seen.

mod hooks;
mod names;

pub use hooks::{Attr, BuiltinAttr, Hook, OptionalAttr};
pub use names::{dotted_path, follow_path, map_py2_names, Py2Names};

use once_cell::sync::OnceCell;
use pyo3::prelude::*;

use crate::ffi::{self, types, Obj};

/// A str interned once per call site (attribute, method and keyword names): `interned!("name")`
/// is a `&'static Obj`. Usable from every layer, `ffi` included.
#[macro_export]
macro_rules! interned {
    ($name:literal) => {{
        static CELL: $crate::lookup::InternedName = $crate::lookup::InternedName::new();
        CELL.get($name)
    }};
}

/// Storage behind `interned!`.
pub struct InternedName(OnceCell<Obj>);

impl InternedName {
    pub const fn new() -> Self {
        InternedName(OnceCell::new())
    }

    pub fn get(&self, name: &str) -> &Obj {
        // Only fails on memory exhaustion at first use; an unusable name is then fatal anyway.
        self.0.get_or_init(|| {
            ffi::str::intern(name).expect("cannot create an interned attribute name")
        })
    }
}

/// The module-level objects the pickle format depends on, read once at import.
pub struct Tables {
    /// copyreg.dispatch_table
    pub dispatch_table: Obj,
    /// copyreg._extension_registry: (module, name) -> code
    pub extension_registry: Obj,
    /// copyreg._inverted_registry: code -> (module, name)
    pub inverted_registry: Obj,
    /// copyreg._extension_cache: code -> object
    pub extension_cache: Obj,
    /// copyreg.__newobj__ as it was at import (the pickler's plain-object path).
    pub original_newobj: Obj,
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
    /// codecs.encode (bytes at protocols 0-2)
    pub codecs_encode: Obj,
    /// builtins.getattr (nested names before protocol 4)
    pub getattr: Obj,
    /// functools.partial (NEWOBJ_EX before protocol 4)
    pub partial: Obj,
    pub ellipsis: Obj,
    pub not_implemented: Obj,
    /// The addresses of the types of functions, None, Ellipsis and NotImplemented.
    pub function_type: usize,
    pub none_type: usize,
    pub ellipsis_type: usize,
    pub not_implemented_type: usize,
    /// `object.__basicsize__`
    pub object_basicsize: isize,
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

/// Reads the tables (at module import).
pub fn init(py: Python) -> PyResult<()> {
    let copyreg = py.import("copyreg")?;
    let compat = py.import("_compat_pickle")?;
    let sys = py.import("sys")?;
    let builtins = py.import("builtins")?;
    let type_of =
        |expr: &str| -> PyResult<usize> { Ok(Obj::of(py.eval(expr, None, None)?).addr()) };
    let tables = Tables {
        dispatch_table: dict_attr(copyreg, "dispatch_table")?,
        extension_registry: dict_attr(copyreg, "_extension_registry")?,
        inverted_registry: dict_attr(copyreg, "_inverted_registry")?,
        extension_cache: dict_attr(copyreg, "_extension_cache")?,
        original_newobj: Obj::of(copyreg.getattr("__newobj__")?),
        name_mapping_2to3: dict_attr(compat, "NAME_MAPPING")?,
        import_mapping_2to3: dict_attr(compat, "IMPORT_MAPPING")?,
        name_mapping_3to2: dict_attr(compat, "REVERSE_NAME_MAPPING")?,
        import_mapping_3to2: dict_attr(compat, "REVERSE_IMPORT_MAPPING")?,
        audit: sys.getattr("audit").ok().map(Obj::of),
        method_type: Obj::of(py.import("types")?.getattr("MethodType")?),
        sys_modules: Obj::of(sys.getattr("modules")?),
        original_import: Obj::of(builtins.getattr("__import__")?),
        codecs_encode: Obj::of(py.import("codecs")?.getattr("encode")?),
        getattr: Obj::of(builtins.getattr("getattr")?),
        partial: Obj::of(py.import("functools")?.getattr("partial")?),
        ellipsis: Obj::of(builtins.getattr("Ellipsis")?),
        not_implemented: Obj::of(builtins.getattr("NotImplemented")?),
        function_type: type_of("type(lambda: None)")?,
        none_type: type_of("type(None)")?,
        ellipsis_type: type_of("type(Ellipsis)")?,
        not_implemented_type: type_of("type(NotImplemented)")?,
        object_basicsize: types::object()
            .as_obj()
            .getattr(crate::interned!("__basicsize__"))?
            .as_ssize()?,
    };
    let _ = TABLES.set(tables);
    Ok(())
}

/// The tables; `init` runs at module import, so they are always there when a dump or load runs.
pub fn tables() -> &'static Tables {
    TABLES
        .get()
        .expect("pickle5_rs tables used before module initialisation")
}
