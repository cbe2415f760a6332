//! The reference every instance of a heap type holds on its type, handled as CPython requires.
//!
//! `PyType_GenericAlloc` gives each instance of a heap type (ours are made by `PyType_FromSpec`,
//! and so are Python subclasses of them) a reference to its type. From 3.8 on the deallocator of
//! a heap type must release it, for direct and subclass instances alike, and from 3.9 on its
//! `tp_traverse` must visit it; before, `subtype_dealloc`/`subtype_traverse` do both for Python
//! subclasses and nobody does it for direct instances. PyO3 0.15 does neither, so a `Pickler`
//! subclass would never be freed and a cycle through one never collected.
//!
//! The instance may change type after it was made (`__class__` assignment moves the reference), and
//! it may never see `__init__`: only the deallocator knows which type to release. So the class's
//! own `tp_dealloc` and `tp_traverse` slots are wrapped: each wrapper reads `Py_TYPE(self)` at that
//! moment and calls PyO3's function. The two slots are written in the type object, which is layout
//! access ([`version::layout_access`]), verified against `PyType_GetSlot` before anything is
//! written. Where layout access is not allowed the slots stay PyO3's: the type reference then
//! leaks (the class is never freed), which is safe.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::ffi;

use super::version;

/// Word index of `tp_dealloc` and `tp_traverse` in `PyTypeObject` (release builds, 3.6 to 3.13:
/// the three words of the object header, then `tp_name`, `tp_basicsize`, `tp_itemsize`,
/// `tp_dealloc`, ..., `tp_flags`, `tp_doc`, `tp_traverse`).
const DEALLOC_WORD: usize = 6;
const TRAVERSE_WORD: usize = 23;

/// Which of our classes a wrapper serves (each has its own copy of the wrappers).
pub const PICKLER: usize = 0;
pub const UNPICKLER: usize = 1;
const CLASSES: usize = 2;

/// Per class: the class itself and PyO3's `tp_dealloc` / `tp_traverse` (0 until wrapped).
static CLASS: [AtomicUsize; CLASSES] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static PYO3_DEALLOC: [AtomicUsize; CLASSES] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static PYO3_TRAVERSE: [AtomicUsize; CLASSES] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Whether the wrappers are installed on every class.
pub fn in_use() -> bool {
    CLASS.iter().all(|c| c.load(Ordering::Relaxed) != 0)
}

type Traverse = unsafe extern "C" fn(*mut ffi::PyObject, ffi::visitproc, *mut c_void) -> c_int;
type Dealloc = unsafe extern "C" fn(*mut ffi::PyObject);

/// Wraps `ty`'s deallocator and traversal (`ty` is our class number `K`). Returns whether the
/// wrappers are installed; false leaves the type as PyO3 made it.
pub fn adopt_instance_type_refs<const K: usize>(ty: *mut ffi::PyTypeObject) -> bool {
    if !version::layout_access() {
        return false;
    }
    let words = ty as *mut usize;
    // SAFETY: `ty` is a live heap type object; the two words are inside its `PyTypeObject`
    // (whose head has this layout on the versions `layout_access` allows), and they are only
    // written after they were seen to hold exactly what `PyType_GetSlot` reports for those slots.
    unsafe {
        let dealloc = ffi::PyType_GetSlot(ty, ffi::Py_tp_dealloc) as usize;
        let traverse = ffi::PyType_GetSlot(ty, ffi::Py_tp_traverse) as usize;
        let dealloc_at = words.add(DEALLOC_WORD);
        let traverse_at = words.add(TRAVERSE_WORD);
        if dealloc == 0 || traverse == 0 || *dealloc_at != dealloc || *traverse_at != traverse {
            return false;
        }
        CLASS[K].store(ty as usize, Ordering::Relaxed);
        PYO3_DEALLOC[K].store(dealloc, Ordering::Relaxed);
        PYO3_TRAVERSE[K].store(traverse, Ordering::Relaxed);
        *dealloc_at = dealloc_holding_type::<K> as Dealloc as usize;
        *traverse_at = traverse_visiting_type::<K> as Traverse as usize;
    }
    true
}

/// Whether this instance's deallocator (rather than `subtype_dealloc`) releases its type.
fn releases_type<const K: usize>(ty: *mut ffi::PyTypeObject) -> bool {
    version::running() >= (3, 8) || ty as usize == CLASS[K].load(Ordering::Relaxed)
}

/// Whether this instance's traversal (rather than `subtype_traverse`) visits its type.
fn visits_type<const K: usize>(ty: *mut ffi::PyTypeObject) -> bool {
    version::running() >= (3, 9) || ty as usize == CLASS[K].load(Ordering::Relaxed)
}

/// The `tp_dealloc` of class `K`: CPython calls it with the GIL held on an instance (of the class
/// or a subclass) whose reference count reached zero.
unsafe extern "C" fn dealloc_holding_type<const K: usize>(obj: *mut ffi::PyObject) {
    // SAFETY: `obj` is a dying GC-tracked instance (see above). `PYO3_DEALLOC[K]` was stored by
    // `adopt_instance_type_refs` before this wrapper was installed, from the class's own
    // `tp_dealloc` slot, so it is PyO3's deallocator for this class. The instance's type is read
    // before its memory is freed; the reference the instance held on it is released after, once.
    unsafe {
        // Out of the collector's sight first, as C deallocators do: dropping the fields may run
        // Python code, and a collection then must not traverse a half-dropped instance.
        ffi::PyObject_GC_UnTrack(obj as *mut c_void);
        // The type the instance has now, whatever it was made as.
        let ty = ffi::Py_TYPE(obj);
        let pyo3_dealloc: Dealloc = std::mem::transmute(PYO3_DEALLOC[K].load(Ordering::Relaxed));
        pyo3_dealloc(obj);
        // After the memory is freed, as CPython's own deallocators do (the type may go with it).
        if releases_type::<K>(ty) {
            ffi::Py_DECREF(ty as *mut ffi::PyObject);
        }
    }
}

/// The `tp_traverse` of class `K`.
unsafe extern "C" fn traverse_visiting_type<const K: usize>(
    obj: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: the collector calls this with a live instance of class `K` (or a subclass) and its
    // own `visit`/`arg`. `PYO3_TRAVERSE[K]` was stored by `adopt_instance_type_refs` before this
    // wrapper was installed, from the class's own `tp_traverse` slot: PyO3's traversal.
    unsafe {
        let ty = ffi::Py_TYPE(obj);
        if visits_type::<K>(ty) {
            let r = visit(ty as *mut ffi::PyObject, arg);
            if r != 0 {
                return r;
            }
        }
        let pyo3_traverse: Traverse = std::mem::transmute(PYO3_TRAVERSE[K].load(Ordering::Relaxed));
        pyo3_traverse(obj, visit, arg)
    }
}
