//! Instances of plain classes without calling `__reduce_ex__`.
//!
//! For an instance of a class that customises nothing about pickling, `obj.__reduce_ex__(proto)`
//! (protocol 2 or higher) is `object.__reduce_ex__`, which returns
//! `(copyreg.__newobj__, (type(obj),), state, None, None)` with `state` the instance `__dict__`
//! (None when empty). Building that tuple through the C-level method costs more than the rest of
//! pickling such an object, so when every condition below holds the pickler uses the state directly
//! and emits what the reduce tuple would have produced. Facts fixed when a class is created (its
//! memory layout) are remembered for the dump; what can change (class attributes, `copyreg`) is
//! remembered only until Python code next gets a chance to run: the pickler reports every such
//! chance (hooks, reducers, global lookups, file writes) and the checks are then made again.
//! Instance attributes are checked for every object.
//!
//! The conditions, each mirroring a step of `object.__reduce_ex__` / `reduce_newobj`:
//! - the metaclass is exactly `type`, and every class of the MRO but the final `object` is a
//!   class defined in Python (a heap type) whose own `__dict__` defines none of `__reduce_ex__`,
//!   `__reduce__`, `__getstate__`, `__getnewargs_ex__`, `__getnewargs__`, `__class__`,
//!   `__getattr__`, `__getattribute__`: lookups find `object`'s methods, run no Python code, and
//!   the object has no arguments for `__new__`;
//! - the class is not a list or dict subclass (no list/dict items), has an instance dict, no
//!   items (`__itemsize__` 0) and no storage beyond the dict and weakref slots (so the
//!   "cannot pickle" size check passes), and its own `__slotnames__` cache exists and is empty or
//!   None (otherwise `copyreg._slotnames` must run, or slot values join the state);
//! - `copyreg` in `sys.modules` still has the original `__newobj__`, still named `__newobj__`;
//! - the instance dict does not shadow `__reduce_ex__` or `__getstate__` (the C code looks them
//!   up on the instance).

use pyo3::prelude::*;

use crate::ffi::{self, types, Obj};
use crate::interned;
use crate::lookup::tables;

/// Names that, defined by a class of the MRO, take an object off the plain path.
fn class_names() -> [&'static Obj; 8] {
    [
        interned!("__reduce_ex__"),
        interned!("__reduce__"),
        interned!("__getstate__"),
        interned!("__getnewargs_ex__"),
        interned!("__getnewargs__"),
        interned!("__class__"),
        interned!("__getattr__"),
        interned!("__getattribute__"),
    ]
}

/// What the plain path found for an object.
pub enum Plain {
    /// Not a plain object: pickle it through `__reduce_ex__`.
    No,
    /// A plain object with this state (None for an empty instance dict).
    State(Option<Obj>),
}

/// Per-dump memory: class layouts (fixed for a class's lifetime), and which classes, and
/// whether `copyreg`, passed the other checks since Python code last had a chance to run (classes
/// are held, so their addresses stay theirs).
#[derive(Default)]
pub struct PlainTypes {
    layouts: Vec<(Obj, bool)>,
    /// Bumped by the pickler whenever Python code may have run.
    python_runs: u64,
    /// Classes whose MRO and `__slotnames__` passed, with the stamp they passed at.
    verified: Vec<(Obj, u64)>,
    /// The stamp at which `copyreg.__newobj__` last passed.
    copyreg_verified: Option<u64>,
}

const MAX_REMEMBERED: usize = 64;

impl PlainTypes {
    /// Whether the class's layout allows the plain path (see the module notes).
    fn layout_ok(&mut self, type_obj: &Obj) -> PyResult<bool> {
        if let Some((_, ok)) = self.layouts.iter().find(|(t, _)| t.is(type_obj)) {
            return Ok(*ok);
        }
        let ok = compute_layout_ok(type_obj)?;
        if self.layouts.len() < MAX_REMEMBERED {
            self.layouts.push((type_obj.clone(), ok));
        }
        Ok(ok)
    }

    /// Called by the pickler when Python code (a hook, a reducer, an attribute lookup on an
    /// arbitrary object, a `file.write`, or the release of an object such code returned) may
    /// have run since the last check: classes and `copyreg` may have changed.
    #[inline]
    pub fn note_python_run(&mut self) {
        self.python_runs += 1;
    }

