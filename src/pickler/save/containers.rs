//! tuple, list, dict, set and frozenset: batching (APPENDS, SETITEMS, ADDITEMS) and fast mode's
//! cycle check.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use super::Saver;
use crate::errors::tp_name;
use crate::ffi::{self, types, Obj};
use crate::interned;
use crate::opcodes::*;

const BATCHSIZE: usize = 1000;
const FAST_NESTING_LIMIT: i32 = 50;

impl<'m> Saver<'m> {
    // ---- fast mode guards against cycles ----

    pub(super) fn fast_save_enter(&mut self, obj: &Obj) -> PyResult<()> {
        self.fast_state.nesting += 1;
        if self.fast_state.nesting >= FAST_NESTING_LIMIT {
            let memo = match &self.fast_state.memo {
                Some(m) => m.clone(),
                None => {
                    let m = ffi::new_dict()?;
                    self.fast_state.memo = Some(m.clone());
                    m
                }
            };
            let key = ffi::number::int_from_addr(obj.addr())?;
            if memo.dict_get(&key)?.is_some() {
                self.fast_state.nesting = -1;
                return Err(crate::errors::new_fmt::<PyValueError>(format_args!(
                    "fast mode: can't pickle cyclic objects including object type {} at {:#x}",
                    tp_name(&obj.type_obj()),
                    obj.addr()
                )));
            }
            memo.dict_set(&key, &ffi::none())?;
        }
        Ok(())
    }

    pub(super) fn fast_save_leave(&mut self, obj: &Obj) -> PyResult<()> {
        let was = self.fast_state.nesting;
        self.fast_state.nesting -= 1;
        if was >= FAST_NESTING_LIMIT {
            if let Some(memo) = &self.fast_state.memo {
                let key = ffi::number::int_from_addr(obj.addr())?;
                memo.del_item(&key)?;
            }
        }
        Ok(())
    }

    // ---- tuple ----

    pub(super) fn save_tuple_items(&mut self, obj: &Obj, len: usize) -> PyResult<()> {
        for i in 0..len {
            match obj.tuple_get(i) {
                Some(item) => self.save_item(&item)?,
                None => {
                    return Err(PyRuntimeError::new_err(
                        "tuple changed size during pickling",
                    ))
                }
            }
        }
        Ok(())
    }

    pub(super) fn save_tuple(&mut self, obj: &Obj) -> PyResult<()> {
        let len = obj.tuple_len();
        if len == 0 {
            if self.proto > 0 {
                self.out.write_byte(EMPTY_TUPLE)?;
            } else {
                self.out.write(&[MARK, TUPLE])?;
            }
            return Ok(());
        }

        // If the tuple shows up in the memo after its items are saved, it is recursive: drop what
        // was pushed and fetch it from the memo instead.
        if len <= 3 && self.proto >= 2 {
            self.save_tuple_items(obj, len)?;
            if self.memo_index(obj).is_some() {
                for _ in 0..len {
                    self.out.write_byte(POP)?;
                }
                return self.memo_get(obj);
            }
            self.out
                .write_byte([EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3][len])?;
            return self.memo_put(obj);
        }

        self.out.write_byte(MARK)?;
        self.save_tuple_items(obj, len)?;
        if self.memo_index(obj).is_some() {
            if self.bin {
                self.out.write_byte(POP_MARK)?;
            } else {
                for _ in 0..=len {
                    self.out.write_byte(POP)?;
                }
            }
            return self.memo_get(obj);
        }
        self.out.write_byte(TUPLE)?;
        self.memo_put(obj)
    }

    // ---- list ----

    /// MARK item... APPENDS batches from any iterator (APPEND one by one at protocol 0).
    pub(super) fn batch_list(&mut self, iter: &Obj) -> PyResult<()> {
        if self.proto == 0 {
            while let Some(item) = iter.next()? {
                self.save(&item, false)?;
                self.out.write_byte(APPEND)?;
            }
            return Ok(());
        }
        loop {
            let first = match iter.next()? {
                Some(x) => x,
                None => return Ok(()),
            };
            let mut next = match iter.next()? {
                Some(x) => x,
                None => {
                    self.save(&first, false)?;
                    self.out.write_byte(APPEND)?;
                    return Ok(());
                }
            };
            self.out.write_byte(MARK)?;
            self.save(&first, false)?;
            let mut n = 1;
            loop {
                self.save(&next, false)?;
                n += 1;
                if n == BATCHSIZE {
                    break;
                }
                next = match iter.next()? {
                    Some(x) => x,
                    None => break,
                };
            }
            self.out.write_byte(APPENDS)?;
            if n != BATCHSIZE {
                return Ok(());
            }
        }
    }

