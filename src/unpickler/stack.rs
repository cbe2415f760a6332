//! The unpickling stack and its marks. Objects below the innermost mark (the fence) are out of
//! reach of ordinary pops, exactly as in CPython's C unpickler.

use pyo3::prelude::*;

use crate::alloc;
use crate::errors;
use crate::ffi::Obj;

pub struct Stack {
    items: Vec<Obj>,
    marks: Vec<usize>,
}

thread_local! {
    static SPARE_ITEMS: std::cell::Cell<Option<Vec<Obj>>> = const { std::cell::Cell::new(None) };
    static SPARE_MARKS: std::cell::Cell<Option<Vec<usize>>> = const { std::cell::Cell::new(None) };
}

impl Default for Stack {
    fn default() -> Self {
        Stack {
            items: alloc::take_spare(&SPARE_ITEMS),
            marks: alloc::take_spare(&SPARE_MARKS),
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        alloc::give_spare(&SPARE_ITEMS, std::mem::take(&mut self.items));
        alloc::give_spare(&SPARE_MARKS, std::mem::take(&mut self.marks));
    }
}

impl Stack {
    pub fn clear(&mut self) {
        self.items.clear();
        self.marks.clear();
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The index of the innermost mark, or 0.
    #[inline]
    pub fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    #[cold]
    #[inline(never)]
    pub fn underflow(&self) -> PyErr {
        errors::unpickling(if self.marks.is_empty() {
            "unpickling stack underflow"
        } else {
            "unexpected MARK found"
        })
    }

    /// Pushes `obj`; raises `MemoryError` (dropping `obj`) when the stack cannot grow.
    #[inline(always)]
    pub fn push(&mut self, obj: Obj) -> PyResult<()> {
        if self.items.len() == self.items.capacity() {
            alloc::grow(&mut self.items, 1)?;
        }
        self.items.push(obj);
        Ok(())
    }

    #[inline]
    pub fn pop(&mut self) -> PyResult<Obj> {
        if self.items.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.items.pop().ok_or_else(|| self.underflow())
    }

    /// The top item, which must be above the fence.
    #[inline]
    pub fn top(&self) -> PyResult<&Obj> {
        if self.items.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.items.last().ok_or_else(|| self.underflow())
    }

    /// Replaces the top item (which must exist above the fence).
    pub fn replace_top(&mut self, obj: Obj) -> PyResult<()> {
        self.top()?;
        if let Some(slot) = self.items.last_mut() {
            *slot = obj;
        }
        Ok(())
    }

    /// Item `i` from the bottom; callers check bounds against the fence first.
    pub fn get(&self, i: usize) -> PyResult<&Obj> {
        self.items.get(i).ok_or_else(|| self.underflow())
    }

    pub fn push_mark(&mut self) -> PyResult<()> {
        if self.marks.len() == self.marks.capacity() {
            alloc::grow(&mut self.marks, 1)?;
        }
        self.marks.push(self.items.len());
        Ok(())
    }

    /// Pops the innermost mark and returns its stack index.
    pub fn pop_mark(&mut self) -> PyResult<usize> {
        self.marks
            .pop()
            .ok_or_else(|| errors::unpickling("could not find MARK"))
    }

    /// Whether a mark sits exactly at the top of the stack (for POP of a mark).
    pub fn mark_at_top(&self) -> bool {
        self.marks.last() == Some(&self.items.len())
    }

    pub fn drop_top_mark(&mut self) {
        self.marks.pop();
    }

    /// Removes and returns the items from `start` upward (`start` must not be below the fence).
    pub fn pop_from(&mut self, start: usize) -> PyResult<Vec<Obj>> {
        if start < self.fence() || start > self.items.len() {
            return Err(self.underflow());
        }
        let mut out = alloc::with_capacity(self.items.len() - start)?;
        out.extend(self.items.drain(start..));
        Ok(out)
    }

    /// Removes the items from `start` upward, as an owning iterator.
    #[inline]
    pub fn drain_from(&mut self, start: usize) -> PyResult<std::vec::Drain<'_, Obj>> {
        if start < self.fence() || start > self.items.len() {
            return Err(self.underflow());
        }
        Ok(self.items.drain(start..))
    }

    /// The items from `start` upward, left in place.
    pub fn slice_from(&self, start: usize) -> &[Obj] {
        &self.items[start.min(self.items.len())..]
    }

    /// Drops the items from `start` upward.
    pub fn truncate(&mut self, start: usize) {
        self.items.truncate(start);
    }
}
