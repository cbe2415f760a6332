//! The item slots of lists and tuples, filled in place: layout access under the rules of
//! `docs/design.md` (version allow-list, a check on live objects at import, `PICKLE5_RS_API_ONLY`).
//! It lets `loads` store each item with one pointer write, as the C unpickler does, instead of a
//! `PyList_SetItem`/`PyTuple_SetItem` call per item.
//!
//! Both layouts are the same on every allow-listed version (release builds): the variable-size
//! object header, then the inline item array (tuple) or a pointer to it and the allocated length
//! (list). Lists grow as each version's `list_resize` does, so results have the same allocation
//! (`sys.getsizeof`) as the C unpickler's.

use std::os::raw::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;

use super::{fetch_error, version, Obj};

/// `PyListObject`.
#[repr(C)]
struct ListObject {
    ob_refcnt: Py_ssize_t,
    ob_type: *mut c_void,
    ob_size: Py_ssize_t,
    ob_item: *mut *mut PyObject,
    allocated: Py_ssize_t,
}

/// `PyTupleObject` up to its inline items.
#[repr(C)]
struct TupleObject {
    ob_refcnt: Py_ssize_t,
    ob_type: *mut c_void,
    ob_size: Py_ssize_t,
    ob_item: [*mut PyObject; 0],
}

static IN_USE: AtomicBool = AtomicBool::new(false);

/// Whether list and tuple slots are written in place (false: the API path).
#[inline(always)]
pub fn in_use() -> bool {
    IN_USE.load(Ordering::Relaxed)
}

/// Turns the layout on for an allow-listed version whose live lists and tuples match it; called
/// once from module initialisation.
pub fn init(_py: Python) -> PyResult<()> {
    IN_USE.store(version::layout_access() && self_check()?, Ordering::Relaxed);
    Ok(())
}

/// Builds a list and a tuple through the API and reads them back through the layout: sizes, item
/// pointers and the list's allocation must agree.
fn self_check() -> PyResult<bool> {
    let items = [
        super::new_int(1 << 40)?,
        super::new_str("layout")?,
        super::none(),
    ];
    // SAFETY: API calls on objects this function owns; the layout is only read.
    unsafe {
        let list = Obj::from_owned(ffi::PyList_New(0))?;
        for item in &items {
            if ffi::PyList_Append(list.as_ptr(), item.as_ptr()) < 0 {
                return Err(fetch_error());
            }
        }
        let tuple = Obj::from_owned(ffi::PyTuple_Pack(
            3,
            items[0].as_ptr(),
            items[1].as_ptr(),
            items[2].as_ptr(),
        ))?;
        let l = &*(list.as_ptr() as *const ListObject);
        let t = &*(tuple.as_ptr() as *const TupleObject);
        let list_ok = l.ob_size == 3
            && ffi::PyList_Size(list.as_ptr()) == 3
            && l.allocated >= 3
            && l.ob_type == std::ptr::addr_of_mut!(ffi::PyList_Type) as *mut c_void
            && (0..3).all(|i| {
                *l.ob_item.add(i) == ffi::PyList_GetItem(list.as_ptr(), i as Py_ssize_t)
                    && *l.ob_item.add(i) == items[i].as_ptr()
            });
        let tuple_items = tuple_items(tuple.as_ptr());
        let tuple_ok = t.ob_size == 3
            && t.ob_type == std::ptr::addr_of_mut!(ffi::PyTuple_Type) as *mut c_void
            && (0..3).all(|i| {
                *tuple_items.add(i) == ffi::PyTuple_GetItem(tuple.as_ptr(), i as Py_ssize_t)
                    && *tuple_items.add(i) == items[i].as_ptr()
            });
        Ok(list_ok && tuple_ok)
    }
}

/// The tuple's item array.
///
/// # Safety
/// `tuple` is a live tuple and [`in_use`] holds.
pub unsafe fn tuple_items(tuple: *mut PyObject) -> *mut *mut PyObject {
    // SAFETY: a live tuple whose layout is `TupleObject` (`in_use`: checked at import); only the
    // address of the inline array is taken.
    unsafe { std::ptr::addr_of_mut!((*(tuple as *mut TupleObject)).ob_item) as *mut *mut PyObject }
}

/// The list's item array.
///
/// # Safety
/// `list` is a live list and [`in_use`] holds.
pub unsafe fn list_items(list: *mut PyObject) -> *mut *mut PyObject {
    // SAFETY: a live list whose layout is `ListObject` (`in_use`: checked at import).
    unsafe { (*(list as *mut ListObject)).ob_item }
}

/// The allocation `list_resize` gives a list growing from `size` to `new_size` items.
fn grown_allocation(size: usize, new_size: usize) -> usize {
    if version::running() < (3, 9) {
        return new_size.saturating_add((new_size >> 3) + if new_size < 9 { 3 } else { 6 });
    }
    let padded = new_size.saturating_add((new_size >> 3) + 6) & !3;
    if new_size - size > padded - new_size {
        new_size.saturating_add(3) & !3
    } else {
        padded
    }
}

/// Makes room for `extra` more items at the end of `list`, growing it exactly as the running
/// version's `list_resize` does (so the result's allocation is the one `list[n:n] = items` gives),
/// and returns where they go. `ob_size` is left unchanged: the caller stores the items, then the
/// size. `None` (with `MemoryError` set) when the allocation fails.
///
/// # Safety
/// `list` is a live list, [`in_use`] holds, and nothing else touches the list until the caller is
/// done.
pub unsafe fn list_reserve_tail(list: *mut PyObject, extra: usize) -> Option<*mut *mut PyObject> {
    // SAFETY: a live list whose layout is `ListObject` (`in_use`), not touched by anyone else
    // while this exclusive borrow lasts (the caller's contract).
    let l = unsafe { &mut *(list as *mut ListObject) };
    let size = l.ob_size as usize;
    let new_size = size.saturating_add(extra);
    if (l.allocated as usize) < new_size {
        let grown = grown_allocation(size, new_size);
        if grown > isize::MAX as usize / std::mem::size_of::<*mut PyObject>() {
            // SAFETY: sets MemoryError; the GIL is held.
            unsafe { ffi::PyErr_NoMemory() };
            return None;
        }
        let bytes = grown * std::mem::size_of::<*mut PyObject>();
        // SAFETY: a list's item array is allocated with `PyMem_*` (as `list_resize` reallocates
        // it), or NULL when empty; on failure the old array is left as it was.
        let items =
            unsafe { ffi::PyMem_Realloc(l.ob_item as *mut c_void, bytes) } as *mut *mut PyObject;
        if items.is_null() {
            // SAFETY: sets MemoryError; the GIL is held.
            unsafe { ffi::PyErr_NoMemory() };
            return None;
        }
        l.ob_item = items;
        l.allocated = grown as Py_ssize_t;
    }
    // SAFETY: `size <= new_size <= allocated`, so the result stays inside the array.
    Some(unsafe { l.ob_item.add(size) })
}

/// Sets the list's length after its new items were stored by [`list_reserve_tail`]'s caller.
///
/// # Safety
/// As for [`list_reserve_tail`]; the first `size` items are valid references.
pub unsafe fn list_set_size(list: *mut PyObject, size: usize) {
    // SAFETY: a live list whose layout is `ListObject`, its first `size` slots filled (the
    // caller's contract).
    unsafe { (*(list as *mut ListObject)).ob_size = size as Py_ssize_t };
}
