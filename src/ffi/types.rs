//! Type objects: [`TypeRef`] and the builtin types, type checks and flags, and the `tp_new` slot
//! the unpickler's NEWOBJ calls. (The reference each instance of our heap types holds on its type
//! is [`super::heap_type`]'s concern.)

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use super::containers::new_tuple;
use super::object::Obj;
use super::{layout37, version};
use crate::alloc;

/// `Py_TPFLAGS_HEAPTYPE`.
const HEAP_TYPE_FLAG: std::os::raw::c_ulong = 1 << 9;

/// A borrowed type object pointer, for exact-type checks. Only made from builtin types (statics of
/// the interpreter) or from a type object an `Obj` keeps alive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TypeRef(*mut ffi::PyTypeObject);

impl TypeRef {
    /// The type object `obj` (which must be a type, and outlive the `TypeRef`'s uses).
    pub fn of_obj(obj: &Obj) -> TypeRef {
        TypeRef(obj.as_ptr() as *mut ffi::PyTypeObject)
    }

    pub fn as_obj(self) -> Obj {
        Obj::from_borrowed(self.0 as *mut PyObject)
    }

    /// The type object's address.
    #[inline]
    pub fn addr(self) -> usize {
        self.0 as usize
    }

    #[inline]
    pub(in crate::ffi) fn as_type_ptr(self) -> *mut ffi::PyTypeObject {
        self.0
    }
}

/// Builtin type objects (statics of the interpreter).
macro_rules! builtin {
    ($($name:ident => $sym:ident),* $(,)?) => {$(
        #[inline]
        pub fn $name() -> TypeRef { TypeRef(std::ptr::addr_of_mut!(ffi::$sym)) }
    )*};
}
builtin! {
    bytes => PyBytes_Type, bytearray => PyByteArray_Type, str => PyUnicode_Type,
    int => PyLong_Type, float => PyFloat_Type, bool => PyBool_Type, tuple => PyTuple_Type,
    list => PyList_Type, dict => PyDict_Type, set => PySet_Type, frozenset => PyFrozenSet_Type,
    type_ => PyType_Type, object => PyBaseObject_Type, module => PyModule_Type,
}

/// The flags of the type object `ty` (callers pass types: checked, or a `type()` result).
fn flags(ty: &Obj) -> std::os::raw::c_ulong {
    // SAFETY: a live type object (callers' contract, object.rs notes); reads its flags.
    unsafe { ffi::PyType_GetFlags(ty.as_ptr() as *mut ffi::PyTypeObject) }
}

impl Obj {
    /// A type object (`type` or a metaclass instance).
    #[inline]
    pub fn is_type(&self) -> bool {
        // SAFETY: a live object (object.rs notes); reads its type's flags.
        unsafe { ffi::PyType_Check(self.as_ptr()) != 0 }
    }

    /// Whether the type's flags include `Py_TPFLAGS_HEAPTYPE` (self must be a type).
    pub fn is_heap_type(&self) -> bool {
        flags(self) & HEAP_TYPE_FLAG != 0
    }

    /// `PyType_IsSubtype(self, base)` for a type object `self` and the type at `base_addr`.
    pub fn type_is_subtype(&self, base_addr: usize) -> bool {
        // SAFETY: callers pass a live type object as `self` and the address of a live type object
        // (a `TypeRef::addr` or an `Obj` they hold) as `base_addr`; the call only reads the MROs.
        unsafe {
            ffi::PyType_IsSubtype(
                self.as_ptr() as *mut ffi::PyTypeObject,
                base_addr as *mut ffi::PyTypeObject,
            ) != 0
        }
    }
}

/// Whether a type is a subclass of list or dict (from its flags).
pub fn is_list_or_dict_subclass(type_obj: &Obj) -> bool {
    flags(type_obj) & (ffi::Py_TPFLAGS_LIST_SUBCLASS | ffi::Py_TPFLAGS_DICT_SUBCLASS) != 0
}

/// The `tp_new` slot of a type, where it can be read under the stable ABI.
enum TypeNew {
    Slot(layout37::NewFunc),
    Missing,
    /// Not readable (static types on 3.8/3.9): go through `cls.__new__`.
    Unknown,
}

/// `cls` must be a type.
fn type_new_slot(cls: &Obj) -> TypeNew {
    let tp = cls.as_ptr() as *mut ffi::PyTypeObject;
    if version::running() >= (3, 10) || cls.is_heap_type() {
        // SAFETY: a live type object; `PyType_GetSlot` reads any slot of a heap type, and of
        // static types too from 3.10 on.
        let p = unsafe { ffi::PyType_GetSlot(tp, ffi::Py_tp_new) };
        if p.is_null() {
            // A heap type's NULL slot (or a lookup error, which we clear) both mean "no __new__".
            // SAFETY: the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return TypeNew::Missing;
        }
        // SAFETY: the `tp_new` slot holds a `newfunc`, whose signature `NewFunc` is.
        return TypeNew::Slot(unsafe {
            std::mem::transmute::<*mut std::os::raw::c_void, layout37::NewFunc>(p)
        });
    }
    if version::is_frozen_layout() {
        // SAFETY: 3.6/3.7, whose `PyTypeObject` head is `TypeObjectHead37` (frozen ABI); `tp` is
        // a live type object, read only.
        let head = unsafe { &*(tp as *const layout37::TypeObjectHead37) };
        return match head.tp_new {
            Some(f) => TypeNew::Slot(f),
            None => TypeNew::Missing,
        };
    }
    TypeNew::Unknown
}

/// Whether the type `cls` has a `tp_new` slot (the C unpickler refuses NEWOBJ for one without).
pub fn type_has_new(cls: &Obj) -> PyResult<bool> {
    match type_new_slot(cls) {
        TypeNew::Missing => Ok(false),
        TypeNew::Slot(_) => Ok(true),
        TypeNew::Unknown => {
            // A static type: its slot is set iff it or a base other than `object` defines
            // `__new__` in its own dict (`type_ready` adds the wrapper for a slot of its own, and
            // inherits the slot from any base but `object`).
            let mro = cls.getattr(crate::interned!("__mro__"))?;
            let object = object().as_obj();
            for base in mro.tuple_items()? {
                if base.is(&object) {
                    continue;
                }
                let dict = base.getattr(crate::interned!("__dict__"))?;
                if dict.get_item(crate::interned!("__new__")).is_ok() {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// `cls.tp_new(cls, args, kwargs)` as the C unpickler calls it for NEWOBJ/NEWOBJ_EX; `Ok(None)` when
/// the type has no `tp_new`. `cls` must be a type and `args` a tuple, `kwargs` a dict.
pub fn call_type_new(cls: &Obj, args: &Obj, kwargs: Option<&Obj>) -> PyResult<Option<Obj>> {
    match type_new_slot(cls) {
        TypeNew::Missing => Ok(None),
        TypeNew::Slot(f) => {
            let kw = kwargs.map_or(std::ptr::null_mut(), |k| k.as_ptr());
            // SAFETY: the type's own `tp_new`, called as CPython calls it: the type, a tuple and
            // a dict or NULL (callers' contract), all live.
            let r = unsafe { f(cls.as_ptr() as *mut ffi::PyTypeObject, args.as_ptr(), kw) };
            Obj::from_owned(r).map(Some)
        }
        TypeNew::Unknown => {
            let new = cls.getattr(crate::interned!("__new__"))?;
            let args = args.tuple_items()?;
            let mut items = alloc::with_capacity(args.len() + 1)?;
            items.push(cls.clone());
            items.extend(args);
            new.call(&new_tuple(items)?, kwargs).map(Some)
        }
    }
}
