//! Objects the pickler looks up once: copyreg's tables, the Python 2 name mappings, a few builtins
//! and type objects, and interned attribute names.

use once_cell::sync::OnceCell;
use pyo3::prelude::*;

use crate::ffi::{self, Obj};
use crate::tables;

pub struct Names {
    pub reduce_ex: Obj,
    pub reduce: Obj,
    pub qualname: Obj,
    pub name: Obj,
    pub module: Obj,
    pub class: Obj,
    pub new: Obj,
    pub items: Obj,
    pub latin1: Obj,
    pub write: Obj,
    pub persistent_id: Obj,
    pub dispatch_table: Obj,
    pub reducer_override: Obj,
    /// Interned keyword argument names (call sites pass interned names).
    pub kw_protocol: Obj,
    pub kw_fix_imports: Obj,
    pub kw_buffer_callback: Obj,
}

pub struct Globals {
    pub names: Names,
    codecs_encode: Obj,
    getattr: Obj,
    partial: Obj,
    ellipsis: Obj,
    not_implemented: Obj,
    pub function_type: usize,
    pub none_type: usize,
    pub ellipsis_type: usize,
    pub not_implemented_type: usize,
}

impl Globals {
    pub fn dispatch_table(&self) -> &Obj {
        &tables::get().dispatch_table
    }
    pub fn extension_registry(&self) -> &Obj {
        &tables::get().extension_registry
    }
    pub fn name_mapping_3to2(&self) -> &Obj {
        &tables::get().name_mapping_3to2
    }
    pub fn import_mapping_3to2(&self) -> &Obj {
        &tables::get().import_mapping_3to2
    }
    pub fn codecs_encode(&self) -> &Obj {
        &self.codecs_encode
    }
    pub fn getattr_builtin(&self) -> &Obj {
        &self.getattr
    }
    pub fn partial(&self) -> &Obj {
        &self.partial
    }
    pub fn method_type(&self) -> &Obj {
        &tables::get().method_type
    }
    pub fn ellipsis(&self) -> &Obj {
        &self.ellipsis
    }
    pub fn not_implemented(&self) -> &Obj {
        &self.not_implemented
    }
}

static GLOBALS: OnceCell<Globals> = OnceCell::new();

fn attr(py: Python, module: &str, name: &str) -> PyResult<Obj> {
    Ok(Obj::of(py.import(module)?.getattr(name)?))
}

fn build(py: Python) -> PyResult<Globals> {
    let s = |t: &str| ffi::new_str(t);
    let names = Names {
        reduce_ex: s("__reduce_ex__")?,
        reduce: s("__reduce__")?,
        qualname: s("__qualname__")?,
        name: s("__name__")?,
        module: s("__module__")?,
        class: s("__class__")?,
        new: s("__new__")?,
        items: s("items")?,
        latin1: s("latin1")?,
        write: s("write")?,
        persistent_id: s("persistent_id")?,
        dispatch_table: s("dispatch_table")?,
        reducer_override: s("reducer_override")?,
        kw_protocol: ffi::intern_in_place(s("protocol")?),
        kw_fix_imports: ffi::intern_in_place(s("fix_imports")?),
        kw_buffer_callback: ffi::intern_in_place(s("buffer_callback")?),
    };
    let builtins = py.import("builtins")?;
    let type_of =
        |expr: &str| -> PyResult<usize> { Ok(Obj::of(py.eval(expr, None, None)?).addr()) };
    Ok(Globals {
        names,
        codecs_encode: attr(py, "codecs", "encode")?,
        getattr: Obj::of(builtins.getattr("getattr")?),
        partial: attr(py, "functools", "partial")?,
        ellipsis: Obj::of(builtins.getattr("Ellipsis")?),
        not_implemented: Obj::of(builtins.getattr("NotImplemented")?),
        function_type: type_of("type(lambda: None)")?,
        none_type: type_of("type(None)")?,
        ellipsis_type: type_of("type(Ellipsis)")?,
        not_implemented_type: type_of("type(NotImplemented)")?,
    })
}

/// Loads the globals (at module import).
pub fn init(py: Python) -> PyResult<()> {
    GLOBALS.get_or_try_init(|| build(py))?;
    Ok(())
}

/// The globals; `init` runs at module import, so they are always there when a pickler runs.
pub fn globals() -> &'static Globals {
    GLOBALS
        .get()
        .expect("pickle5_rs pickler globals used before module initialisation")
}

/// A type's `tp_name` as the C pickler prints it: `module.Name` for static (C) types outside
/// builtins, the bare name otherwise.
pub fn tp_name(type_obj: &Obj) -> TpName {
    let name = match type_obj.getattr_opt(crate::interned!("__name__")) {
        Ok(Some(n)) => ffi::Text::of_any(n),
        _ => return TpName(None, ffi::Text::fixed("?")),
    };
    if type_obj.is_heap_type() {
        return TpName(None, name);
    }
    match type_obj.getattr_opt(crate::interned!("__module__")) {
        Ok(Some(m)) if !m.str_eq("builtins") => TpName(Some(ffi::Text::of_any(m)), name),
        _ => TpName(None, name),
    }
}

/// What [`tp_name`] returns: shown by `Display`, without copying into a `String`.
pub struct TpName(Option<ffi::Text>, ffi::Text);

impl std::fmt::Display for TpName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(module) = &self.0 {
            write!(f, "{}.", module)?;
        }
        write!(f, "{}", self.1)
    }
}
