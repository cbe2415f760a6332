//! The exception classes are the stdlib `pickle` module's own, so that code catching
//! `pickle.UnpicklingError` keeps working after `import pickle5_rs as pickle`.

use once_cell::sync::OnceCell;
use pyo3::prelude::*;

struct Classes {
    pickle_error: PyObject,
    pickling_error: PyObject,
    unpickling_error: PyObject,
}

static CLASSES: OnceCell<Classes> = OnceCell::new();

pub fn init(py: Python) -> PyResult<()> {
    let pickle = py.import("pickle")?;
    let classes = Classes {
        pickle_error: pickle.getattr("PickleError")?.into(),
        pickling_error: pickle.getattr("PicklingError")?.into(),
        unpickling_error: pickle.getattr("UnpicklingError")?.into(),
    };
    let _ = CLASSES.set(classes);
    Ok(())
}

fn classes() -> &'static Classes {
    CLASSES.get().expect("pickle5_rs.errors used before module initialisation")
}

fn make(class: &PyObject, msg: String) -> PyErr {
    let py = unsafe { Python::assume_gil_acquired() };
    match class.call1(py, (msg,)) {
        Ok(instance) => PyErr::from_instance(instance.as_ref(py)),
        Err(e) => e,
    }
}

pub fn pickle_error_class(py: Python) -> &PyAny {
    classes().pickle_error.as_ref(py)
}

pub fn pickling_error_class(py: Python) -> &PyAny {
    classes().pickling_error.as_ref(py)
}

pub fn unpickling_error_class(py: Python) -> &PyAny {
    classes().unpickling_error.as_ref(py)
}

pub fn unpickling(msg: impl Into<String>) -> PyErr {
    make(&classes().unpickling_error, msg.into())
}

pub fn pickling(msg: impl Into<String>) -> PyErr {
    make(&classes().pickling_error, msg.into())
}
