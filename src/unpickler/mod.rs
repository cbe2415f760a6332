//! The `Unpickler` class and the module-level `load`/`loads`.

mod allow;
mod find_class;
mod load;
mod memo;
mod reader;
mod safe;
mod stack;

use std::cell::{Cell, RefCell};

use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::gc::{PyGCProtocol, PyVisit};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::PyTraverseError;

use crate::args::Truth;
use crate::errors;
use crate::ffi::fastcall::{self, Fallback};
use crate::ffi::heap_type;
use crate::ffi::{self, Obj};
use crate::in_use::InUse;
use crate::lookup::{Attr, BuiltinAttr, Hook};
use allow::{ResolvedGlobals, Restriction};
use load::{LoadSettings, Loader};
use memo::Memo;
use reader::{BytesSource, FileMethods, FileSource};

/// The default of the `encoding`/`errors` keywords (distinct from an explicit None, which is refused).
fn text_default<'py>(py: Python<'py>, text: &'static str) -> &'py PyAny {
    let value = match text {
        "ASCII" => crate::interned!("ASCII"),
        _ => crate::interned!("strict"),
    };
    value.as_any(py)
}

/// Interprets the `encoding`/`errors` keywords shared by every entry point, as `_pickle`'s argument
/// parsing does before anything else: each must be a str whose UTF-8 form has no NUL. The
/// `buffers` keyword is interpreted later (see [`buffers_iter`]), after the data or file.
/// `func` names the entry point in messages, as `_pickle`'s argument parser does.
fn make_settings(
    func: &str,
    fix_imports: bool,
    encoding: &PyAny,
    errors: &PyAny,
) -> PyResult<LoadSettings> {
    let text_arg = |value: &PyAny, name: &str, position: u8| -> PyResult<Obj> {
        let v = Obj::of(value);
        if !v.is_str() {
            let type_name = if v.is_none() {
                String::from("None")
            } else {
                crate::errors::tp_name(&v.type_obj()).to_string()
            };
            let argument = if ffi::version::running() >= (3, 8) {
                format!("'{}'", name)
            } else {
                position.to_string()
            };
            return Err(PyTypeError::new_err(format!(
                "{}() argument {} must be str, not {}",
                func, argument, type_name
            )));
        }
        if v.str_utf8()?.contains(&0) {
            return Err(PyValueError::new_err("embedded null character"));
        }
        Ok(v)
    };
    Ok(LoadSettings {
        fix_imports,
        encoding: text_arg(encoding, "encoding", 3)?,
        errors: text_arg(errors, "errors", 4)?,
        persistent_load: None,
        find_class: None,
        buffers: None,
        allow: None,
    })
}

/// An iterator over the `buffers` argument (None means no out-of-band buffers).
fn buffers_iter(buffers: Option<&Obj>) -> PyResult<Option<Obj>> {
    match buffers {
        Some(b) if !b.is_none() => Ok(Some(b.iter()?)),
        _ => Ok(None),
    }
}

fn run_loader<S: reader::Source>(
    src: S,
    settings: &LoadSettings,
    memo: &RefCell<Memo>,
    proto: &Cell<u8>,
) -> PyResult<Obj> {
    let resolved = RefCell::new(ResolvedGlobals::default());
    run_loader_keeping_source(src, settings, memo, proto, &resolved).0
}

/// Like `run_loader`, also handing back the source (with what it read from the file but did
/// not use).
fn run_loader_keeping_source<S: reader::Source>(
    src: S,
    settings: &LoadSettings,
    memo: &RefCell<Memo>,
    proto: &Cell<u8>,
    resolved: &RefCell<ResolvedGlobals>,
) -> (PyResult<Obj>, S) {
    let mut loader = Loader {
        src,
        stack: stack::Stack::default(),
        memo,
        settings,
        proto,
        plain_types: Default::default(),
        resolved,
    };
    let result = loader.run();
    (result, loader.src)
}

