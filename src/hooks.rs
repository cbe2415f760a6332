//! The Unpickler's `persistent_load` hook, found as an attribute of the instance. A bound method of
//! the object itself is kept as its function, so that the object and its hook form no reference
//! cycle and are freed as soon as the last reference goes, as in `_pickle`. (The Pickler unbinds
//! its `persistent_id` the same way, in `Pickler.__init__`: src/pickler/mod.rs.)

use pyo3::prelude::*;

use crate::ffi::Obj;
use crate::tables;

pub enum Hook {
    Callable(Obj),
    MethodOf(Obj),
}

impl Hook {
    /// Wraps `value`, an attribute of `owner`.
    pub fn from_attr(owner: &Obj, value: Obj) -> PyResult<Hook> {
        let method_type = &tables::get().method_type;
        if value.type_obj().is(method_type) {
            let bound_self = value.getattr(crate::interned!("__self__"))?;
            if bound_self.is(owner) {
                return Ok(Hook::MethodOf(value.getattr(crate::interned!("__func__"))?));
            }
        }
        Ok(Hook::Callable(value))
    }

    /// The callable as Python sees it (re-binding a method of `owner`).
    pub fn bind(&self, owner: &Obj) -> PyResult<Obj> {
        match self {
            Hook::Callable(f) => Ok(f.clone()),
            Hook::MethodOf(func) => tables::get().method_type.call2(func, owner),
        }
    }

    /// The object held, for garbage-collector traversal.
    pub fn held(&self) -> &Obj {
        match self {
            Hook::Callable(f) | Hook::MethodOf(f) => f,
        }
    }
}
