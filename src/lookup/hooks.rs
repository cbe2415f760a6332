//! Hooks found as attributes of an instance: the Unpickler's `persistent_load` and, before 3.13,
//! the Pickler's `persistent_id`. A bound method of the object itself is kept as its function, so
//! that the object and its hook form no reference cycle and are freed as soon as the last
//! reference goes, as in `_pickle`. [`BuiltinAttr`] answers whether such an attribute is still the
//! class's own.

use pyo3::prelude::*;

use super::tables;
use crate::ffi::Obj;

pub enum Hook {
    Callable(Obj),
    MethodOf(Obj),
}

impl Hook {
    /// Wraps `value`, an attribute of `owner`.
    pub fn from_attr(owner: &Obj, value: Obj) -> PyResult<Hook> {
        let method_type = &tables().method_type;
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
            Hook::MethodOf(func) => tables().method_type.call2(func, owner),
        }
    }

    /// The object held, for garbage-collector traversal.
    pub fn held(&self) -> &Obj {
        match self {
            Hook::Callable(f) | Hook::MethodOf(f) => f,
        }
    }
}

/// A class attribute of one of the extension's own classes (a method or a descriptor), recorded
/// at import. Asking whether an instance's attribute is still that one needs no lookup that may
/// fail: an absent attribute, or a descriptor whose getter raises, costs an exception on every
/// call, and these questions are asked on every `dump()`, `load()` and `__init__`.
pub struct BuiltinAttr(once_cell::sync::OnceCell<Recorded>);

struct Recorded {
    cls: Obj,
    attr: Obj,
    /// A getset or member descriptor: no instance `__dict__` entry can shadow it (a method can).
    is_data_descriptor: bool,
}

impl BuiltinAttr {
    pub const fn new() -> Self {
        BuiltinAttr(once_cell::sync::OnceCell::new())
    }

    /// Records the method `cls.<name>` (once, when the class is created; its instances have no
    /// `__dict__`).
    pub fn record_method(&self, cls: &Obj, name: &Obj) -> PyResult<()> {
        self.record(cls, name, false)
    }

    /// Records the getset or member descriptor `cls.<name>`.
    pub fn record_data_descriptor(&self, cls: &Obj, name: &Obj) -> PyResult<()> {
        self.record(cls, name, true)
    }

    fn record(&self, cls: &Obj, name: &Obj, is_data_descriptor: bool) -> PyResult<()> {
        let attr = cls.getattr(name)?;
        let _ = self.0.set(Recorded {
            cls: cls.clone(),
            attr,
            is_data_descriptor,
        });
        Ok(())
    }

    /// What `obj.<name>` is: the recorded attribute (its class's attribute is that object and no
    /// instance `__dict__` entry can shadow it), or another one, or none. The class attribute is
    /// looked up first, so an attribute found there is then read without a failing lookup.
    pub fn lookup(&self, obj: &Obj, name: &Obj) -> PyResult<Attr> {
        let Some(recorded) = self.0.get() else {
            return Ok(Attr::Other(obj.getattr_if_present(name)?));
        };
        let cls = obj.type_obj();
        match cls.getattr_opt(name)? {
            Some(attr) if attr.is(&recorded.attr) => {
                let shadowed = !recorded.is_data_descriptor
                    && !cls.is(&recorded.cls)
                    && cls
                        .getattr(crate::interned!("__dictoffset__"))?
                        .as_ssize()?
                        != 0
                    && obj.generic_get_dict()?.dict_get(name)?.is_some();
                if shadowed {
                    Ok(Attr::Other(obj.getattr_opt(name)?))
                } else {
                    Ok(Attr::Builtin)
                }
            }
            Some(_) => Ok(Attr::Other(obj.getattr_opt(name)?)),
            None => Ok(Attr::Other(obj.getattr_if_present(name)?)),
        }
    }
}

/// An instance's attribute, as [`BuiltinAttr::lookup`] finds it.
pub enum Attr {
    /// The class's own, recorded attribute.
    Builtin,
    /// Another attribute (a subclass's or the instance's), or none.
    Other(Option<Obj>),
}

/// An attribute the extension's own class does not define but subclasses may (`Pickler.
/// reducer_override`), looked up on every call. For an instance of the class itself (which has no
/// `__dict__`) the class's own dict answers, unless it was given the attribute since.
pub struct OptionalAttr(once_cell::sync::OnceCell<(Obj, Obj)>);

impl OptionalAttr {
    pub const fn new() -> Self {
        OptionalAttr(once_cell::sync::OnceCell::new())
    }

    /// Records the class (once, when it is created).
    pub fn record(&self, cls: &Obj) -> PyResult<()> {
        let class_dict = cls.getattr(crate::interned!("__dict__"))?;
        let _ = self.0.set((cls.clone(), class_dict));
        Ok(())
    }

    /// `getattr(obj, name, None)`.
    pub fn lookup(&self, obj: &Obj, name: &Obj) -> PyResult<Option<Obj>> {
        if let Some((cls, class_dict)) = self.0.get() {
            if obj.type_obj().is(cls) && !class_dict.contains(name)? {
                return Ok(None);
            }
        }
        obj.getattr_if_present(name)
    }
}