/// Read and return an object from the pickle data stored in a file.
///
/// The file needs `read()` and `readline()` methods; `readinto()` and `peek()` are used when present.
#[pyfunction(
    file,
    "*",
    fix_imports = "Truth(true)",
    encoding = "text_default(_py, \"ASCII\")",
    errors = "text_default(_py, \"strict\")",
    buffers = "None"
)]
#[pyo3(
    text_signature = "(file, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())"
)]
pub fn load(
    file: &PyAny,
    fix_imports: Truth,
    encoding: &PyAny,
    errors: &PyAny,
    buffers: Option<&PyAny>,
) -> PyResult<PyObject> {
    let settings = make_settings("load", fix_imports.0, encoding, errors)?;
    load_file(&Obj::of(file), settings, buffers.map(Obj::of).as_ref()).map(Obj::into_py)
}

/// Loads one pickle from the file object `file` (`load` and `safe_load`).
fn load_file(file: &Obj, mut settings: LoadSettings, buffers: Option<&Obj>) -> PyResult<Obj> {
    let src = FileSource::new(FileMethods::of(file)?);
    settings.buffers = buffers_iter(buffers)?;
    run_loader(
        src,
        &settings,
        &RefCell::new(Memo::default()),
        &Cell::new(0),
    )
}

/// Read and return an object from the given pickle data (any bytes-like object, not copied).
#[pyfunction(
    data,
    "/",
    "*",
    fix_imports = "Truth(true)",
    encoding = "text_default(_py, \"ASCII\")",
    errors = "text_default(_py, \"strict\")",
    buffers = "None"
)]
#[pyo3(
    text_signature = "(data, /, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())"
)]
pub fn loads(
    data: &PyAny,
    fix_imports: Truth,
    encoding: &PyAny,
    errors: &PyAny,
    buffers: Option<&PyAny>,
) -> PyResult<PyObject> {
    let settings = make_settings("loads", fix_imports.0, encoding, errors)?;
    load_bytes(&Obj::of(data), settings, buffers.map(Obj::of).as_ref()).map(Obj::into_py)
}

/// `loads` before 3.9, where `data` may also be passed by keyword.
#[pyfunction(
    data,
    "*",
    fix_imports = "Truth(true)",
    encoding = "text_default(_py, \"ASCII\")",
    errors = "text_default(_py, \"strict\")",
    buffers = "None"
)]
#[pyo3(name = "loads")]
fn loads_data_keyword(
    data: &PyAny,
    fix_imports: Truth,
    encoding: &PyAny,
    errors: &PyAny,
    buffers: Option<&PyAny>,
) -> PyResult<PyObject> {
    loads(data, fix_imports, encoding, errors, buffers)
}

/// Loads from the bytes-like `data`; `buffers` is interpreted once the data is, as in `_pickle`.
fn load_bytes(data: &Obj, mut settings: LoadSettings, buffers: Option<&Obj>) -> PyResult<Obj> {
    let src = BytesSource::new(data)?;
    settings.buffers = buffers_iter(buffers)?;
    run_loader(
        src,
        &settings,
        &RefCell::new(Memo::default()),
        &Cell::new(0),
    )
}

/// `loads(data)` and `loads(data, buffers=...)`, the calls that matter for speed; anything else
/// goes to the general `loads` above.
fn loads_fast(args: &[Obj], kwargs: &[(&Obj, &Obj)]) -> Result<PyResult<Obj>, Fallback> {
    let data = match args {
        [data] => data,
        _ => return Err(Fallback),
    };
    let mut buffers = None;
    for (name, value) in kwargs {
        if !name.is(crate::interned!("buffers")) {
            return Err(Fallback);
        }
        buffers = Some(*value);
    }
    Ok(load_bytes(data, LoadSettings::defaults(), buffers))
}

