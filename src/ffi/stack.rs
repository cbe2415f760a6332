//! The native stack guard: `RecursionError` before the thread's stack runs out; and the
//! interpreter's own recursion limit.
//!
//! The interpreter's recursion limit counts calls, not bytes, and can be raised at will; a pickle
//! that nests deeply, or hooks that re-enter `dump`/`load`, could otherwise overflow the stack.
//! Every entry into a dump or a load, every nesting level of the pickler and every call from our
//! code into Python checks that the stack pointer is still above this thread's floor: the lowest
//! address of its stack plus a red zone, enough for the deepest stretch of our code between two
//! checks and for the interpreter to raise and unwind.

use std::cell::Cell;

use pyo3::exceptions::PyRecursionError;
use pyo3::PyErr;

/// Red zone bounds: a quarter of the stack, between these two.
const RED_ZONE_MAX: usize = 256 * 1024;
const RED_ZONE_MIN: usize = 8 * 1024;

thread_local! {
    /// This thread's floor; 0 until known, 1 when the stack bounds cannot be read.
    static FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// The current stack pointer (approximately: the address of a local).
#[inline(always)]
pub fn pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The address below which this thread must not go deeper (0 when unknown).
#[inline]
pub fn floor() -> usize {
    let floor = FLOOR.with(Cell::get);
    if floor > 1 {
        return floor;
    }
    if floor == 1 {
        return 0;
    }
    let computed = match bounds() {
        Some((low, size)) => low + (size / 4).clamp(RED_ZONE_MIN, RED_ZONE_MAX),
        None => 1,
    };
    FLOOR.with(|f| f.set(computed));
    if computed > 1 {
        computed
    } else {
        0
    }
}

/// `Err(RecursionError)` when the stack is nearly used up; `context` completes the message
/// ("maximum recursion depth exceeded" + context).
#[inline]
pub fn check(context: &'static str) -> Result<(), PyErr> {
    if pointer() < floor() {
        return Err(exhausted(context));
    }
    Ok(())
}

/// `sys.getrecursionlimit()`.
pub fn recursion_limit() -> usize {
    // SAFETY: reads the interpreter's setting; the GIL is held (object.rs notes).
    let r = unsafe { pyo3::ffi::Py_GetRecursionLimit() };
    if r < 0 {
        0
    } else {
        r as usize
    }
}

#[cold]
#[inline(never)]
fn exhausted(context: &'static str) -> PyErr {
    PyRecursionError::new_err(format!("maximum recursion depth exceeded{}", context))
}

// ---- The thread's stack bounds, per platform ----
//
// Linux (glibc, musl, Android), macOS, Windows and FreeBSD say where the calling thread's stack
// ends. Elsewhere `bounds()` is `None` and the guard is off: the nesting limit derived from
// `sys.getrecursionlimit()` is then the only bound, as in the C pickler.

/// Lowest address and size of the current thread's stack.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bounds() -> Option<(usize, usize)> {
    // SAFETY: plain queries on the calling thread's attributes, destroyed after use.
    let (low, size) = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 || addr.is_null() {
            return None;
        }
        (addr as usize, size)
    };
    #[cfg(target_env = "musl")]
    let (low, size) = musl_main_thread(low, size);
    Some((low, size))
}

/// musl reports only the part of the main thread's stack that is mapped so far (it probes the
/// mapping downwards), which is little at first: the guard would then trip after a few dozen KiB.
/// The kernel grows that stack on demand up to `RLIMIT_STACK`, counted from a top above the one
/// musl reports by argv and the environment, which may take up to a quarter of the limit. So the
/// main thread gets three quarters of the limit below musl's top (of 8 MiB when unlimited).
#[cfg(all(target_os = "linux", target_env = "musl"))]
fn musl_main_thread(low: usize, size: usize) -> (usize, usize) {
    // SAFETY: plain queries: the process and thread ids, the calling process's stack limit.
    unsafe {
        if libc::syscall(libc::SYS_gettid) != libc::c_long::from(libc::getpid()) {
            return (low, size);
        }
        let mut limit: libc::rlimit = std::mem::zeroed();
        let limit = if libc::getrlimit(libc::RLIMIT_STACK, &mut limit) == 0
            && limit.rlim_cur != libc::RLIM_INFINITY
        {
            usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
        } else {
            8 << 20
        };
        let top = low + size;
        let usable = (limit / 4 * 3).max(size).min(top);
        (top - usable, usable)
    }
}

/// macOS: the stack's top (highest address) and size.
#[cfg(target_vendor = "apple")]
fn bounds() -> Option<(usize, usize)> {
    // SAFETY: plain queries on the calling thread.
    let (top, size) = unsafe {
        let thread = libc::pthread_self();
        (
            libc::pthread_get_stackaddr_np(thread) as usize,
            libc::pthread_get_stacksize_np(thread),
        )
    };
    if size == 0 || size >= top {
        return None;
    }
    Some((top - size, size))
}

/// FreeBSD: as on Linux, with the attributes object initialised first.
#[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
fn bounds() -> Option<(usize, usize)> {
    // SAFETY: plain queries on the calling thread's attributes, destroyed after use.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_attr_init(&mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = match libc::pthread_attr_get_np(libc::pthread_self(), &mut attr) {
            0 => libc::pthread_attr_getstack(&attr, &mut addr, &mut size),
            err => err,
        };
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 || addr.is_null() {
            return None;
        }
        Some((addr as usize, size))
    }
}

/// Windows: the reservation of the thread's stack. Its lowest pages are guard pages, never usable
/// (one page plus the thread's stack guarantee): they are left out.
#[cfg(windows)]
fn bounds() -> Option<(usize, usize)> {
    const GUARD_PAGES: usize = 64 * 1024;
    #[link(name = "kernel32")]
    extern "system" {
        fn GetCurrentThreadStackLimits(low_limit: *mut usize, high_limit: *mut usize);
    }
    let (mut low, mut high) = (0usize, 0usize);
    // SAFETY: writes the calling thread's two stack limits into the two locals.
    unsafe { GetCurrentThreadStackLimits(&mut low, &mut high) };
    if low == 0 || high <= low + 2 * GUARD_PAGES {
        return None;
    }
    Some((low + GUARD_PAGES, high - low - GUARD_PAGES))
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly",
    windows
)))]
fn bounds() -> Option<(usize, usize)> {
    None
}
