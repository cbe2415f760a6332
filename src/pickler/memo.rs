//! The pickler's memo: object identity -> memo index.
//!
//! Entries live densely in insertion order (each holds a strong reference, so an address cannot be
//! reused by another object while memoized); an open-addressing table of 4-byte entry numbers,
//! keyed by the object's address, finds them. Growing the table moves no objects, and a fresh memo
//! costs one small allocation.

use pyo3::PyResult;

use crate::alloc;
use crate::ffi::Obj;

pub struct Memo {
    entries: Vec<(Obj, usize)>,
    /// Power-of-two sized; 0 = empty, otherwise 1 + position in `entries`.
    slots: Vec<u32>,
    shift: u32,
}

const MIN_SLOTS: usize = 16;

#[inline]
fn hash(addr: usize, shift: u32) -> usize {
    // Fibonacci hashing spreads the aligned pointer bits over the whole index range.
    ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

impl Default for Memo {
    fn default() -> Self {
        Memo::new()
    }
}

impl Memo {
    pub fn new() -> Memo {
        Memo {
            entries: Vec::new(),
            slots: vec![0; MIN_SLOTS],
            shift: 64 - MIN_SLOTS.trailing_zeros(),
        }
    }

    /// Number of objects memoized; also the index the next PUT gets.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The slot holding `addr`, or the empty slot where it would go.
    #[inline]
    fn find(&self, addr: usize) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = hash(addr, self.shift);
        loop {
            let s = self.slots[i];
            if s == 0 || self.entries[(s - 1) as usize].0.addr() == addr {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// The memo index of `obj`, if memoized.
    #[inline(always)]
    pub fn get(&self, obj: &Obj) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        match self.slots[self.find(obj.addr())] {
            0 => None,
            s => Some(self.entries[(s - 1) as usize].1),
        }
    }

    /// Records `obj` with index `value` (replacing the index if already present). Raises
    /// `MemoryError`, leaving the memo as it was, when it cannot grow.
    pub fn insert(&mut self, obj: &Obj, value: usize) -> PyResult<()> {
        let i = self.find(obj.addr());
        match self.slots[i] {
            0 => {
                if self.entries.len() == self.entries.capacity() {
                    alloc::grow(&mut self.entries, 1)?;
                }
                self.entries.push((obj.clone(), value));
                self.slots[i] = self.entries.len() as u32;
                // Keep the load factor under 1/2: linear probing stays short.
                if self.entries.len() * 2 > self.slots.len() {
                    if let Err(e) = self.grow() {
                        // The slot was empty before: clearing it restores the table exactly.
                        self.slots[i] = 0;
                        self.entries.pop();
                        return Err(e);
                    }
                }
            }
            s => self.entries[(s - 1) as usize].1 = value,
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> PyResult<()> {
        let factor = if self.entries.len() > 50_000 { 2 } else { 4 };
        let size = self
            .slots
            .len()
            .checked_mul(factor)
            .ok_or_else(alloc::no_memory)?;
        self.slots = alloc::filled(size, 0)?;
        self.shift = 64 - size.trailing_zeros();
        let mask = size - 1;
        for (n, (obj, _)) in self.entries.iter().enumerate() {
            let mut i = hash(obj.addr(), self.shift);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = n as u32 + 1;
        }
        Ok(())
    }

    /// All `(object, index)` pairs, in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = (&Obj, usize)> {
        self.entries.iter().map(|(o, v)| (o, *v))
    }
}

impl Memo {
    /// A copy (`Pickler.memo = other.memo`), raising `MemoryError` when there is no room for it.
    pub fn try_clone(&self) -> PyResult<Memo> {
        Ok(Memo {
            entries: alloc::to_vec(&self.entries)?,
            slots: alloc::to_vec(&self.slots)?,
            shift: self.shift,
        })
    }
}

#[cfg(test)]
#[path = "memo_tests.rs"]
mod tests;