/// Adds the unpickler's classes and functions to the module.
pub fn register(py: Python, m: &PyModule) -> PyResult<()> {
    m.add_class::<Unpickler>()?;
    BUILTIN_FIND_CLASS.record_method(
        &Obj::of(py.get_type::<Unpickler>()),
        crate::interned!("find_class"),
    )?;
    heap_type::adopt_instance_type_refs::<{ heap_type::UNPICKLER }>(
        py.get_type::<Unpickler>().as_type_ptr(),
    );
    m.add_class::<UnpicklerMemoProxy>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    // As for `dumps`: a cheaper calling convention, handing unusual calls to the general one
    // (whose `data` may be passed by keyword before 3.9, as in `_pickle`).
    let general = if ffi::version::running() < (3, 9) {
        wrap_pyfunction!(loads_data_keyword, m)?
    } else {
        wrap_pyfunction!(loads, m)?
    };
    let general = Obj::of(general.as_ref());
    let fast = fastcall::new_function::<1>(
        &Obj::of(m.as_ref()),
        c"loads",
        c"loads(data, /, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())\n--\n\nRead and return an object from the given pickle data (any bytes-like object, not copied).",
        loads_fast,
        general,
    )?;
    m.add("loads", fast.as_any(py))?;
    // The C type's getset descriptors (whose setters see deletion); `persistent_load` is a method
    // from 3.13 on (defined by the Python subclass).
    let ty = Obj::of(py.get_type::<Unpickler>());
    ffi::members::install_getset(&ty, c"memo", get_memo, set_memo)?;
    if ffi::version::running() < (3, 13) {
        ffi::members::install_getset(
            &ty,
            c"persistent_load",
            get_persistent_load,
            set_persistent_load,
        )?;
        PERSISTENT_LOAD_DESCRIPTOR
            .record_data_descriptor(&ty, crate::interned!("persistent_load"))?;
    }
    safe::register(py, m)?;
    Ok(())
}

/// The built-in `Unpickler.find_class` (the class is mutable: a later assignment to
/// `Unpickler.find_class` is an override like a subclass's).
static BUILTIN_FIND_CLASS: BuiltinAttr = BuiltinAttr::new();
/// The `persistent_load` descriptor before 3.13.
static PERSISTENT_LOAD_DESCRIPTOR: BuiltinAttr = BuiltinAttr::new();

/// Whether `self.find_class` would resolve to the built-in one, so the load may call it directly.
fn uses_builtin_find_class(slf: &PyAny) -> PyResult<bool> {
    let found = BUILTIN_FIND_CLASS.lookup(&Obj::of(slf), crate::interned!("find_class"))?;
    Ok(matches!(found, Attr::Builtin))
}

/// The `persistent_load` a load uses: from 3.13 on `_pickle` looks it up as a method at load
/// time; before, it is the one found by `__init__` or assigned since.
fn current_persistent_load(slf: &PyCell<Unpickler>) -> PyResult<Option<Obj>> {
    if ffi::version::running() >= (3, 13) {
        let this = Obj::of(slf.as_ref());
        return Ok(Some(this.getattr(crate::interned!("persistent_load"))?));
    }
    match &*slf.borrow().persistent_load.borrow() {
        Some(hook) => Ok(Some(hook.bind(&Obj::of(slf.as_ref()))?)),
        None => Ok(None),
    }
}

/// What `__init__` sets up; absent until it has run.
struct Setup {
    file: FileMethods,
    settings: LoadSettings,
}

/// Reads a pickle data stream from a binary file (an object with `read()` and `readline()`).
///
/// `Unpickler(file, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())`
#[pyclass(subclass, module = "pickle5_rs._core", name = "Unpickler")]
pub struct Unpickler {
    setup: RefCell<Option<Setup>>,
    memo: RefCell<Memo>,
    proto: Cell<u8>,
    persistent_load: RefCell<Option<Hook>>,
    /// Bytes already read from the file that the last `load()` did not use (the rest of a frame
    /// that extends past STOP, or of one cut short): the next `load()` starts with them, as
    /// `_pickle`'s input buffer does.
    leftover: RefCell<Vec<u8>>,
    in_use: InUse,
    /// The allow-list of a `SafeUnpickler`.
    restriction: Restriction,
}

impl Unpickler {
    /// Puts `memo` in place; the old entries are released after the borrow ends, as releasing
    /// them may run Python code that looks at the memo.
    fn replace_memo(&self, memo: Memo) -> PyResult<()> {
        self.in_use.replace("Unpickler", &self.memo, memo)
    }

