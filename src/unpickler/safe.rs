//! `safe_load` and `safe_loads`: `load` and `loads` restricted to an allow-list of globals
//! (`SafeUnpickler` is the package's `Unpickler` subclass calling `Unpickler._restrict`).

use pyo3::prelude::*;

use super::allow;
use super::load::LoadSettings;
use super::{load_bytes, load_file, make_settings, text_default};
use crate::args::Truth;
use crate::ffi::fastcall::{self, Fallback};
use crate::ffi::Obj;

/// The default of the `allow` keyword: the list the package registered (its safe stdlib preset).
fn default_allow(py: Python<'_>) -> &PyAny {
    match allow::default_list() {
        Some(list) => list.as_any(py),
        None => py.None().into_ref(py),
    }
}

/// Like `load`, but only the globals `allow` names may be imported and called.
#[pyfunction(
    file,
    "*",
    allow = "default_allow(_py)",
    fix_imports = "Truth(true)",
    encoding = "text_default(_py, \"ASCII\")",
    errors = "text_default(_py, \"strict\")",
    buffers = "None"
)]
#[pyo3(
    text_signature = "(file, *, allow=SAFE_STDLIB, fix_imports=True, encoding='ASCII', errors='strict', buffers=())"
)]
pub fn safe_load(
    file: &PyAny,
    allow: &PyAny,
    fix_imports: Truth,
    encoding: &PyAny,
    errors: &PyAny,
    buffers: Option<&PyAny>,
) -> PyResult<PyObject> {
    let mut settings = make_settings("safe_load", fix_imports.0, encoding, errors)?;
    settings.allow = Some(allow::compile(Some(&Obj::of(allow)))?);
    load_file(&Obj::of(file), settings, buffers.map(Obj::of).as_ref()).map(Obj::into_py)
}

/// Like `loads`, but only the globals `allow` names may be imported and called.
#[pyfunction(
    data,
    "/",
    "*",
    allow = "default_allow(_py)",
    fix_imports = "Truth(true)",
    encoding = "text_default(_py, \"ASCII\")",
    errors = "text_default(_py, \"strict\")",
    buffers = "None"
)]
pub fn safe_loads(
    data: &PyAny,
    allow: &PyAny,
    fix_imports: Truth,
    encoding: &PyAny,
    errors: &PyAny,
    buffers: Option<&PyAny>,
) -> PyResult<PyObject> {
    let mut settings = make_settings("safe_loads", fix_imports.0, encoding, errors)?;
    settings.allow = Some(allow::compile(Some(&Obj::of(allow)))?);
    load_bytes(&Obj::of(data), settings, buffers.map(Obj::of).as_ref()).map(Obj::into_py)
}

/// `safe_loads(data)` with `allow=` and `buffers=` keywords only; anything else goes to the
/// general function above.
fn safe_loads_fast(args: &[Obj], kwargs: &[(&Obj, &Obj)]) -> Result<PyResult<Obj>, Fallback> {
    let data = match args {
        [data] => data,
        _ => return Err(Fallback),
    };
    let mut buffers = None;
    let mut allow = None;
    for (name, value) in kwargs {
        if name.is(crate::interned!("allow")) {
            allow = Some(*value);
        } else if name.is(crate::interned!("buffers")) {
            buffers = Some(*value);
        } else {
            return Err(Fallback);
        }
    }
    let names = match allow::compile(allow) {
        Ok(names) => names,
        Err(e) => return Ok(Err(e)),
    };
    let settings = LoadSettings {
        allow: Some(names),
        ..LoadSettings::defaults()
    };
    Ok(load_bytes(data, settings, buffers))
}

/// `_core._set_allow_support(safe_class, normalize, default)`: the package's `SafeUnpickler`
/// class, the function turning any accepted `allow` argument into pairs, and the default list.
#[pyfunction]
#[pyo3(name = "_set_allow_support")]
fn set_allow_support(safe_class: &PyAny, normalize: &PyAny, default: &PyAny) {
    allow::set_support(Obj::of(safe_class), Obj::of(normalize), Obj::of(default));
}

pub fn register(py: Python, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(safe_load, m)?)?;
    m.add_function(wrap_pyfunction!(set_allow_support, m)?)?;
    allow::init(py)?;
    m.add("ForbiddenGlobalError", allow::forbidden_class(py)?)?;
    let general = Obj::of(wrap_pyfunction!(safe_loads, m)?.as_ref());
    let fast = fastcall::new_function::<2>(
        &Obj::of(m.as_ref()),
        c"safe_loads",
        c"safe_loads(data, /, *, allow=SAFE_STDLIB, fix_imports=True, encoding='ASCII', errors='strict', buffers=())\n--\n\nLike loads(), but only the globals the allow-list names may be imported and called.",
        safe_loads_fast,
        general,
    )?;
    m.add("safe_loads", fast.as_any(py))?;
    Ok(())
}
