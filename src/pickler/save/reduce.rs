//! Everything else: reducer_override, the dispatch tables, plain objects, and the reduce protocol
//! (`__reduce_ex__` / `__reduce__` and the 2-to-6-tuple they return).

use pyo3::exceptions::PyRecursionError;

use pyo3::prelude::*;

use super::{Saver, REDUCER_CALL_DEPTH};
use crate::errors::{self, tp_name};
use crate::ffi::{self, types, Obj};
use crate::interned;
use crate::lookup::tables;
use crate::opcodes::*;
use crate::pickler::plain::Plain;

impl<'m> Saver<'m> {
    /// An object of no type the pickler writes itself: `reducer_override`, then classes and
    /// functions by name, then a reduction from the dispatch tables, else a plain object's state,
    /// else `__reduce_ex__(proto)` / `__reduce__()`.
    pub(super) fn save_object(&mut self, obj: &Obj) -> PyResult<()> {
        // reducer_override comes before the type/function special cases and the reduce protocol.
        if let Some(hook) = self.hooks.reducer_override.clone() {
            let done = self.with_python_run(|this| {
                this.check_reducer_depth()?;
                let value = hook.call_one(obj)?;
                if value.is(&tables().not_implemented) {
                    return Ok::<_, PyErr>(false);
                }
                match Reduced::of(value)? {
                    Reduced::Name(name) => this.save_global(obj, Some(name))?,
                    Reduced::Tuple(args) => this.save_reduce(&args, Some(obj))?,
                }
                Ok(true)
            })?;
            if done {
                return Ok(());
            }
        }

        let ty = obj.type_addr();
        if ty == types::type_().addr() {
            return self.save_type(obj);
        }
        if ty == tables().function_type {
            return self.save_global(obj, None);
        }

        // A reduction callable from the dispatch tables, else __reduce_ex__ / __reduce__.
        let type_obj = obj.type_obj();
        let reduce_func = match self.hooks.dispatch_table.clone() {
            None => tables().dispatch_table.dict_get(&type_obj)?,
            Some(table) => self.with_python_run(|_| match table.get_item(&type_obj) {
                Ok(f) => Ok(Some(f)),
                Err(e) if ffi::errors::is_key_error(&e) => Ok(None),
                Err(e) => Err(e),
            })?,
        };
        if reduce_func.is_none() {
            if type_obj.type_is_subtype(types::type_().addr()) {
                return self.save_global(obj, None);
            }
            if self.proto >= 2 {
                let writer_python_runs = self.out.python_runs();
                if let Plain::State(state) =
                    self.plain_types.check(obj, &type_obj, writer_python_runs)?
                {
                    return self.save_plain(obj, &type_obj, state);
                }
            }
        }
        self.with_python_run(|this| {
            this.check_reducer_depth()?;
            let value = if let Some(func) = reduce_func {
                func.call_one(obj)?
            } else if let Some(reduce_ex) = obj.getattr_opt(interned!("__reduce_ex__"))? {
                reduce_ex.call_one(&ffi::new_int(this.proto as i64)?)?
            } else if let Some(reduce) = obj.getattr_opt(interned!("__reduce__"))? {
                reduce.call0()?
            } else {
                return Err(errors::pickling_fmt(format_args!(
                    "can't pickle '{}' object: {}",
                    tp_name(&type_obj),
                    obj.repr_string()
                )));
            };
            match Reduced::of(value)? {
                Reduced::Name(name) => this.save_global(obj, Some(name)),
                Reduced::Tuple(args) => this.save_reduce(&args, Some(obj)),
            }
        })
    }

    /// Before calling a reducer: `_pickle` shares the interpreter's recursion count, so when a
    /// recursion goes through reducers (a list or dict subclass at protocols 0-1, an object whose
    /// `__reduce__` returns itself among the arguments) the limit is reached by the reducer's
    /// call, whose RecursionError does not say "while pickling an object".
    #[inline]
    pub(super) fn check_reducer_depth(&self) -> PyResult<()> {
        if self.depth + REDUCER_CALL_DEPTH > self.depth_limit {
            return Err(PyRecursionError::new_err(
                "maximum recursion depth exceeded",
            ));
        }
        Ok(())
    }