    fn initialize(
        slf: &PyAny,
        file: &PyAny,
        fix_imports: bool,
        encoding: &PyAny,
        errors: &PyAny,
        buffers: Option<&PyAny>,
    ) -> PyResult<()> {
        let cell: &PyCell<Unpickler> = slf.downcast()?;
        cell.borrow().in_use.check("Unpickler")?;
        let mut settings = make_settings("Unpickler", fix_imports, encoding, errors)?;
        let methods = FileMethods::of(&Obj::of(file))?;
        settings.buffers = buffers_iter(buffers.map(Obj::of).as_ref())?;
        {
            let this = cell.borrow();
            *this.setup.borrow_mut() = Some(Setup {
                file: methods,
                settings,
            });
            this.replace_memo(Memo::default())?;
            this.proto.set(0);
            this.leftover.borrow_mut().clear();
            this.restriction.forget_resolved();
            this.restriction.on_init(&Obj::of(slf))?;
        }
        // A subclass's `persistent_load` method (or a class attribute) wins, as in `_pickle`; the
        // type's own descriptor gives back what was assigned (nothing to look up then).
        let me = Obj::of(slf);
        let name = crate::interned!("persistent_load");
        if let Attr::Other(found) = PERSISTENT_LOAD_DESCRIPTOR.lookup(&me, name)? {
            let hook = match found {
                Some(h) => Some(Hook::from_attr(&me, h)?),
                None => None,
            };
            *cell.borrow().persistent_load.borrow_mut() = hook;
        }
        Ok(())
    }
}

#[pymethods]
impl Unpickler {
    #[new]
    #[args(args = "*", kwargs = "**")]
    fn new(args: &PyTuple, kwargs: Option<&PyDict>) -> PyResult<Self> {
        let _ = (args, kwargs);
        Ok(Unpickler {
            setup: RefCell::new(None),
            memo: RefCell::new(Memo::default()),
            proto: Cell::new(0),
            persistent_load: RefCell::new(None),
            leftover: RefCell::new(Vec::new()),
            in_use: InUse::default(),
            restriction: Restriction::default(),
        })
    }

