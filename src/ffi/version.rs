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

/// The minor versions whose object layouts this crate may read or write directly: 3.6/3.7 (frozen)
/// and the released 3.8 ... 3.13, whose headers were checked. Any other version takes the API path.
const LAYOUT_CHECKED: std::ops::RangeInclusive<(u8, u8)> = (3, 6)..=(3, 13);

/// Set to 1 to force the API path on every version (CI runs the tests once that way).
pub const API_ONLY_ENV: &str = "PICKLE5_RS_API_ONLY";

static API_ONLY: OnceCell<bool> = OnceCell::new();

/// Whether struct layouts may be touched at all: a checked version, and not forced off. Each use
/// still verifies the layout on live objects before relying on it.
pub fn layout_access() -> bool {
    !api_only() && LAYOUT_CHECKED.contains(&running())
}

/// Whether `PICKLE5_RS_API_ONLY` forces the API path (and the calls every version has).
pub fn api_only() -> bool {
    *API_ONLY
        .get_or_init(|| std::env::var_os(API_ONLY_ENV).is_some_and(|v| !v.is_empty() && v != "0"))
}