    /// The same for an exact list, reading it by index (it may change while items are saved).
    pub(super) fn batch_list_exact(&mut self, obj: &Obj) -> PyResult<()> {
        if obj.list_len() == 1 {
            if let Some(item) = obj.list_get(0) {
                self.save(&item, false)?;
            }
            self.out.write_byte(APPEND)?;
            return Ok(());
        }
        let mut total = 0;
        // The list may change while its items are saved: its length is re-read before going
        // past the length last seen, and every read is bounds-checked.
        let mut seen_len = obj.list_len();
        loop {
            let mut this_batch = 0;
            self.out.write_byte(MARK)?;
            loop {
                if total >= seen_len {
                    seen_len = obj.list_len();
                    if total >= seen_len {
                        break;
                    }
                }
                let item = match obj.list_get(total) {
                    Some(item) => item,
                    None => break,
                };
                self.save_item(&item)?;
                total += 1;
                this_batch += 1;
                if this_batch == BATCHSIZE {
                    break;
                }
            }
            self.out.write_byte(APPENDS)?;
            if total >= obj.list_len() {
                return Ok(());
            }
        }
    }

    /// Runs `body` inside fast mode's self-reference check (when fast mode is on).
    pub(super) fn with_fast_guard(
        &mut self,
        obj: &Obj,
        body: fn(&mut Self, &Obj) -> PyResult<()>,
    ) -> PyResult<()> {
        if !self.fast() {
            return body(self, obj);
        }
        if let Err(e) = self.fast_save_enter(obj) {
            let _ = self.fast_save_leave(obj);
            return Err(e);
        }
        let result = body(self, obj);
        // As in C, the leave runs on errors too, and its own error (the KeyError that follows a
        // frozenset's unbalanced enter) replaces the body's.
        self.fast_save_leave(obj).and(result)
    }

    pub(super) fn save_list(&mut self, obj: &Obj) -> PyResult<()> {
        self.with_fast_guard(obj, Self::save_list_body)
    }

