//! `list`, `tuple`, `dict`, `set` and `frozenset`: type checks, live reads (the pickler reads
//! containers that may change while their items are pickled), and constructors that take their
//! items over (in place through [`super::seq_layout`] where allowed).

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use super::errors::{check, fetch_error, occurred};
use super::object::Obj;
use super::seq_layout;
use crate::alloc;

impl Obj {
    // ---- tuple ----

    /// A `tuple` or a subclass of it.
    #[inline]
    pub fn is_tuple(&self) -> bool {
        // SAFETY: a live object (object.rs notes); reads its type's flags.
        unsafe { ffi::PyTuple_Check(self.as_ptr()) != 0 }
    }

    #[inline]
    pub fn tuple_len(&self) -> usize {
        // SAFETY: a live object (object.rs notes); a non-tuple gives -1 with an exception set.
        let n = unsafe { ffi::PyTuple_Size(self.as_ptr()) };
        if n < 0 {
            // SAFETY: clears that exception; the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return 0;
        }
        n as usize
    }

    /// Item `i` of a tuple (a new reference); `None` when out of range.
    #[inline]
    pub fn tuple_get(&self, i: usize) -> Option<Obj> {
        // SAFETY: a live object (object.rs notes); the call checks type and index, and returns a
        // borrowed reference (made a new one below) or NULL with an exception set.
        let p = unsafe { ffi::PyTuple_GetItem(self.as_ptr(), i as ffi::Py_ssize_t) };
        if p.is_null() {
            // SAFETY: clears that exception; the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(Obj::from_borrowed(p))
    }

    /// The two items of an exact or subclassed tuple of length 2; None for anything else.
    pub fn tuple_pair(&self) -> Option<(Obj, Obj)> {
        // SAFETY: `self` is a live tuple (checked first), so the size call cannot fail.
        if !self.is_tuple() || unsafe { ffi::PyTuple_Size(self.as_ptr()) } != 2 {
            return None;
        }
        // SAFETY: indices 0 and 1 exist in this tuple of two; the borrowed items are turned into
        // new references at once.
        let item = |i| Obj::from_borrowed(unsafe { ffi::PyTuple_GetItem(self.as_ptr(), i) });
        Some((item(0), item(1)))
    }

    /// Items of a tuple (exact or subclass), as new references.
    pub fn tuple_items(&self) -> PyResult<Vec<Obj>> {
        // SAFETY: callers pass tuples; a size below 0 (never for a tuple) collects nothing.
        let n = unsafe { ffi::PyTuple_Size(self.as_ptr()) }.max(0);
        alloc::collect_exact(
            // SAFETY: every index is below the tuple's size; borrowed items become new references.
            (0..n).map(|i| Obj::from_borrowed(unsafe { ffi::PyTuple_GetItem(self.as_ptr(), i) })),
        )
    }

    /// `self[start:]` of a tuple.
    pub fn tuple_slice_from(&self, start: usize) -> PyResult<Obj> {
        let n = self.tuple_len();
        // SAFETY: a live object (object.rs notes); the call checks type and clamps the bounds.
        Obj::from_owned(unsafe {
            ffi::PyTuple_GetSlice(
                self.as_ptr(),
                start as ffi::Py_ssize_t,
                n as ffi::Py_ssize_t,
            )
        })
    }

    // ---- list ----

    pub fn list_len(&self) -> usize {
        // SAFETY: callers pass lists; the size is read, nothing else.
        unsafe { ffi::PyList_Size(self.as_ptr()) as usize }
    }

    /// Item `i` of a list (a new reference); `None` when out of range.
    #[inline]
    pub fn list_get(&self, i: usize) -> Option<Obj> {
        // SAFETY: a live object (object.rs notes); the call checks type and index, and returns a
        // borrowed reference (made a new one below) or NULL with an exception set.
        let p = unsafe { ffi::PyList_GetItem(self.as_ptr(), i as ffi::Py_ssize_t) };
        if p.is_null() {
            // SAFETY: clears that exception; the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(Obj::from_borrowed(p))
    }

    /// `self[len(self):] = items` for an exact list, taking ownership of the items.
    pub fn list_extend_owned<I>(&self, items: I) -> PyResult<()>
    where
        I: IntoIterator<Item = Obj>,
        I::IntoIter: ExactSizeIterator,
    {
        let items = items.into_iter();
        let list = self.as_ptr();
        if seq_layout::in_use() {
            // One resize and the pointers moved in, as the C unpickler's slice assignment does.
            let old_len = self.list_len();
            let extra = items.len();
            // SAFETY: an exact list (callers' contract), layout checked (`in_use`); no Python code
            // runs between reserving the slots, filling them and setting the size, so nothing
            // sees the list half-filled.
            unsafe {
                let slots = seq_layout::list_reserve_tail(list, extra).ok_or_else(fetch_error)?;
                let stored = move_into_slots(slots, items, extra);
                seq_layout::list_set_size(list, old_len + stored);
            }
            return Ok(());
        }
        // Stable ABI: one slice assignment of placeholders grows the list exactly as C's does,
        // then each item replaces its placeholder. Cheaper than building a batch list to splice
        // in: no second list to fill, reference and free item by item.
        let start = self.list_len() as ffi::Py_ssize_t;
        let placeholders = none_tuple(items.len())?;
        // SAFETY: a live list and a live tuple; the call copies the placeholders in.
        check(unsafe { ffi::PyList_SetSlice(list, start, start, placeholders.as_ptr()) })?;
        for (i, item) in items.enumerate() {
            // SAFETY: the slot exists (added above, no Python code ran since); SetItem steals
            // the reference and releases the placeholder.
            unsafe { ffi::PyList_SetItem(list, start + i as ffi::Py_ssize_t, item.into_raw()) };
        }
        Ok(())
    }

    /// `list(self)` via `PySequence_List`.
    pub fn to_list(&self) -> PyResult<Obj> {
        // SAFETY: a live object (object.rs notes); a new reference or NULL with an exception set.
        Obj::from_owned(unsafe { ffi::PySequence_List(self.as_ptr()) })
    }

    // ---- dict ----

    /// A `dict` or a subclass of it.
    #[inline]
    pub fn is_dict(&self) -> bool {
        // SAFETY: a live object (object.rs notes); reads its type's flags.
        unsafe { ffi::PyDict_Check(self.as_ptr()) != 0 }
    }

    #[inline]
    pub fn dict_len(&self) -> usize {
        // SAFETY: a live object (object.rs notes); a non-dict gives -1 with an exception set.
        let n = unsafe { ffi::PyDict_Size(self.as_ptr()) };
        if n < 0 {
            // SAFETY: clears that exception; the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return 0;
        }
        n as usize
    }

    pub fn dict_set(&self, key: &Obj, value: &Obj) -> PyResult<()> {
        // SAFETY: live objects (object.rs notes); the call checks the type and takes its own
        // references.
        check(unsafe { ffi::PyDict_SetItem(self.as_ptr(), key.as_ptr(), value.as_ptr()) })
    }

    /// `d[key]` for a dict, without raising KeyError.
    pub fn dict_get(&self, key: &Obj) -> PyResult<Option<Obj>> {
        // SAFETY: live objects (object.rs notes); a borrowed reference (made a new one below), or
        // NULL, with an exception set if the lookup failed.
        let p = unsafe { ffi::PyDict_GetItemWithError(self.as_ptr(), key.as_ptr()) };
        if p.is_null() {
            if occurred() {
                return Err(fetch_error());
            }
            return Ok(None);
        }
        Ok(Some(Obj::from_borrowed(p)))
    }

    /// Next `(key, value)` of a dict from position `pos` (`PyDict_Next`), as new references.
    #[inline]
    pub fn dict_next(&self, pos: &mut isize) -> Option<(Obj, Obj)> {
        let mut k: *mut PyObject = std::ptr::null_mut();
        let mut v: *mut PyObject = std::ptr::null_mut();
        let mut p = *pos as ffi::Py_ssize_t;
        // SAFETY: a live object (object.rs notes; a non-dict ends the iteration); the call writes
        // the three locals and checks the position.
        let more = unsafe { ffi::PyDict_Next(self.as_ptr(), &mut p, &mut k, &mut v) } != 0;
        *pos = p as isize;
        if more {
            // Borrowed from the dict: new references at once, before any Python code can run.
            Some((Obj::from_borrowed(k), Obj::from_borrowed(v)))
        } else {
            None
        }
    }

    /// Calls `f(key, value)` for each item of a dict (borrowed for the duration of the call).
    pub fn dict_for_each(&self, mut f: impl FnMut(&Obj, &Obj) -> PyResult<()>) -> PyResult<()> {
        let mut pos: ffi::Py_ssize_t = 0;
        let mut k: *mut PyObject = std::ptr::null_mut();
        let mut v: *mut PyObject = std::ptr::null_mut();
        // SAFETY: a live object (object.rs notes; a non-dict ends the loop); the call writes the
        // three locals and checks the position, also when `f` has changed the dict.
        while unsafe { ffi::PyDict_Next(self.as_ptr(), &mut pos, &mut k, &mut v) } != 0 {
            // New references keep key and value alive even if `f` mutates the dict.
            let (key, value) = (Obj::from_borrowed(k), Obj::from_borrowed(v));
            f(&key, &value)?;
        }
        Ok(())
    }

    /// `(key, value)` pairs of a dict, snapshotted.
    pub fn dict_items(&self) -> PyResult<Vec<(Obj, Obj)>> {
        // SAFETY: a live object (object.rs notes); a size below 0 reserves nothing.
        let n = unsafe { ffi::PyDict_Size(self.as_ptr()) }.max(0) as usize;
        let mut out = alloc::with_capacity(n)?;
        let mut pos: ffi::Py_ssize_t = 0;
        let mut k: *mut PyObject = std::ptr::null_mut();
        let mut v: *mut PyObject = std::ptr::null_mut();
        // SAFETY: as in `dict_for_each`; nothing runs Python code inside the loop.
        while unsafe { ffi::PyDict_Next(self.as_ptr(), &mut pos, &mut k, &mut v) } != 0 {
            alloc::push(&mut out, (Obj::from_borrowed(k), Obj::from_borrowed(v)))?;
        }
        Ok(out)
    }

    // ---- set ----

    /// A `set` or a subclass of it (not a frozenset).
    #[inline]
    pub fn is_set(&self) -> bool {
        // SAFETY: a live object (object.rs notes); reads its type.
        unsafe { ffi::PySet_Check(self.as_ptr()) != 0 }
    }

    pub fn set_len(&self) -> usize {
        // SAFETY: a live object (object.rs notes); a non-set gives -1 with an exception set.
        let n = unsafe { ffi::PySet_Size(self.as_ptr()) };
        if n < 0 {
            // SAFETY: clears that exception; the GIL is held.
            unsafe { ffi::PyErr_Clear() };
            return 0;
        }
        n as usize
    }

    pub fn set_add(&self, item: &Obj) -> PyResult<()> {
        // SAFETY: live objects (object.rs notes); the call checks the type and takes its own
        // reference.
        check(unsafe { ffi::PySet_Add(self.as_ptr(), item.as_ptr()) })
    }
}

/// A tuple that takes ownership of `items`.
pub fn new_tuple<I>(items: I) -> PyResult<Obj>
where
    I: IntoIterator<Item = Obj>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let n = items.len();
    // SAFETY: a new tuple of `n` empty slots, or NULL with an exception set.
    let t = Obj::from_owned(unsafe { ffi::PyTuple_New(n as ffi::Py_ssize_t) })?;
    if seq_layout::in_use() {
        // SAFETY: a fresh tuple of `n` empty slots, layout checked (`in_use`).
        unsafe { move_into_slots(seq_layout::tuple_items(t.as_ptr()), items, n) };
        return Ok(t);
    }
    for (i, item) in items.enumerate() {
        // SAFETY: a fresh tuple, `i` below its size; SetItem steals the reference.
        unsafe { ffi::PyTuple_SetItem(t.as_ptr(), i as ffi::Py_ssize_t, item.into_raw()) };
    }
    Ok(t)
}

/// A tuple of new references to `items`.
pub fn tuple(items: &[&Obj]) -> PyResult<Obj> {
    new_tuple(items.iter().map(|o| (*o).clone()))
}

/// A list of new references to `items`.
pub fn new_list(items: &[Obj]) -> PyResult<Obj> {
    // SAFETY: a new list of `n` empty slots, or NULL with an exception set.
    let l = Obj::from_owned(unsafe { ffi::PyList_New(items.len() as ffi::Py_ssize_t) })?;
    for (i, item) in items.iter().enumerate() {
        // SAFETY: a fresh list, `i` below its size; SetItem steals the new reference.
        unsafe {
            ffi::Py_INCREF(item.as_ptr());
            ffi::PyList_SetItem(l.as_ptr(), i as ffi::Py_ssize_t, item.as_ptr());
        }
    }
    Ok(l)
}

/// A list that takes ownership of `items`.
pub fn new_list_owned<I>(items: I) -> PyResult<Obj>
where
    I: IntoIterator<Item = Obj>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let n = items.len();
    // SAFETY: a new list of `n` empty slots, or NULL with an exception set.
    let l = Obj::from_owned(unsafe { ffi::PyList_New(n as ffi::Py_ssize_t) })?;
    if seq_layout::in_use() {
        // SAFETY: a fresh list of `n` empty slots, layout checked (`in_use`).
        unsafe { move_into_slots(seq_layout::list_items(l.as_ptr()), items, n) };
        return Ok(l);
    }
    for (i, item) in items.enumerate() {
        // SAFETY: a fresh list, `i` below its size; SetItem steals the reference.
        unsafe { ffi::PyList_SetItem(l.as_ptr(), i as ffi::Py_ssize_t, item.into_raw()) };
    }
    Ok(l)
}

