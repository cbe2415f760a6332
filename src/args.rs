//! Argument conversions shared by the module's entry points.

use pyo3::prelude::*;

/// A boolean argument taken by truth value, like the C API's `p` converter.
pub struct Truth(pub bool);

impl<'a> FromPyObject<'a> for Truth {
    fn extract(obj: &'a PyAny) -> PyResult<Self> {
        obj.is_true().map(Truth)
    }
}
