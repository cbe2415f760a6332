//! The exception classes are the stdlib `pickle` module's own, so that code catching
//! `pickle.UnpicklingError` keeps working after `import pickle5_rs as pickle`.

use std::fmt;

use once_cell::sync::OnceCell;
use pyo3::prelude::*;
use pyo3::type_object::PyTypeObject;

use crate::ffi::Obj;

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
    CLASSES
        .get()
        .expect("pickle5_rs.errors used before module initialisation")
}

fn make(class: &PyObject, msg: &str) -> PyErr {
    match crate::ffi::new_str(msg) {
        Ok(text) => make_from(class, text),
        Err(e) => e,
    }
}

fn make_from(class: &PyObject, text: Obj) -> PyErr {
    let py = crate::ffi::gil();
    match class.call1(py, (text.into_py(),)) {
        Ok(instance) => PyErr::from_instance(instance.as_ref(py)),
        Err(e) => e,
    }
}

/// The formatted message as a Python str. Its length is measured first and the memory reserved
/// fallibly, so a message quoting huge input raises `MemoryError` instead of aborting. (The
/// arguments are displayed twice: they must be plain values, not Python calls.)
pub fn message(args: fmt::Arguments) -> PyResult<Obj> {
    struct Measure(usize);
    impl fmt::Write for Measure {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = self.0.saturating_add(s.len());
            Ok(())
        }
    }
    if let Some(text) = args.as_str() {
        return crate::ffi::new_str(text);
    }
    let mut measure = Measure(0);
    let _ = fmt::write(&mut measure, args);
    let mut text = String::new();
    text.try_reserve_exact(measure.0)
        .map_err(|_| crate::alloc::no_memory())?;
    let _ = fmt::write(&mut text, args);
    crate::ffi::new_str(&text)
}

/// `E(message)` for a formatted message (see [`message`]).
pub fn new_fmt<E: PyTypeObject>(args: fmt::Arguments) -> PyErr {
    match message(args) {
        Ok(text) => PyErr::new::<E, _>(text.into_py()),
        Err(e) => e,
    }
}

/// An `UnpicklingError` with a formatted message (see [`message`]).
pub fn unpickling_fmt(args: fmt::Arguments) -> PyErr {
    match message(args) {
        Ok(text) => make_from(&classes().unpickling_error, text),
        Err(e) => e,
    }
}

/// A `PicklingError` with a formatted message (see [`message`]).
pub fn pickling_fmt(args: fmt::Arguments) -> PyErr {
    match message(args) {
        Ok(text) => make_from(&classes().pickling_error, text),
        Err(e) => e,
    }
}

pub fn pickle_error_class(py: Python<'_>) -> &PyAny {
    classes().pickle_error.as_ref(py)
}

pub fn pickling_error_class(py: Python<'_>) -> &PyAny {
    classes().pickling_error.as_ref(py)
}

pub fn unpickling_error_class(py: Python<'_>) -> &PyAny {
    classes().unpickling_error.as_ref(py)
}

pub fn unpickling(msg: impl AsRef<str>) -> PyErr {
    make(&classes().unpickling_error, msg.as_ref())
}

pub fn pickling(msg: impl AsRef<str>) -> PyErr {
    make(&classes().pickling_error, msg.as_ref())
}

/// A type's `tp_name` as the C pickler prints it: `module.Name` for static (C) types outside
/// builtins, the bare name otherwise.
pub fn tp_name(type_obj: &Obj) -> TpName {
    let name = match type_obj.getattr_opt(crate::interned!("__name__")) {
        Ok(Some(n)) => crate::ffi::Text::of_any(n),
        _ => return TpName(None, crate::ffi::Text::fixed("?")),
    };
    if type_obj.is_heap_type() {
        return TpName(None, name);
    }
    match type_obj.getattr_opt(crate::interned!("__module__")) {
        Ok(Some(m)) if !m.str_eq("builtins") => TpName(Some(crate::ffi::Text::of_any(m)), name),
        _ => TpName(None, name),
    }
}

/// What [`tp_name`] returns: shown by `Display`, without copying into a `String`.
pub struct TpName(Option<crate::ffi::Text>, crate::ffi::Text);

impl std::fmt::Display for TpName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(module) = &self.0 {
            write!(f, "{}.", module)?;
        }
        write!(f, "{}", self.1)
    }
}
