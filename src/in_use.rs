//! Which thread is running a dump or load on a Pickler/Unpickler. Hooks on that thread see and may
//! change the instance's live state (memo, settings), as in C; another thread that tries to use or
//! change the instance meanwhile gets `RuntimeError` instead of interleaving with it.

use std::cell::{Cell, RefCell};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyResult;

thread_local! {
    /// Its address identifies the thread while the thread lives.
    static THREAD_MARK: u8 = const { 0 };
}

fn this_thread() -> usize {
    THREAD_MARK.with(|mark| mark as *const u8 as usize)
}

#[derive(Default)]
pub struct InUse {
    /// The running thread's mark; 0 when no dump/load runs.
    owner: Cell<usize>,
    /// Nested runs on that thread (a hook may dump/load again on the same instance).
    depth: Cell<usize>,
}

/// A running dump/load; dropping it ends it.
pub struct Running<'a>(&'a InUse);

impl InUse {
    /// Starts a dump/load on the calling thread; `what` names the instance ("Pickler").
    pub fn enter(&self, what: &str) -> PyResult<Running<'_>> {
        self.check(what)?;
        self.owner.set(this_thread());
        self.depth.set(self.depth.get() + 1);
        Ok(Running(self))
    }

    /// Refuses when another thread is running a dump/load on the instance.
    pub fn check(&self, what: &str) -> PyResult<()> {
        match self.owner.get() {
            0 => Ok(()),
            owner if owner == this_thread() => Ok(()),
            _ => Err(PyRuntimeError::new_err(format!(
                "{} is in use by another thread",
                what
            ))),
        }
    }
}

impl InUse {
    /// Puts `new` in `cell` (an instance's memo), refused while another thread runs the instance;
    /// the old value is released after the borrow ends, as releasing may run Python code.
    pub fn replace<T>(&self, what: &str, cell: &RefCell<T>, new: T) -> PyResult<()> {
        self.check(what)?;
        let mut current = cell
            .try_borrow_mut()
            .map_err(|_| PyValueError::new_err(format!("{} memo is in use", what)))?;
        let old = std::mem::replace(&mut *current, new);
        drop(current);
        drop(old);
        Ok(())
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let depth = self.0.depth.get() - 1;
        self.0.depth.set(depth);
        if depth == 0 {
            self.0.owner.set(0);
        }
    }
}