    #[args(
        file,
        "*",
        fix_imports = "Truth(true)",
        encoding = "text_default(_py, \"ASCII\")",
        errors = "text_default(_py, \"strict\")",
        buffers = "None"
    )]
    fn __init__(
        slf: &PyCell<Self>,
        file: &PyAny,
        fix_imports: Truth,
        encoding: &PyAny,
        errors: &PyAny,
        buffers: Option<&PyAny>,
    ) -> PyResult<()> {
        Unpickler::initialize(slf.as_ref(), file, fix_imports.0, encoding, errors, buffers)
    }

    /// Load a pickle.
    ///
    /// Read a pickled object representation from the open file object given in the constructor,
    /// and return the reconstituted object hierarchy specified therein.
    #[pyo3(text_signature = "($self, /)")]
    fn load(slf: &PyCell<Self>) -> PyResult<PyObject> {
        let this = slf.borrow();
        let _running = this.in_use.enter("Unpickler")?;
        let (methods, settings) = {
            let setup = this.setup.borrow();
            let setup = setup.as_ref().ok_or_else(|| {
                let name = slf.get_type().name().unwrap_or("Unpickler").to_string();
                errors::unpickling_fmt(format_args!(
                    "Unpickler.__init__() was not called by {}.__init__()",
                    name
                ))
            })?;
            let find_class = if uses_builtin_find_class(slf.as_ref())? {
                None
            } else {
                Some(Obj::of(slf.getattr("find_class")?))
            };
            let settings = LoadSettings {
                fix_imports: setup.settings.fix_imports,
                encoding: setup.settings.encoding.clone(),
                errors: setup.settings.errors.clone(),
                persistent_load: current_persistent_load(slf)?,
                find_class,
                buffers: setup.settings.buffers.clone(),
                allow: this.restriction.names(),
            };
            (setup.file.clone(), settings)
        };
        // The load uses the unpickler's own memo, which hooks called back from Python may read,
        // clear or replace meanwhile (the loader borrows it only for each lookup or store).
        let leftover = std::mem::take(&mut *this.leftover.borrow_mut());
        let src = FileSource::with_leftover(methods, leftover);
        let (result, src) = run_loader_keeping_source(
            src,
            &settings,
            &this.memo,
            &this.proto,
            &this.restriction.resolved,
        );
        match src.into_leftover() {
            Ok(bytes) => *this.leftover.borrow_mut() = bytes,
            Err(e) if result.is_ok() => return Err(e),
            Err(_) => {}
        }
        result.map(Obj::into_py)
    }

    /// Return an object from a specified module.
    ///
    /// If necessary, the module will be imported. Subclasses may override this method (e.g. to
    /// restrict unpickling of arbitrary classes and functions).
    #[pyo3(text_signature = "($self, module_name, global_name, /)")]
    fn find_class(&self, module_name: &PyAny, global_name: &PyAny) -> PyResult<PyObject> {
        let fix_imports = self
            .setup
            .borrow()
            .as_ref()
            .is_none_or(|s| s.settings.fix_imports);
        let (module_name, global_name) = (Obj::of(module_name), Obj::of(global_name));
        if let Some(names) = self.restriction.names() {
            // Also when an override calls it through super(): the names are checked first.
            let proto = self.proto.get();
            allow::check_global(&names, &module_name, &global_name, proto, fix_imports)?;
        }
        find_class::find_class(&module_name, &global_name, self.proto.get(), fix_imports)
            .map(Obj::into_py)
    }

    /// Restricts this unpickler to the globals `allow` names (see `SafeUnpickler`). A
    /// restriction can be replaced, never lifted.
    #[pyo3(text_signature = "($self, allow, /)")]
    fn _restrict(&self, allow: &PyAny) -> PyResult<()> {
        self.in_use.check("Unpickler")?;
        self.restriction.set(&Obj::of(allow))
    }

    /// Returns size in memory, in bytes.
    fn __sizeof__(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.memo.borrow().entries().count() * std::mem::size_of::<usize>()
    }
}

/// `Unpickler.memo`: a proxy of the unpickler's memo.
fn get_memo(obj: &PyAny) -> PyResult<PyObject> {
    let slf: &PyCell<Unpickler> = obj.downcast()?;
    let proxy = UnpicklerMemoProxy {
        unpickler: slf.into(),
    };
    Ok(PyCell::new(obj.py(), proxy)?.into_py(obj.py()))
}

/// `Unpickler.memo = value`: a proxy's memo or a dict `{index: obj}` is copied in.
fn set_memo(obj: &PyAny, value: Option<&PyAny>) -> PyResult<()> {
    let this = obj.downcast::<PyCell<Unpickler>>()?.borrow();
    let value = value.ok_or_else(|| PyTypeError::new_err("attribute deletion is not supported"))?;
    let new_memo = if let Ok(proxy) = value.downcast::<PyCell<UnpicklerMemoProxy>>() {
        let proxy = proxy.borrow();
        let other = proxy.unpickler.as_ref(value.py()).borrow();
        let copied = other.memo.borrow().try_clone()?;
        copied
    } else if let Ok(dict) = value.downcast::<PyDict>() {
        let mut memo = Memo::default();
        for (key, item) in dict.iter() {
            if !Obj::of(key).is_int() {
                return Err(PyTypeError::new_err("memo key must be integers"));
            }
            let idx = Obj::of(key).long_as_ssize()?;
            if idx < 0 {
                return Err(PyValueError::new_err("memo key must be positive integers."));
            }
            drop(memo.put(idx as usize, Obj::of(item))?);
        }
        memo
    } else {
        return Err(PyTypeError::new_err(format!(
            "'memo' attribute must be an UnpicklerMemoProxy object or dict, not {}",
            value.get_type().name()?
        )));
    };
    this.replace_memo(new_memo)
}

