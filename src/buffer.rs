//! `PickleBuffer`: our own type on CPython 3.6/3.7 (see `ffi::picklebuffer`), the stdlib's
//! `pickle.PickleBuffer` on 3.8+. The pickler and unpickler use only the functions here, which
//! behave the same on every version.

use once_cell::sync::OnceCell;
use pyo3::prelude::*;

use crate::ffi::buffer::BufferView;
use crate::ffi::{self, Obj};

/// The PickleBuffer type of the running interpreter (a strong reference, kept for the process)
/// and its address, for exact-type checks.
static PICKLE_BUFFER_TYPE: OnceCell<(PyObject, usize)> = OnceCell::new();

/// Finds or creates the PickleBuffer type; on 3.6/3.7 also adds it to the module as `PickleBuffer`
/// (on 3.8+ the Python package re-exports `pickle.PickleBuffer` itself).
pub fn init(py: Python, module: &PyModule) -> PyResult<()> {
    let ty: PyObject = if ffi::version::is_frozen_layout() {
        let ty = ffi::picklebuffer::create_type()?.into_py();
        module.add("PickleBuffer", ty.as_ref(py))?;
        ty
    } else {
        py.import("pickle")?.getattr("PickleBuffer")?.into()
    };
    let addr = Obj::of_py(&ty).addr();
    let _ = PICKLE_BUFFER_TYPE.set((ty, addr));
    module.add_function(pyo3::wrap_pyfunction!(pickle_buffer_probe, module)?)?;
    module.add_function(pyo3::wrap_pyfunction!(readonly_view_hook, module)?)?;
    Ok(())
}

/// Whether `obj` is a PickleBuffer. The type cannot be subclassed, so this is an exact-type check,
/// as in the C pickler.
#[inline]
pub fn is_pickle_buffer(obj: &Obj) -> bool {
    PICKLE_BUFFER_TYPE
        .get()
        .is_some_and(|(_, addr)| obj.type_ptr() as usize == *addr)
}

/// The `pickle5` backport's PickleBuffer type, once seen (it never changes after import).
static BACKPORT_PICKLE_BUFFER: OnceCell<(Obj, usize)> = OnceCell::new();

/// On 3.6/3.7, the address of the `pickle5` backport's PickleBuffer type when that module is loaded
/// (numpy and others then wrap their buffers in it), so the pickler accepts those too; else 0.
/// Costs one dict lookup per call until the backport shows up.
pub fn backport_pickle_buffer_type() -> usize {
    if !ffi::version::is_frozen_layout() {
        return 0;
    }
    if let Some((_, addr)) = BACKPORT_PICKLE_BUFFER.get() {
        return *addr;
    }
    let module = match crate::lookup::tables()
        .sys_modules
        .dict_get(crate::interned!("pickle5"))
    {
        Ok(Some(module)) => module,
        _ => return 0,
    };
    match module.getattr_opt(crate::interned!("PickleBuffer")) {
        Ok(Some(ty)) if ty.is_type() => {
            let addr = ty.addr();
            if PICKLE_BUFFER_TYPE
                .get()
                .is_some_and(|(_, ours)| *ours == addr)
            {
                // pickle5_rs itself serving as `pickle5`: nothing foreign to accept.
                return 0;
            }
            // Held for the process, so the address can never be reused by another type.
            BACKPORT_PICKLE_BUFFER.get_or_init(|| (ty, addr)).1
        }
        _ => 0,
    }
}

/// A view of the memory a PickleBuffer wraps, with the layout the wrapped object exports:
/// `readonly()` decides BYTEARRAY8 vs BYTES / READONLY_BUFFER, `is_contiguous(b'A')` must hold
/// before `as_slice()` is written (it is false with suboffsets too). A released PickleBuffer
/// gives ValueError("operation forbidden on released PickleBuffer object").
/// The view keeps the wrapped object exported until it is dropped.
pub fn pickle_buffer_view(pickle_buffer: &Obj) -> PyResult<BufferView> {
    BufferView::full(pickle_buffer)
}

/// What the unpickler's READONLY_BUFFER does with a buffer object: `None` if its buffer is
/// read-only already (keep the object), else a read-only memoryview over the same memory.
pub fn readonly_view(obj: &Obj) -> PyResult<Option<Obj>> {
    if obj.is_exact_type(ffi::types::bytes()) {
        return Ok(None);
    }
    ffi::picklebuffer::readonly_memoryview(obj)
}

/// Test hook for the functions above: `None` if `obj` is not a PickleBuffer, else
/// `(readonly, contiguous, data)` where `data` is None for non-contiguous memory.
#[pyfunction]
#[pyo3(name = "_pickle_buffer_probe")]
fn pickle_buffer_probe(py: Python, obj: &PyAny) -> PyResult<PyObject> {
    let obj = Obj::of(obj);
    if !is_pickle_buffer(&obj) {
        return Ok(py.None());
    }
    let view = pickle_buffer_view(&obj)?;
    let contiguous = view.is_contiguous(b'A');
    let data: PyObject = if contiguous {
        pyo3::types::PyBytes::new(py, view.as_slice()).into()
    } else {
        py.None()
    };
    Ok((view.readonly(), contiguous, data).into_py(py))
}

/// Test hook for `readonly_view`.
#[pyfunction]
#[pyo3(name = "_readonly_view")]
fn readonly_view_hook(py: Python, obj: &PyAny) -> PyResult<PyObject> {
    Ok(match readonly_view(&Obj::of(obj))? {
        Some(view) => view.into_py(),
        None => py.None(),
    })
}
