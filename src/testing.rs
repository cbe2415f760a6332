//! For the Rust unit tests (`cargo test --no-default-features`, `nox -s rust_tests`): an embedded
//! interpreter for the tests that need Python objects. The helpers under test that need none run
//! without it.

use pyo3::Python;

/// Runs `f` with the embedded interpreter started and the GIL held (what every `Obj` needs).
pub fn with_python<R>(f: impl FnOnce(Python) -> R) -> R {
    pyo3::prepare_freethreaded_python();
    Python::with_gil(f)
}