/// `Unpickler.persistent_load` before 3.13: the hook found by `__init__` or assigned since.
fn get_persistent_load(obj: &PyAny) -> PyResult<PyObject> {
    let this = obj.downcast::<PyCell<Unpickler>>()?.borrow();
    let hook = this.persistent_load.borrow();
    match &*hook {
        Some(hook) => Ok(hook.bind(&Obj::of(obj))?.into_py()),
        None => Err(PyAttributeError::new_err("persistent_load")),
    }
}

fn set_persistent_load(obj: &PyAny, value: Option<&PyAny>) -> PyResult<()> {
    let this = obj.downcast::<PyCell<Unpickler>>()?.borrow();
    let value = value.ok_or_else(|| PyTypeError::new_err("attribute deletion is not supported"))?;
    if !value.is_callable() {
        return Err(PyTypeError::new_err(
            "persistent_load must be a callable taking one argument",
        ));
    }
    *this.persistent_load.borrow_mut() = Some(Hook::Callable(Obj::of(value)));
    Ok(())
}

#[pyproto]
impl PyGCProtocol for Unpickler {
    fn __traverse__(&self, visit: PyVisit) -> Result<(), PyTraverseError> {
        // A borrow held by a running load means the objects are in use; skipping them only makes
        // the collector more conservative.
        if let Ok(setup) = self.setup.try_borrow() {
            if let Some(setup) = setup.as_ref() {
                for obj in setup.file.objects() {
                    visit.call(obj)?;
                }
                let settings = &setup.settings;
                for obj in settings
                    .buffers
                    .iter()
                    .chain(settings.persistent_load.iter())
                {
                    visit.call(obj)?;
                }
            }
        }
        if let Ok(hook) = self.persistent_load.try_borrow() {
            if let Some(h) = hook.as_ref() {
                visit.call(h.held())?;
            }
        }
        if let Ok(memo) = self.memo.try_borrow() {
            for (_, obj) in memo.entries() {
                visit.call(obj)?;
            }
        }
        if let Ok(resolved) = self.restriction.resolved.try_borrow() {
            for obj in resolved.objects() {
                visit.call(obj)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        if let Ok(mut setup) = self.setup.try_borrow_mut() {
            setup.take();
        }
        if let Ok(mut hook) = self.persistent_load.try_borrow_mut() {
            hook.take();
        }
        if let Ok(mut memo) = self.memo.try_borrow_mut() {
            let old = std::mem::take(&mut *memo);
            drop(memo);
            drop(old);
        }
        self.restriction.clear();
    }
}

/// The memo of an `Unpickler`, as its `memo` attribute shows it.
#[pyclass(module = "pickle5_rs", name = "UnpicklerMemoProxy")]
pub struct UnpicklerMemoProxy {
    unpickler: Py<Unpickler>,
}

#[pymethods]
impl UnpicklerMemoProxy {
    /// Remove all items from memo.
    fn clear(&self, py: Python) -> PyResult<()> {
        self.unpickler
            .as_ref(py)
            .borrow()
            .replace_memo(Memo::default())
    }

    /// Copy the memo to a new object.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<&'py PyDict> {
        let dict = PyDict::new(py);
        let unpickler = self.unpickler.as_ref(py).borrow();
        // Copied out first: filling the dict may run the collector, and with it Python code.
        let entries: Vec<(usize, Obj)> = unpickler
            .memo
            .borrow()
            .entries()
            .map(|(idx, obj)| (idx, obj.clone()))
            .collect();
        for (idx, obj) in entries {
            dict.set_item(idx, obj.as_any(py))?;
        }
        Ok(dict)
    }

    /// Implement pickling support.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(&'py PyAny, (&'py PyDict,))> {
        Ok((py.get_type::<PyDict>(), (self.copy(py)?,)))
    }
}

#[pyproto]
impl PyGCProtocol for UnpicklerMemoProxy {
    fn __traverse__(&self, visit: PyVisit) -> Result<(), PyTraverseError> {
        visit.call(&self.unpickler)
    }

    fn __clear__(&mut self) {}
}