    /// The state `object.__reduce_ex__` would return for `obj` (protocol 2+), if `obj` is plain.
    /// `writer_python_runs` counts the times Python code ran outside the pickler's knowledge (file
    /// writes: `Writer::python_runs`).
    pub fn check(&mut self, obj: &Obj, type_obj: &Obj, writer_python_runs: u64) -> PyResult<Plain> {
        if !type_obj.is_exact_type(types::type_()) {
            return Ok(Plain::No);
        }
        if !self.layout_ok(type_obj)? {
            return Ok(Plain::No);
        }
        let stamp = self.python_runs.wrapping_add(writer_python_runs);
        let known = self.verified.iter().position(|(t, _)| t.is(type_obj));
        let fresh = matches!(known, Some(i) if self.verified[i].1 == stamp);
        if !fresh {
            if !mro_is_plain(type_obj)? {
                return Ok(Plain::No);
            }
            match known {
                Some(i) => self.verified[i].1 = stamp,
                None if self.verified.len() < MAX_REMEMBERED => {
                    self.verified.push((type_obj.clone(), stamp))
                }
                None => {}
            }
        }
        if self.copyreg_verified != Some(stamp) {
            if !copyreg_newobj_is_original()? {
                return Ok(Plain::No);
            }
            self.copyreg_verified = Some(stamp);
        }
        // Instance attributes that would replace the methods object.__reduce_ex__ relies on.
        let dict = obj.generic_get_dict()?;
        if dict.dict_get(interned!("__reduce_ex__"))?.is_some()
            || dict.dict_get(interned!("__getstate__"))?.is_some()
        {
            return Ok(Plain::No);
        }
        Ok(Plain::State(if dict.dict_len() > 0 {
            Some(dict)
        } else {
            None
        }))
    }
}

fn compute_layout_ok(type_obj: &Obj) -> PyResult<bool> {
    if !type_obj.is_heap_type() || ffi::types::is_list_or_dict_subclass(type_obj) {
        return Ok(false);
    }
    let int_attr = |name: &Obj| -> PyResult<isize> { type_obj.getattr(name)?.as_ssize() };
    if int_attr(interned!("__itemsize__"))? != 0 {
        return Ok(false);
    }
    let dictoffset = int_attr(interned!("__dictoffset__"))?;
    if dictoffset == 0 {
        return Ok(false);
    }
    // No more room than object_getstate's size check allows (counted conservatively).
    let ptr = std::mem::size_of::<usize>() as isize;
    let mut allowed = tables().object_basicsize;
    if dictoffset > 0 {
        allowed += ptr;
    }
    if int_attr(interned!("__weakrefoffset__"))? > 0 {
        allowed += ptr;
    }
    Ok(int_attr(interned!("__basicsize__"))? <= allowed)
}

/// The MRO is heap classes ending in `object`, none defining a pickling-related name, and the
/// class has an empty `__slotnames__` cache.
fn mro_is_plain(type_obj: &Obj) -> PyResult<bool> {
    let mro = type_obj.getattr(interned!("__mro__"))?;
    if !mro.is_tuple() {
        return Ok(false);
    }
    let n = mro.tuple_len();
    match mro.tuple_get(n.wrapping_sub(1)) {
        Some(last) if last.is(&types::object().as_obj()) => {}
        _ => return Ok(false),
    }
    for i in 0..n - 1 {
        let cls = match mro.tuple_get(i) {
            Some(c) => c,
            None => return Ok(false),
        };
        if !cls.is_type() || !cls.is_heap_type() {
            return Ok(false);
        }
        let own = cls.getattr(interned!("__dict__"))?;
        for name in class_names() {
            if own.contains(name)? {
                return Ok(false);
            }
        }
        if i == 0 {
            if !own.contains(interned!("__slotnames__"))? {
                return Ok(false);
            }
            let names = own.get_item(interned!("__slotnames__"))?;
            let empty =
                names.is_none() || (names.is_exact_type(types::list()) && names.list_len() == 0);
            if !empty {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// `sys.modules["copyreg"].__newobj__` is the function it was at import, still named `__newobj__`.
fn copyreg_newobj_is_original() -> PyResult<bool> {
    let module = match ffi::modules::modules_dict().dict_get(interned!("copyreg"))? {
        Some(m) => m,
        None => return Ok(false),
    };
    let newobj = match module.getattr_opt(interned!("__newobj__"))? {
        Some(f) => f,
        None => return Ok(false),
    };
    if !newobj.is(&tables().original_newobj) {
        return Ok(false);
    }
    Ok(match newobj.getattr_opt(interned!("__name__"))? {
        Some(name) => name.is_str() && name.str_eq("__newobj__"),
        None => false,
    })
}
