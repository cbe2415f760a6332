//! pickle5_rs: CPython's C pickler with protocol 5, in Rust, as one abi3 module for CPython 3.6-3.13.

// PyO3 0.15 expands `Option<&PyAny>` arguments into `as_deref()` calls this lint flags.
#![allow(clippy::needless_option_as_deref)]
// Every `unsafe` block lives in `ffi` (its module notes say what they rely on) and says why it is
// sound. PyO3's #[pyclass]/#[pymethods]/#[pyproto]/#[pyfunction]/#[pymodule] expand to unsafe
// code (C trampolines, `PyTypeInfo` impls); rustc does not report `unsafe_code` inside expansions
// of another crate's macros, so the lint covers exactly the code written here.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
// The body of an `unsafe fn` states its own soundness too, block by block.
#![deny(unsafe_op_in_unsafe_fn)]

// The wheels are built and tested for 64-bit targets only (README: Platforms); nothing 32-bit is
// tested, so such a build is refused rather than shipped untested.
#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "pickle5_rs supports 64-bit targets only (x86_64, aarch64 and other 64-bit platforms); \
     this target is 32-bit"
);

mod alloc;
mod args;
mod bigint;
mod buffer;
mod errors;
// The one place raw C-API calls and `unsafe` are allowed.
#[allow(unsafe_code)]
mod ffi;
mod in_use;
mod lookup;
mod opcodes;
mod pickler;
#[cfg(test)]
mod testing;
mod unpickler;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

#[pymodule]
fn _core(py: Python, m: &PyModule) -> PyResult<()> {
    ffi::resolve_late_stable_api(py)?;
    ffi::version::init(py)?;
    ffi::int_layout::init(py)?;
    ffi::seq_layout::init(py)?;
    ffi::bytes_layout::init(py)?;
    ffi::vectorcall::init(py)?;
    ffi::audit::init(py)?;
    errors::init(py)?;
    lookup::init(py)?;
    unpickler::register(py, m)?;
    buffer::init(py, m)?;
    m.add("PickleError", errors::pickle_error_class(py))?;
    m.add("PicklingError", errors::pickling_error_class(py))?;
    m.add("UnpicklingError", errors::unpickling_error_class(py))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("HIGHEST_PROTOCOL", opcodes::HIGHEST_PROTOCOL)?;
    m.add("DEFAULT_PROTOCOL", opcodes::DEFAULT_PROTOCOL)?;
    let table: Vec<&PyTuple> = opcodes::ALL
        .iter()
        .map(|(name, byte, proto, _)| {
            PyTuple::new(py, &[name.into_py(py), byte.into_py(py), proto.into_py(py)])
        })
        .collect();
    m.add("OPCODE_TABLE", table)?;
    pickler::register(py, m)?;
    m.add_function(wrap_pyfunction!(layout_access_status, m)?)?;
    Ok(())
}

/// Which struct layouts this interpreter reads or writes directly (docs/design.md): for tests.
#[pyfunction]
#[pyo3(name = "_layout_access")]
fn layout_access_status(py: Python) -> PyResult<PyObject> {
    let status = pyo3::types::PyDict::new(py);
    status.set_item("allowed", ffi::version::layout_access())?;
    status.set_item("heap_type_slots", ffi::heap_type::in_use())?;
    status.set_item("int_digits", ffi::int_layout::in_use())?;
    status.set_item("list_tuple_slots", ffi::seq_layout::in_use())?;
    status.set_item("bytes_shorten", ffi::bytes_layout::in_use())?;
    status.set_item("vectorcall", ffi::vectorcall::in_use())?;
    Ok(status.into())
}
