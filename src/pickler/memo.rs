//! The pickler's memo: object identity -> memo index, an open-addressing table keyed by the object's
//! address. Each entry holds a strong reference, so an address cannot be reused by another object
//! while the entry exists.

use crate::ffi::Obj;

struct Entry {
    key: Option<Obj>,
    value: usize,
}

pub struct Memo {
    /// Power-of-two sized; empty slots have `key == None`.
    table: Vec<Entry>,
    used: usize,
    shift: u32,
}

const MIN_SIZE: usize = 8;

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
        Memo::with_slots(MIN_SIZE)
    }

    fn with_slots(n: usize) -> Memo {
        let mut table = Vec::with_capacity(n);
        table.resize_with(n, || Entry {
            key: None,
            value: 0,
        });
        Memo {
            table,
            used: 0,
            shift: 64 - n.trailing_zeros(),
        }
    }

    /// Number of objects memoized; also the index the next PUT gets.
    #[inline]
    pub fn len(&self) -> usize {
        self.used
    }

    #[inline]
    fn slot(&self, addr: usize) -> usize {
        let mask = self.table.len() - 1;
        let mut i = hash(addr, self.shift);
        loop {
            match &self.table[i] {
                Entry { key: None, .. } => return i,
                Entry { key: Some(k), .. } if k.addr() == addr => return i,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The memo index of `obj`, if memoized.
    #[inline]
    pub fn get(&self, obj: &Obj) -> Option<usize> {
        if self.used == 0 {
            return None;
        }
        let e = &self.table[self.slot(obj.addr())];
        e.key.as_ref().map(|_| e.value)
    }

    #[inline]
    pub fn contains(&self, obj: &Obj) -> bool {
        self.get(obj).is_some()
    }

    /// Records `obj` with index `value` (replacing the index if already present).
    pub fn insert(&mut self, obj: &Obj, value: usize) {
        let i = self.slot(obj.addr());
        let e = &mut self.table[i];
        if e.key.is_some() {
            e.value = value;
            return;
        }
        e.key = Some(obj.clone());
        e.value = value;
        self.used += 1;
        // Keep the load factor under 1/2: linear probing stays short.
        if self.used * 2 > self.table.len() {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let new_size = self.table.len() * if self.used > 50_000 { 2 } else { 4 };
        let old = std::mem::replace(self, Memo::with_slots(new_size));
        for e in old.table {
            if let Some(k) = e.key {
                let i = self.slot(k.addr());
                self.table[i] = Entry {
                    key: Some(k),
                    value: e.value,
                };
                self.used += 1;
            }
        }
    }

    pub fn clear(&mut self) {
        if self.used == 0 {
            return;
        }
        *self = Memo::new();
    }

    /// All `(object, index)` pairs, in table order.
    pub fn entries(&self) -> impl Iterator<Item = (&Obj, usize)> {
        self.table
            .iter()
            .filter_map(|e| e.key.as_ref().map(|k| (k, e.value)))
    }
}

impl Clone for Memo {
    fn clone(&self) -> Memo {
        Memo {
            table: self
                .table
                .iter()
                .map(|e| Entry {
                    key: e.key.clone(),
                    value: e.value,
                })
                .collect(),
            used: self.used,
            shift: self.shift,
        }
    }
}