/// Moves up to `n` of `items` into consecutive slots (each slot takes over one reference), as
/// `PyList_SET_ITEM`/`PyTuple_SET_ITEM` do; returns how many were stored.
///
/// # Safety
/// `slots` has room for `n` pointers and holds no references yet.
unsafe fn move_into_slots(
    slots: *mut *mut PyObject,
    items: impl Iterator<Item = Obj>,
    n: usize,
) -> usize {
    let mut stored = 0;
    for item in items.take(n) {
        // SAFETY: `stored < n`, so the slot is inside the room the caller guarantees, and empty:
        // it takes over the item's reference.
        unsafe { *slots.add(stored) = item.into_raw() };
        stored += 1;
    }
    stored
}

/// A tuple of `n` Nones. The size of an APPENDS batch from a pickler (1000) is kept, so the
/// common case costs a reference; other sizes take a slice of it or a repeat.
fn none_tuple(n: usize) -> PyResult<Obj> {
    const KEPT: usize = 1000;
    static KEPT_NONES: once_cell::sync::OnceCell<Obj> = once_cell::sync::OnceCell::new();
    let kept = KEPT_NONES.get_or_try_init(|| repeated_none(KEPT))?;
    match n {
        KEPT => Ok(kept.clone()),
        // SAFETY: a live tuple of `KEPT` items, sliced within bounds; a new reference or NULL.
        n if n < KEPT => Obj::from_owned(unsafe {
            ffi::PyTuple_GetSlice(kept.as_ptr(), 0, n as ffi::Py_ssize_t)
        }),
        n => repeated_none(n),
    }
}

