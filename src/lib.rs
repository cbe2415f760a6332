//! pickle5_rs: CPython's C pickler with protocol 5, in Rust, as one abi3 module for CPython 3.6-3.13.

// PyO3 0.15 expands `Option<&PyAny>` arguments into `as_deref()` calls this lint flags.
#![allow(clippy::needless_option_as_deref)]

mod alloc;
mod args;
mod buffer;
mod errors;
mod ffi;
mod hooks;
mod opcodes;
mod pickler;
mod tables;
mod unpickler;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

#[pymodule]
fn _core(py: Python, m: &PyModule) -> PyResult<()> {
    ffi::version::init(py)?;
    errors::init(py)?;
    tables::init(py)?;
    unpickler::register(py, m)?;
    buffer::init(py, m)?;
    m.add("PickleError", errors::pickle_error_class(py))?;
    m.add("PicklingError", errors::pickling_error_class(py))?;
    m.add("UnpicklingError", errors::unpickling_error_class(py))?;
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
    Ok(())
}
