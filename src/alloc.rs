//! Fallible growth of Rust collections. Any allocation whose size the input can influence goes
//! through here, so that running out of memory raises `MemoryError` (as the C pickler does)
//! instead of aborting the process.
//!
//! Hot paths keep their single capacity compare and call the `#[cold]` growers only when full.

use pyo3::exceptions::PyMemoryError;
use pyo3::PyErr;

/// The error a failed allocation turns into.
#[cold]
#[inline(never)]
pub fn no_memory() -> PyErr {
    PyErr::new::<PyMemoryError, _>(())
}

/// Makes room for `extra` more items: the usual doubling first, and when that much memory is not
/// to be had, a quarter more (still geometric, so a vector near the limit does not reallocate on
/// every push).
#[cold]
#[inline(never)]
pub fn grow<T>(v: &mut Vec<T>, extra: usize) -> Result<(), PyErr> {
    // Room for a small pickle's stack or memo at once, rather than growing from 4 items.
    let extra = if v.capacity() == 0 {
        extra.max(32)
    } else {
        extra
    };
    if v.try_reserve(extra).is_ok() {
        return Ok(());
    }
    let modest = v.capacity().saturating_add(v.capacity() / 4);
    let additional = extra.max(modest.saturating_sub(v.len()));
    v.try_reserve_exact(additional).map_err(|_| no_memory())
}

/// `v.reserve(extra)`, raising `MemoryError` when the memory is not there.
#[inline(always)]
pub fn reserve<T>(v: &mut Vec<T>, extra: usize) -> Result<(), PyErr> {
    if v.capacity() - v.len() < extra {
        return grow(v, extra);
    }
    Ok(())
}

/// `v.push(item)`, raising `MemoryError` when the vector cannot grow.
#[inline(always)]
pub fn push<T>(v: &mut Vec<T>, item: T) -> Result<(), PyErr> {
    if v.len() == v.capacity() {
        grow(v, 1)?;
    }
    v.push(item);
    Ok(())
}

/// `v.extend_from_slice(data)`, raising `MemoryError` when the vector cannot grow.
#[inline(always)]
pub fn extend<T: Clone>(v: &mut Vec<T>, data: &[T]) -> Result<(), PyErr> {
    reserve(v, data.len())?;
    v.extend_from_slice(data);
    Ok(())
}

/// `Vec::with_capacity(n)`, raising `MemoryError` when the memory is not there.
pub fn with_capacity<T>(n: usize) -> Result<Vec<T>, PyErr> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| no_memory())?;
    Ok(v)
}

/// `data.to_vec()`, raising `MemoryError` when the memory is not there.
pub fn to_vec<T: Clone>(data: &[T]) -> Result<Vec<T>, PyErr> {
    let mut v = with_capacity(data.len())?;
    v.extend_from_slice(data);
    Ok(v)
}

/// A NUL-terminated copy of `text`, for C functions that take C strings.
pub fn with_nul(text: &[u8]) -> Result<Vec<u8>, PyErr> {
    let mut v = with_capacity(text.len() + 1)?;
    v.extend_from_slice(text);
    v.push(0);
    Ok(v)
}

/// `Vec` of `n` copies of `value`, raising `MemoryError` when the memory is not there.
pub fn filled<T: Clone>(n: usize, value: T) -> Result<Vec<T>, PyErr> {
    let mut v = with_capacity(n)?;
    v.resize(n, value);
    Ok(v)
}

/// Collects an iterator of known length into a fresh vector allocated fallibly.
pub fn collect_exact<T, I>(items: I) -> Result<Vec<T>, PyErr>
where
    I: IntoIterator<Item = T>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let mut v = with_capacity(items.len())?;
    for item in items {
        push(&mut v, item)?;
    }
    Ok(v)
}

/// One emptied vector kept per thread for the next short-lived vector of its kind (a load's
/// stack, marks and memo), so that a small load pays no allocation and release for each. Large
/// ones are released: a spare never holds more than this many items.
pub type Spare<T> = std::thread::LocalKey<std::cell::Cell<Option<Vec<T>>>>;
const SPARE_MAX_ITEMS: usize = 4096;

/// The thread's spare vector of this kind (empty), or a new one.
#[inline]
pub fn take_spare<T>(spare: &'static Spare<T>) -> Vec<T> {
    spare
        .try_with(|s| s.take())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Empties `v` (releasing what it holds, which may run Python code) and keeps it as the thread's
/// spare of its kind if it is not large.
#[inline]
pub fn give_spare<T>(spare: &'static Spare<T>, mut v: Vec<T>) {
    v.clear();
    if v.capacity() != 0 && v.capacity() <= SPARE_MAX_ITEMS {
        let _ = spare.try_with(|s| s.set(Some(v)));
    }
}
