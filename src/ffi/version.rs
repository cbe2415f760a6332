//! The running interpreter's version, read once: the wheel is built for 3.6 and gates behaviour
//! (and struct-layout access) on what it finds at import time.

use once_cell::sync::OnceCell;
use pyo3::prelude::*;

static VERSION: OnceCell<(u8, u8)> = OnceCell::new();

/// Records `sys.version_info[:2]`; called from module initialisation.
pub fn init(py: Python) -> PyResult<()> {
    let info = py.import("sys")?.getattr("version_info")?;
    let major: u8 = info.get_item(0)?.extract()?;
    let minor: u8 = info.get_item(1)?.extract()?;
    let _ = VERSION.set((major, minor));
    Ok(())
}

/// `sys.version_info[:2]` of the running interpreter.
pub fn running() -> (u8, u8) {
    VERSION.get().copied().unwrap_or((3, 6))
}

/// True on 3.6/3.7, whose object layouts are frozen and may be touched directly.
pub fn is_frozen_layout() -> bool {
    running() < (3, 8)
}
