//! The unpickler's memo: index → object. Dense indices live in a vector; a forged huge index goes to
//! a map instead of making us allocate a vector that large. The vector never outgrows twice the
//! number of stored objects (plus a little), so a few PUTs with ever larger indices cannot make it
//! huge either: memory stays proportional to the input.

use std::collections::HashMap;

use pyo3::PyResult;

use crate::alloc;
use crate::ffi::Obj;

/// The dense part may be this much longer than twice the number of stored objects.
const DENSE_SLACK: usize = 1024;

pub struct Memo {
    dense: Vec<Option<Obj>>,
    sparse: HashMap<usize, Obj>,
    /// Number of occupied indices (MEMOIZE stores at this index).
    count: usize,
}

thread_local! {
    static SPARE_DENSE: std::cell::Cell<Option<Vec<Option<Obj>>>> =
        const { std::cell::Cell::new(None) };
}

impl Default for Memo {
    fn default() -> Self {
        Memo {
            dense: alloc::take_spare(&SPARE_DENSE),
            sparse: HashMap::new(),
            count: 0,
        }
    }
}

impl Drop for Memo {
    fn drop(&mut self) {
        alloc::give_spare(&SPARE_DENSE, std::mem::take(&mut self.dense));
    }
}

impl Memo {
    #[inline(always)]
    pub fn get(&self, idx: usize) -> Option<&Obj> {
        match self.dense.get(idx) {
            Some(Some(obj)) => Some(obj),
            _ if self.sparse.is_empty() => None,
            _ => self.sparse.get(&idx),
        }
    }

    /// Stores `obj` at `idx`; raises `MemoryError` (storing nothing) when the memo cannot grow.
    /// Returns the object it replaces, for the caller to release once it no longer borrows the
    /// memo (releasing may run Python code).
    #[inline]
    pub fn put(&mut self, idx: usize, obj: Obj) -> PyResult<Option<Obj>> {
        if idx == self.dense.len() && self.sparse.is_empty() {
            // The common case: MEMOIZE/BINPUT numbering objects in order.
            if self.dense.len() == self.dense.capacity() {
                alloc::grow(&mut self.dense, 1)?;
            }
            self.dense.push(Some(obj));
            self.count += 1;
            return Ok(None);
        }
        self.put_other(idx, obj)
    }

    #[inline(never)]
    fn put_other(&mut self, idx: usize, obj: Obj) -> PyResult<Option<Obj>> {
        if idx < self.dense.len() || idx <= self.count.saturating_mul(2) + DENSE_SLACK {
            if idx >= self.dense.len() {
                let extra = idx + 1 - self.dense.len();
                alloc::reserve(&mut self.dense, extra)?;
                self.dense.resize_with(idx + 1, || None);
            }
            let old = self.dense[idx].replace(obj);
            let old_sparse = if self.sparse.is_empty() {
                None
            } else {
                self.sparse.remove(&idx)
            };
            if old.is_none() && old_sparse.is_none() {
                self.count += 1;
            }
            Ok(old.or(old_sparse))
        } else {
            self.sparse.try_reserve(1).map_err(|_| alloc::no_memory())?;
            let old = self.sparse.insert(idx, obj);
            if old.is_none() {
                self.count += 1;
            }
            Ok(old)
        }
    }

    /// The index MEMOIZE uses next.
    #[inline]
    pub fn next_index(&self) -> usize {
        self.count
    }

    pub fn entries(&self) -> impl Iterator<Item = (usize, &Obj)> {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().map(|o| (i, o)));
        dense.chain(self.sparse.iter().map(|(i, o)| (*i, o)))
    }
}

impl Memo {
    /// A copy (`Unpickler.memo = other.memo`), raising `MemoryError` when there is no room for it.
    pub fn try_clone(&self) -> PyResult<Memo> {
        let mut sparse = HashMap::new();
        sparse
            .try_reserve(self.sparse.len())
            .map_err(|_| alloc::no_memory())?;
        sparse.extend(self.sparse.iter().map(|(i, o)| (*i, o.clone())));
        Ok(Memo {
            dense: alloc::to_vec(&self.dense)?,
            sparse,
            count: self.count,
        })
    }
}

#[cfg(test)]
#[path = "memo_tests.rs"]
mod tests;
