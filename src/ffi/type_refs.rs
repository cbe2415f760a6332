//! The reference every instance holds on its (heap) type.
//!
//! An instance of a heap type owns a reference to its type (taken by `PyType_GenericAlloc`). Before
//! 3.8, Python subclasses release it in `subtype_dealloc` and the class's own `tp_dealloc` must
//! release it for direct instances; from 3.8 on the class's `tp_dealloc` must release it for
//! subclass instances too. PyO3 0.15 built for the 3.6 ABI never does, so the type's count grows
//! with each instance and a `Pickler`/`Unpickler` subclass created at run time is never freed.
//! Our pyclasses record their type
//! and, at the very end of their `Drop` (after releasing every object they hold, so no Python code
//! can run before the memory is freed), hand it here. The reference is dropped at the next safe
//! point: the start of the next such `Drop`, or a pending call from the eval loop — both certainly
//! after the instance's memory is gone.

use std::cell::Cell;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::ffi;

use super::version;

/// Types whose instance reference awaits release (addresses; each entry is one reference).
static PENDING: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static FLUSH_SCHEDULED: AtomicBool = AtomicBool::new(false);

/// The type of the instance that owns it, recorded once the instance is known (in `__init__`).
#[derive(Default)]
pub struct InstanceType(Cell<usize>);

// SAFETY: only touched with the GIL held.
unsafe impl Sync for InstanceType {}

impl InstanceType {
    /// Records `obj`'s type, if the reference on it is ours to release: always from 3.8 on, and
    /// before only for direct instances of `pyclass` (whose deallocator is PyO3's alone).
    pub fn record(&self, obj: &super::Obj, pyclass: *mut ffi::PyTypeObject) {
        let ty = obj.type_ptr();
        if self.0.get() == 0 && (version::running() >= (3, 8) || ty == pyclass) {
            self.0.set(ty as usize);
        }
    }

    /// Called last in the owner's `Drop`, after it has released everything else it holds.
    pub fn release_after_dealloc(&self) {
        let ty = self.0.replace(0);
        if ty == 0 {
            return;
        }
        if let Ok(mut pending) = PENDING.lock() {
            pending.push(ty);
        }
        if !FLUSH_SCHEDULED.swap(true, Ordering::AcqRel) {
            // SAFETY: the GIL is held; the callback runs later from the eval loop with the GIL.
            if unsafe { ffi::Py_AddPendingCall(Some(flush_callback), std::ptr::null_mut()) } < 0 {
                FLUSH_SCHEDULED.store(false, Ordering::Release);
            }
        }
    }
}

/// Releases the references handed over so far; their instances are fully deallocated by now.
/// Called at the start of an owner's `Drop`.
pub fn flush_released_types() {
    let types = match PENDING.lock() {
        Ok(mut pending) if !pending.is_empty() => std::mem::take(&mut *pending),
        _ => return,
    };
    for ty in types {
        // SAFETY: each entry is a reference the (freed) instance owned and nobody released.
        unsafe { ffi::Py_DECREF(ty as *mut ffi::PyObject) };
    }
}

extern "C" fn flush_callback(_: *mut c_void) -> c_int {
    FLUSH_SCHEDULED.store(false, Ordering::Release);
    flush_released_types();
    0
}