fn repeated_none(n: usize) -> PyResult<Obj> {
    // SAFETY: `(None,)`: `PyTuple_Pack` takes its own reference to the `None` singleton.
    let one = Obj::from_owned(unsafe { ffi::PyTuple_Pack(1, ffi::Py_None()) })?;
    // SAFETY: a live tuple; a new reference or NULL with an exception set.
    Obj::from_owned(unsafe { ffi::PySequence_Repeat(one.as_ptr(), n as ffi::Py_ssize_t) })
}

pub fn new_dict() -> PyResult<Obj> {
    // SAFETY: a new reference or NULL with an exception set.
    Obj::from_owned(unsafe { ffi::PyDict_New() })
}

pub fn new_set(items: &[Obj]) -> PyResult<Obj> {
    // SAFETY: NULL asks for an empty set; a new reference or NULL with an exception set.
    let s = Obj::from_owned(unsafe { ffi::PySet_New(std::ptr::null_mut()) })?;
    for item in items {
        s.set_add(item)?;
    }
    Ok(s)
}

/// A frozenset of `items`, built from a tuple that takes them over (as the C unpickler does).
pub fn new_frozenset(items: Vec<Obj>) -> PyResult<Obj> {
    let t = new_tuple(items)?;
    // SAFETY: a live tuple to iterate; a new reference or NULL with an exception set.
    Obj::from_owned(unsafe { ffi::PyFrozenSet_New(t.as_ptr()) })
}
