//! Objects pickled by name: classes, functions, and the names reducers return. `whichmodule`
//! finds the module, the extension registry may replace the name by a code, and protocols 0-2
//! write Python 2 names when `fix_imports` is on.

use pyo3::exceptions::{PyOverflowError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;

use super::Saver;
use crate::errors;
use crate::ffi::{self, types, Obj};
use crate::interned;
use crate::lookup::{self, tables, Py2Names};
use crate::opcodes::*;

impl<'m> Saver<'m> {
    /// `obj` by name: `name` (what its reducer returned), else its `__qualname__` or `__name__`.
    pub(super) fn save_global(&mut self, obj: &Obj, name: Option<Obj>) -> PyResult<()> {
        self.with_python_run(|this| {
            let mut global_name = match name {
                Some(n) => n,
                None => match obj.getattr_opt(interned!("__qualname__"))? {
                    Some(q) => q,
                    None => obj.getattr(interned!("__name__"))?,
                },
            };

            let dotted_path = match lookup::dotted_path(&global_name)? {
                Some(path) => path,
                None => return Err(local_object_error(&global_name)),
            };
            let mut module_name = whichmodule(obj, &dotted_path)?;

            let module = match ffi::import(&module_name) {
                Ok(m) => m,
                Err(_) => {
                    return Err(errors::pickling_fmt(format_args!(
                        "Can't pickle {}: import of module {} failed",
                        obj.repr_string(),
                        module_name.repr_string()
                    )))
                }
            };
            let lastname = match dotted_path.last() {
                Some(l) => l.clone(),
                None => global_name.clone(),
            };
            let (found, parent) = match lookup::follow_path(&module, &dotted_path) {
                Ok(Some((found, parent))) => (found, parent),
                _ => {
                    return Err(errors::pickling_fmt(format_args!(
                        "Can't pickle {}: attribute lookup {} on {} failed",
                        obj.repr_string(),
                        str_of(&global_name),
                        str_of(&module_name)
                    )))
                }
            };
            if !found.is(obj) {
                return Err(errors::pickling_fmt(format_args!(
                    "Can't pickle {}: it's not the same object as {}.{}",
                    obj.repr_string(),
                    str_of(&module_name),
                    str_of(&global_name)
                )));
            }

            if this.proto >= 2 {
                let key = ffi::tuple(&[&module_name, &global_name])?;
                if let Some(code_obj) = tables().extension_registry.dict_get(&key)? {
                    let since_313 = ffi::version::running() >= (3, 13);
                    if !code_obj.is_int() {
                        if since_313 {
                            return Err(crate::errors::new_fmt::<PyTypeError>(format_args!(
                                "'{}' object cannot be interpreted as an integer",
                                code_obj.type_name()
                            )));
                        }
                        return Err(errors::pickling_fmt(format_args!(
                            "Can't pickle {}: extension code {} isn't an integer",
                            obj.repr_string(),
                            code_obj.repr_string()
                        )));
                    }
                    let (code, overflow) = code_obj.int_as_long_overflow()?;
                    if overflow != 0 {
                        return Err(PyOverflowError::new_err(
                            "Python int too large to convert to C long",
                        ));
                    }
                    if code <= 0 || code > 0x7fff_ffff {
                        if since_313 {
                            return Err(crate::errors::new_fmt::<PyRuntimeError>(format_args!(
                                "extension code {} is out of range",
                                code
                            )));
                        }
                        return Err(errors::pickling_fmt(format_args!(
                            "Can't pickle {}: extension code {} is out of range",
                            obj.repr_string(),
                            code
                        )));
                    }
                    let c = (code as u32).to_le_bytes();
                    if code <= 0xff {
                        this.out.write(&[EXT1, c[0]])?;
                    } else if code <= 0xffff {
                        this.out.write(&[EXT2, c[0], c[1]])?;
                    } else {
                        this.out.write(&[EXT4, c[0], c[1], c[2], c[3]])?;
                    }
                    return Ok(());
                }
            }

            let parent_is_module = parent.is(&module);
            if parent_is_module {
                global_name = lastname.clone();
            }
            if this.proto >= 4 {
                this.save(&module_name, false)?;
                this.save(&global_name, false)?;
                this.out.write_byte(STACK_GLOBAL)?;
            } else if !parent_is_module && ffi::version::running() >= (3, 13) {
                // 3.13+: a nested name before protocol 4 is getattr(getattr(top, a), b)..., with the
                // top-level object written by name.
                let getattr = &tables().getattr;
                for _ in 1..dotted_path.len() {
                    this.save(getattr, false)?;
                    if this.proto < 2 {
                        this.out.write_byte(MARK)?;
                    }
                }
                let mut top = dotted_path[0].clone();
                this.write_global_opcode(&mut module_name, &mut top)?;
                for attr in &dotted_path[1..] {
                    this.save(attr, false)?;
                    this.out
                        .write_byte(if this.proto < 2 { TUPLE } else { TUPLE2 })?;
                    this.out.write_byte(REDUCE)?;
                }
            } else if !parent_is_module {
                // A nested name before protocol 4: getattr(parent, lastname), unmemoized.
                let value = ffi::tuple(&[&tables().getattr, &ffi::tuple(&[&parent, &lastname])?])?;
                this.save_reduce(&value, None)?;
            } else {
                this.write_global_opcode(&mut module_name, &mut global_name)?;
            }
            this.memo_put(obj)
        })
    }

    /// GLOBAL module\nname\n, with Python 2 names at protocols < 3 when fix_imports is on.
    pub(super) fn write_global_opcode(
        &mut self,
        module_name: &mut Obj,
        global_name: &mut Obj,
    ) -> PyResult<()> {
        if self.proto < 3 && self.fix_imports {
            (*module_name, *global_name) =
                lookup::map_py2_names(Py2Names::ToPython2, module_name, global_name)?;
        }
        let module_bytes = self.encode_identifier(module_name, "module")?;
        let name_bytes = self.encode_identifier(global_name, "global")?;
        self.out.write_byte(GLOBAL)?;
        self.out.write(module_bytes.bytes_data())?;
        self.out.write_byte(b'\n')?;
        self.out.write(name_bytes.bytes_data())?;
        self.out.write_byte(b'\n')?;
        Ok(())
    }

    /// Module and global names are UTF-8 at protocol 3 and ASCII otherwise (for Python 2).
    pub(super) fn encode_identifier(&self, name: &Obj, what: &str) -> PyResult<Obj> {
        let encoded = if self.proto == 3 {
            name.str_encode_utf8()
        } else {
            name.str_encode_ascii()
        };
        encoded.map_err(|e| {
            if ffi::errors::is_unicode_encode_error(&e) {
                errors::pickling_fmt(format_args!(
                    "can't pickle {} identifier '{}' using pickle protocol {}",
                    what,
                    str_of(name),
                    self.proto
                ))
            } else {
                e
            }
        })
    }

    /// A class: the types of None, Ellipsis and NotImplemented as `type(singleton)`, any other
    /// by name.
    pub(super) fn save_type(&mut self, obj: &Obj) -> PyResult<()> {
        let t = tables();
        let addr = obj.addr();
        let singleton = if addr == t.none_type {
            ffi::none()
        } else if addr == t.ellipsis_type {
            t.ellipsis.clone()
        } else if addr == t.not_implemented_type {
            t.not_implemented.clone()
        } else {
            return self.save_global(obj, None);
        };
        let value = ffi::tuple(&[&types::type_().as_obj(), &ffi::tuple(&[&singleton])?])?;
        self.save_reduce(&value, Some(obj))
    }
}

// ---- name lookup helpers (save_global) ----

fn str_of(obj: &Obj) -> ffi::Text {
    match obj.str() {
        Ok(s) if s.str_utf8().is_ok() => ffi::Text::of_str(s),
        Ok(s) => s.repr_string(),
        Err(_) => obj.repr_string(),
    }
}

/// The error for the name of a function's local object (`lookup::dotted_path` found `<locals>`).
fn local_object_error(name: &Obj) -> PyErr {
    let verb = if ffi::version::running() >= (3, 13) {
        "get"
    } else {
        "pickle"
    };
    errors::new_fmt::<pyo3::exceptions::PyAttributeError>(format_args!(
        "Can't {} local object {}",
        verb,
        name.repr_string()
    ))
}

/// Whether `module` holds `global` under `dotted_path` (and is a usable candidate at all).
fn check_module(
    module_name: &Obj,
    module: &Obj,
    global: &Obj,
    dotted_path: &[Obj],
) -> PyResult<bool> {
    if module.is_none() {
        return Ok(false);
    }
    if module_name.str_eq("__main__") {
        return Ok(false);
    }
    match lookup::follow_path(module, dotted_path)? {
        Some((candidate, _)) => Ok(candidate.is(global)),
        None => Ok(false),
    }
}

/// The module a global lives in: its `__module__`, else a search of `sys.modules`, else __main__.
fn whichmodule(global: &Obj, dotted_path: &[Obj]) -> PyResult<Obj> {
    if let Some(name) = global.getattr_opt(interned!("__module__"))? {
        if !name.is_none() {
            return Ok(name);
        }
    }
    let modules = match ffi::modules::sys_modules() {
        Some(m) => m,
        None => return Err(PyRuntimeError::new_err("unable to get sys.modules")),
    };
    if modules.is_exact_type(types::dict()) {
        for (name, module) in modules.dict_items()? {
            if check_module(&name, &module, global, dotted_path)? {
                return Ok(name);
            }
        }
    } else {
        let iter = modules.iter()?;
        while let Some(name) = iter.next()? {
            let module = modules.get_item(&name)?;
            if check_module(&name, &module, global, dotted_path)? {
                return Ok(name);
            }
        }
    }
    ffi::new_str("__main__")
}