    /// What `save_reduce` does with `(copyreg.__newobj__, (cls,), state, None, None)`.
    pub(super) fn save_plain(&mut self, obj: &Obj, cls: &Obj, state: Option<Obj>) -> PyResult<()> {
        self.save(cls, false)?;
        self.save(&ffi::new_tuple(vec![])?, false)?;
        self.out.write_byte(NEWOBJ)?;
        if self.memo_index(obj).is_some() {
            self.out.write_byte(POP)?;
            return self.memo_get(obj);
        }
        self.memo_put(obj)?;
        if let Some(state) = state {
            self.save(&state, false)?;
            self.out.write_byte(BUILD)?;
        }
        Ok(())
    }

    /// Saves `obj` from the 2..6-tuple its reducer returned; `obj` is None when the result must
    /// not be memoized.
    pub(super) fn save_reduce(&mut self, args: &Obj, obj: Option<&Obj>) -> PyResult<()> {
        self.with_python_run(|this| {
            let size = args.tuple_len();
            if !(2..=6).contains(&size) {
                return Err(errors::pickling(
                    "tuple returned by __reduce__ must contain 2 through 6 elements",
                ));
            }
            let item = |i: usize| -> Option<Obj> {
                if i < size {
                    args.tuple_get(i)
                } else {
                    None
                }
            };
            let (callable, argtup) = match (item(0), item(1)) {
                (Some(c), Some(a)) => (c, a),
                _ => {
                    return Err(errors::pickling(
                        "tuple returned by __reduce__ is malformed",
                    ))
                }
            };
            let not_none = |o: Option<Obj>| o.filter(|x| !x.is_none());
            let state = not_none(item(2));
            let listitems = not_none(item(3));
            let dictitems = not_none(item(4));
            let state_setter = not_none(item(5));

            if !callable.is_callable() {
                return Err(errors::pickling(
                    "first item of the tuple returned by __reduce__ must be callable",
                ));
            }
            if !argtup.is_tuple() {
                return Err(errors::pickling(
                    "second item of the tuple returned by __reduce__ must be a tuple",
                ));
            }
            if let Some(li) = &listitems {
                if !li.is_iterator() {
                    return Err(errors::pickling_fmt(format_args!(
                        "fourth element of the tuple returned by __reduce__ must be an iterator, not {}",
                        tp_name(&li.type_obj())
                    )));
                }
            }
            if let Some(di) = &dictitems {
                if !di.is_iterator() {
                    return Err(errors::pickling_fmt(format_args!(
                        "fifth element of the tuple returned by __reduce__ must be an iterator, not {}",
                        tp_name(&di.type_obj())
                    )));
                }
            }
            if let Some(ss) = &state_setter {
                if !ss.is_callable() {
                    return Err(errors::pickling_fmt(format_args!(
                        "sixth element of the tuple returned by __reduce__ must be a function, not {}",
                        tp_name(&ss.type_obj())
                    )));
                }
            }

            let (mut use_newobj, mut use_newobj_ex) = (false, false);
            if this.proto >= 2 {
                if let Some(name) = callable.getattr_opt(interned!("__name__"))? {
                    if name.is_str() {
                        use_newobj_ex = name.str_eq("__newobj_ex__");
                        if !use_newobj_ex {
                            use_newobj = name.str_eq("__newobj__");
                        }
                    }
                }
            }

            if use_newobj_ex {
                let n = argtup.tuple_len();
                if n != 3 {
                    return Err(errors::pickling_fmt(format_args!(
                        "length of the NEWOBJ_EX argument tuple must be exactly 3, not {}",
                        n
                    )));
                }
                let (cls, cargs, kwargs) = match (
                    argtup.tuple_get(0),
                    argtup.tuple_get(1),
                    argtup.tuple_get(2),
                ) {
                    (Some(a), Some(b), Some(c)) => (a, b, c),
                    _ => return Err(errors::pickling("NEWOBJ_EX argument tuple is malformed")),
                };
                if !cls.is_type() {
                    return Err(errors::pickling_fmt(format_args!(
                        "first item from NEWOBJ_EX argument tuple must be a class, not {}",
                        tp_name(&cls.type_obj())
                    )));
                }
                if !cargs.is_tuple() {
                    return Err(errors::pickling_fmt(format_args!(
                        "second item from NEWOBJ_EX argument tuple must be a tuple, not {}",
                        tp_name(&cargs.type_obj())
                    )));
                }
                if !kwargs.is_dict() {
                    return Err(errors::pickling_fmt(format_args!(
                        "third item from NEWOBJ_EX argument tuple must be a dict, not {}",
                        tp_name(&kwargs.type_obj())
                    )));
                }
                if this.proto >= 4 {
                    this.save(&cls, false)?;
                    this.save(&cargs, false)?;
                    this.save(&kwargs, false)?;
                    this.out.write_byte(NEWOBJ_EX)?;
                } else {
                    // partial(cls.__new__, cls, *args, **kwargs)()
                    let cls_new = cls.getattr(interned!("__new__"))?;
                    let n = cargs.tuple_len();
                    let mut items = crate::alloc::with_capacity(n + 2)?;
                    items.push(cls_new);
                    items.push(cls.clone());
                    items.extend((0..n).filter_map(|i| cargs.tuple_get(i)));
                    let partial_args = ffi::new_tuple(items)?;
                    let partial = tables().partial.call(&partial_args, Some(&kwargs))?;
                    this.save(&partial, false)?;
                    this.save(&ffi::new_tuple(vec![])?, false)?;
                    this.out.write_byte(REDUCE)?;
                }
            } else if use_newobj {
                let cls = match argtup.tuple_get(0) {
                    Some(c) => c,
                    None => return Err(errors::pickling("__newobj__ arglist is empty")),
                };
                if !cls.is_type() {
                    return Err(errors::pickling(
                        "args[0] from __newobj__ args is not a type",
                    ));
                }
                if let Some(o) = obj {
                    let obj_class = match o.getattr_opt(interned!("__class__"))? {
                        Some(c) => c,
                        None => o.type_obj(),
                    };
                    if !obj_class.is(&cls) {
                        return Err(errors::pickling(
                            "args[0] from __newobj__ args has the wrong class",
                        ));
                    }
                }
                this.save(&cls, false)?;
                let rest = argtup.tuple_slice_from(1)?;
                this.save(&rest, false)?;
                this.out.write_byte(NEWOBJ)?;
            } else {
                this.save(&callable, false)?;
                this.save(&argtup, false)?;
                this.out.write_byte(REDUCE)?;
            }

            if let Some(o) = obj {
                // Already memoized while its arguments were saved: the object is recursive.
                if this.memo_index(o).is_some() {
                    this.out.write_byte(POP)?;
                    return this.memo_get(o);
                }
                this.memo_put(o)?;
            }

            if let Some(li) = &listitems {
                this.batch_list(li)?;
            }
            if let Some(di) = &dictitems {
                this.batch_dict(di)?;
            }
            if let Some(state) = &state {
                match &state_setter {
                    None => {
                        this.save(state, false)?;
                        this.out.write_byte(BUILD)?;
                    }
                    Some(setter) => {
                        // state_setter(obj, state), with its result popped: stack-neutral.
                        this.save(setter, false)?;
                        match obj {
                            Some(o) => this.save(o, false)?,
                            None => this.save(&ffi::none(), false)?,
                        }
                        this.save(state, false)?;
                        this.out.write(&[TUPLE2, REDUCE, POP])?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// What a reducer returned: a global name or a reduce tuple.
enum Reduced {
    Name(Obj),
    Tuple(Obj),
}

impl Reduced {
    pub(super) fn of(value: Obj) -> PyResult<Reduced> {
        if value.is_str() {
            Ok(Reduced::Name(value))
        } else if value.is_tuple() {
            Ok(Reduced::Tuple(value))
        } else {
            Err(errors::pickling("__reduce__ must return a string or tuple"))
        }
    }
}