    pub(super) fn save_list_body(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            self.out.write_byte(EMPTY_LIST)?;
        } else {
            self.out.write(&[MARK, LIST])?;
        }
        let len = obj.list_len();
        self.memo_put(obj)?;
        if len == 0 {
            return Ok(());
        }
        if self.proto > 0 {
            self.enter()?;
            let r = self.batch_list_exact(obj);
            self.leave();
            r
        } else {
            let iter = obj.iter()?;
            self.enter()?;
            let r = self.batch_list(&iter);
            self.leave();
            r
        }
    }

    // ---- dict ----

    pub(super) fn pair_items(item: &Obj) -> PyResult<(Obj, Obj)> {
        if !item.is_tuple() || item.tuple_len() != 2 {
            return Err(PyTypeError::new_err(
                "dict items iterator must return 2-tuples",
            ));
        }
        match (item.tuple_get(0), item.tuple_get(1)) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => Err(PyTypeError::new_err(
                "dict items iterator must return 2-tuples",
            )),
        }
    }

    pub(super) fn save_pair(&mut self, item: &Obj) -> PyResult<()> {
        let (k, v) = Self::pair_items(item)?;
        self.save(&k, false)?;
        self.save(&v, false)
    }

    /// MARK key value... SETITEMS batches from an iterator of pairs (SETITEM at protocol 0).
    pub(super) fn batch_dict(&mut self, iter: &Obj) -> PyResult<()> {
        if self.proto == 0 {
            while let Some(item) = iter.next()? {
                self.save_pair(&item)?;
                self.out.write_byte(SETITEM)?;
            }
            return Ok(());
        }
        loop {
            let first = match iter.next()? {
                Some(x) => x,
                None => return Ok(()),
            };
            Self::pair_items(&first)?;
            let mut next = match iter.next()? {
                Some(x) => x,
                None => {
                    self.save_pair(&first)?;
                    self.out.write_byte(SETITEM)?;
                    return Ok(());
                }
            };
            self.out.write_byte(MARK)?;
            self.save_pair(&first)?;
            let mut n = 1;
            loop {
                self.save_pair(&next)?;
                n += 1;
                if n == BATCHSIZE {
                    break;
                }
                next = match iter.next()? {
                    Some(x) => x,
                    None => break,
                };
            }
            self.out.write_byte(SETITEMS)?;
            if n != BATCHSIZE {
                return Ok(());
            }
        }
    }

    pub(super) fn batch_dict_exact(&mut self, obj: &Obj) -> PyResult<()> {
        let size = obj.dict_len();
        let mut pos: isize = 0;
        if size == 1 {
            if let Some((k, v)) = obj.dict_next(&mut pos) {
                self.save(&k, false)?;
                self.save(&v, false)?;
            }
            self.out.write_byte(SETITEM)?;
            return Ok(());
        }
        loop {
            let mut i = 0;
            self.out.write_byte(MARK)?;
            while let Some((k, v)) = obj.dict_next(&mut pos) {
                self.save_item(&k)?;
                self.save_item(&v)?;
                i += 1;
                if i == BATCHSIZE {
                    break;
                }
            }
            self.out.write_byte(SETITEMS)?;
            if obj.dict_len() != size {
                return Err(PyRuntimeError::new_err(
                    "dictionary changed size during iteration",
                ));
            }
            if i != BATCHSIZE {
                return Ok(());
            }
        }
    }

    pub(super) fn save_dict(&mut self, obj: &Obj) -> PyResult<()> {
        self.with_fast_guard(obj, Self::save_dict_body)
    }

    pub(super) fn save_dict_body(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            self.out.write_byte(EMPTY_DICT)?;
        } else {
            self.out.write(&[MARK, DICT])?;
        }
        self.memo_put(obj)?;
        if obj.dict_len() == 0 {
            return Ok(());
        }
        if self.proto > 0 {
            self.enter()?;
            let r = self.batch_dict_exact(obj);
            self.leave();
            r
        } else {
            let items = obj.call_method(interned!("items"), &[])?;
            let iter = items.iter()?;
            self.enter()?;
            let r = self.batch_dict(&iter);
            self.leave();
            r
        }
    }

    // ---- set / frozenset ----

    pub(super) fn save_set(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto < 4 {
            let items = obj.to_list()?;
            let value = ffi::tuple(&[&types::set().as_obj(), &ffi::tuple(&[&items])?])?;
            return self.save_reduce(&value, Some(obj));
        }
        self.out.write_byte(EMPTY_SET)?;
        self.memo_put(obj)?;
        let size = obj.set_len();
        if size == 0 {
            return Ok(());
        }
        let iter = obj.iter()?;
        loop {
            let mut i = 0;
            self.out.write_byte(MARK)?;
            loop {
                let item = match iter.next() {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    // The set iterator notices a size change first; `_pickle` walks the table
                    // and reports it after the batch, in its own words.
                    Err(_) if obj.set_len() != size => {
                        return Err(PyRuntimeError::new_err("set changed size during iteration"))
                    }
                    Err(e) => return Err(e),
                };
                self.save(&item, false)?;
                i += 1;
                if i == BATCHSIZE {
                    break;
                }
            }
            self.out.write_byte(ADDITEMS)?;
            if obj.set_len() != size {
                return Err(PyRuntimeError::new_err("set changed size during iteration"));
            }
            if i != BATCHSIZE {
                return Ok(());
            }
        }
    }

    pub(super) fn save_frozenset(&mut self, obj: &Obj) -> PyResult<()> {
        // Like the C pickler, fast mode counts frozensets as nesting without undoing it.
        if self.fast() {
            self.fast_save_enter(obj)?;
        }
        if self.proto < 4 {
            let items = obj.to_list()?;
            let value = ffi::tuple(&[&types::frozenset().as_obj(), &ffi::tuple(&[&items])?])?;
            return self.save_reduce(&value, Some(obj));
        }
        self.out.write_byte(MARK)?;
        let iter = obj.iter()?;
        while let Some(item) = iter.next()? {
            self.save(&item, false)?;
        }
        if self.memo_index(obj).is_some() {
            self.out.write_byte(POP_MARK)?;
            return self.memo_get(obj);
        }
        self.out.write_byte(FROZENSET)?;
        self.memo_put(obj)
    }
}
