//! Where the unpickler's bytes come from: a zero-copy view of a bytes-like object, or a file object
//! read the way the C unpickler reads it (so the file position after `load()` is the same).

use pyo3::prelude::*;

use crate::alloc;
use crate::errors;
use crate::ffi::buffer::Contiguous;
use crate::ffi::{self, new_int, NewBuffer, Obj};

/// Peek size for files that support `peek()`, as in CPython.
const PREFETCH: usize = 8192 * 16;

/// Reads from files larger than this are made in chunks, so that a forged length field cannot make
/// us (or the file object) allocate more than the data that actually arrives, plus this much.
const CHUNK: usize = 1 << 20;

/// Payloads up to this size are read from files straight into their destination object; larger
/// ones are staged in chunks first (one extra copy, bounded allocation).
const DIRECT_READ_MAX: usize = 16 << 20;

#[cold]
#[inline(never)]
pub fn truncated() -> PyErr {
    errors::unpickling("pickle data was truncated")
}

/// A byte source for the load loop.
pub trait Source {
    /// The next `n` bytes, or "pickle data was truncated".
    fn read(&mut self, n: usize) -> PyResult<&[u8]>;
    /// The next opcode byte; `Ok(None)` when the input is exhausted.
    fn read_opcode(&mut self) -> PyResult<Option<u8>>;
    /// The next line including its `\n`.
    fn readline(&mut self) -> PyResult<&[u8]>;
    /// Makes the next `n` bytes available without consuming them (FRAME).
    fn prefetch_frame(&mut self, n: usize) -> PyResult<()>;
    /// A new `bytes` (or `bytearray`) object holding the next `n` bytes.
    fn read_object(&mut self, n: usize, bytearray: bool) -> PyResult<Obj>;
    /// Called after STOP: leaves the underlying file positioned right after the pickle.
    fn finish(&mut self) -> PyResult<()>;
}

/// A new `bytes` (or `bytearray`) holding `data`. The C unpickler makes it empty and then fills
/// it, so a 1-byte `bytes` is a fresh object, not the interpreter's cached one: the same here.
fn object_from_slice(data: &[u8], bytearray: bool) -> PyResult<Obj> {
    if bytearray {
        return ffi::new_bytearray(data);
    }
    if data.len() == 1 {
        let mut buf = NewBuffer::new(1, false)?;
        buf.as_mut_slice().copy_from_slice(data);
        return Ok(buf.finish());
    }
    ffi::new_bytes(data)
}

// ---------------------------------------------------------------------------------------------

/// The whole pickle in memory (`loads`): every length is checked against what remains.
pub struct BytesSource {
    view: Contiguous,
    pos: usize,
}

impl BytesSource {
    pub fn new(data: &Obj) -> PyResult<Self> {
        Ok(BytesSource {
            view: Contiguous::of(data)?,
            pos: 0,
        })
    }
}

impl Source for BytesSource {
    #[inline(always)]
    fn read(&mut self, n: usize) -> PyResult<&[u8]> {
        // Written so that a constant `n` gives a slice of known length (no per-byte checks after).
        match self
            .view
            .as_slice()
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
        {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(truncated()),
        }
    }

    #[inline(always)]
    fn read_opcode(&mut self) -> PyResult<Option<u8>> {
        let data = self.view.as_slice();
        match data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(Some(b))
            }
            None => Ok(None),
        }
    }

    fn readline(&mut self) -> PyResult<&[u8]> {
        let data = self.view.as_slice();
        let rest = &data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..=i])
            }
            None => Err(truncated()),
        }
    }

    fn prefetch_frame(&mut self, n: usize) -> PyResult<()> {
        if n > self.view.len() - self.pos {
            return Err(truncated());
        }
        Ok(())
    }

    #[inline(always)]
    fn read_object(&mut self, n: usize, bytearray: bool) -> PyResult<Obj> {
        // Like CPython, even an empty payload needs input left to read.
        if self.pos == self.view.len() {
            return Err(truncated());
        }
        let data = self.read(n)?;
        object_from_slice(data, bytearray)
    }

    fn finish(&mut self) -> PyResult<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

/// The bytes the file source currently works from.
enum Window {
    Empty,
    /// What a file method returned.
    Data(Contiguous),
    Owned(Vec<u8>),
}

impl Window {
    /// The window over what a file method returned.
    fn of(data: &Obj) -> PyResult<Window> {
        Ok(Window::Data(Contiguous::of(data)?))
    }

    #[inline(always)]
    fn as_slice(&self) -> &[u8] {
        match self {
            Window::Empty => &[],
            Window::Data(d) => d.as_slice(),
            Window::Owned(v) => v,
        }
    }
}

/// The file object's methods, looked up once by `Unpickler.__init__` or `load()`.
#[derive(Clone)]
pub struct FileMethods {
    pub read: Obj,
    pub readline: Obj,
    pub readinto: Option<Obj>,
    pub peek: Option<Obj>,
}

impl FileMethods {
    /// Looks up `read`/`readline` (required) and `readinto`/`peek` (optional) like `_pickle` does.
    pub fn of(file: &Obj) -> PyResult<FileMethods> {
        // `peek` is often absent (io.BytesIO), so it is looked up quietly; the io classes all
        // have `readinto`, so it is looked up directly (an absent one costs an exception).
        let peek = file.getattr_if_present(crate::interned!("peek"))?;
        let readinto = file.getattr_opt(crate::interned!("readinto"))?;
        let read = file.getattr_opt(crate::interned!("read"))?;
        let readline = file.getattr_opt(crate::interned!("readline"))?;
        match (read, readline) {
            (Some(read), Some(readline)) => Ok(FileMethods {
                read,
                readline,
                readinto,
                peek,
            }),
            _ => Err(pyo3::exceptions::PyTypeError::new_err(
                "file must have 'read' and 'readline' attributes",
            )),
        }
    }

    pub fn objects(&self) -> impl Iterator<Item = &Obj> {
        [
            Some(&self.read),
            Some(&self.readline),
            self.readinto.as_ref(),
            self.peek.as_ref(),
        ]
        .into_iter()
        .flatten()
    }
}

/// A file object. Without `peek` it reads exactly what each opcode needs (whole frames at protocol
/// 4+); with `peek` it looks ahead and later `read`s what it consumed.
pub struct FileSource {
    methods: FileMethods,
    window: Window,
    pos: usize,
    /// How much of `window` the file has been advanced past (all of it unless it came from `peek`).
    consumed_in_file: usize,
}

impl FileSource {
    pub fn new(methods: FileMethods) -> Self {
        FileSource {
            methods,
            window: Window::Empty,
            pos: 0,
            consumed_in_file: 0,
        }
    }

    /// Starts with `leftover`: bytes a previous load took from the same file and did not use.
    pub fn with_leftover(methods: FileMethods, leftover: Vec<u8>) -> Self {
        let mut src = FileSource::new(methods);
        if !leftover.is_empty() {
            src.set_window(Window::Owned(leftover), false);
        }
        src
    }

    /// The bytes taken from the file but not used (none of a window that was only peeked at).
    pub fn into_leftover(self) -> PyResult<Vec<u8>> {
        if self.consumed_in_file <= self.pos {
            return Ok(Vec::new());
        }
        match self.window {
            Window::Owned(mut v) => {
                v.truncate(self.consumed_in_file);
                v.drain(..self.pos);
                Ok(v)
            }
            window => crate::alloc::to_vec(&window.as_slice()[self.pos..self.consumed_in_file]),
        }
    }

    #[inline(always)]
    fn available(&self) -> usize {
        self.window.as_slice().len() - self.pos
    }

    /// Advances the file past what was consumed from a peeked window.
    fn skip_consumed(&mut self) -> PyResult<()> {
        if self.pos > self.consumed_in_file {
            let n = self.pos - self.consumed_in_file;
            self.methods.read.call_one(&new_int(n as i64)?)?;
            self.consumed_in_file = self.pos;
        }
        Ok(())
    }

    fn set_window(&mut self, window: Window, from_peek: bool) {
        let len = window.as_slice().len();
        self.window = window;
        self.pos = 0;
        self.consumed_in_file = if from_peek { 0 } else { len };
    }

    /// Replaces the window with at least `n` fresh bytes from the file (fewer only at EOF).
    fn fill(&mut self, n: usize) -> PyResult<usize> {
        self.skip_consumed()?;
        if n < PREFETCH {
            if let Some(peek) = self.methods.peek.clone() {
                match peek.call_one(&new_int(PREFETCH as i64)?) {
                    Ok(data) => {
                        self.set_window(Window::of(&data)?, true);
                        if self.available() >= n {
                            return Ok(n);
                        }
                    }
                    Err(e) => {
                        let py = crate::ffi::gil();
                        if !e.is_instance::<pyo3::exceptions::PyNotImplementedError>(py) {
                            return Err(e);
                        }
                        self.methods.peek = None;
                    }
                }
            }
        }
        let window = if n <= CHUNK {
            let data = self.methods.read.call_one(&new_int(n as i64)?)?;
            Window::of(&data)?
        } else {
            Window::Owned(self.read_chunked(n)?)
        };
        self.set_window(window, false);
        Ok(self.available())
    }

    /// Reads up to `n` bytes in growing chunks, stopping early at EOF.
    fn read_chunked(&mut self, n: usize) -> PyResult<Vec<u8>> {
        let mut out: Vec<u8> = Vec::new();
        let mut chunk = CHUNK;
        while out.len() < n {
            let want = chunk.min(n - out.len());
            let data = self.methods.read.call1(&new_int(want as i64)?)?;
            let view = Contiguous::of(&data)?;
            alloc::extend(&mut out, view.as_slice())?;
            if view.len() < want {
                break;
            }
            chunk = chunk.saturating_mul(2);
        }
        Ok(out)
    }

    /// Fills the new object `dest` from the window, then from the file (`readinto` when
    /// available).
    fn read_into(&mut self, dest: &mut NewBuffer) -> PyResult<()> {
        let want = dest.len();
        let from_window = self.available().min(want);
        let window = self.window.as_slice();
        dest.as_mut_slice()[..from_window]
            .copy_from_slice(&window[self.pos..self.pos + from_window]);
        self.pos += from_window;
        let rest = want - from_window;
        // Like CPython, only data taken from the window can complete a read without the file.
        if rest == 0 && from_window > 0 {
            return Ok(());
        }
        self.skip_consumed()?;
        match self.methods.readinto.clone() {
            None => {
                let data = self.methods.read.call1(&new_int(rest as i64)?)?;
                if !data.is_exact_type(ffi::types::bytes())
                    && !data.is_instance(ffi::types::bytes())?
                {
                    return Err(crate::errors::new_fmt::<pyo3::exceptions::PyValueError>(
                        format_args!(
                            "read() returned non-bytes object ({})",
                            data.type_obj().repr_string()
                        ),
                    ));
                }
                let got = data.bytes_data();
                if got.len() < rest {
                    return Err(truncated());
                }
                dest.as_mut_slice()[from_window..].copy_from_slice(&got[..rest]);
            }
            Some(readinto) => {
                let n = dest
                    .readinto_from(from_window, &readinto)?
                    .long_as_ssize()?;
                if n < 0 {
                    return Err(pyo3::exceptions::PyValueError::new_err(
                        "readinto() returned negative size",
                    ));
                }
                if (n as usize) < rest {
                    return Err(truncated());
                }
            }
        }
        Ok(())
    }
}

impl FileSource {
    /// `read` once the window is exhausted: kept out of line so the common case inlines.
    #[inline(never)]
    fn read_after_fill(&mut self, n: usize) -> PyResult<&[u8]> {
        if self.fill(n)? < n {
            return Err(truncated());
        }
        self.pos = n;
        Ok(&self.window.as_slice()[..n])
    }
}

impl Source for FileSource {
    #[inline(always)]
    fn read(&mut self, n: usize) -> PyResult<&[u8]> {
        if self.available() < n {
            return self.read_after_fill(n);
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.window.as_slice()[start..self.pos])
    }

    fn read_opcode(&mut self) -> PyResult<Option<u8>> {
        match self.read(1) {
            Ok(b) => Ok(Some(b[0])),
            Err(e) => {
                if e.matches(
                    crate::ffi::gil(),
                    errors::unpickling_error_class(crate::ffi::gil()),
                ) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn readline(&mut self) -> PyResult<&[u8]> {
        let rest = &self.window.as_slice()[self.pos..];
        if let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let start = self.pos;
            self.pos += i + 1;
            return Ok(&self.window.as_slice()[start..self.pos]);
        }
        self.skip_consumed()?;
        let line = self.methods.readline.call0()?;
        self.set_window(Window::of(&line)?, false);
        let data = self.window.as_slice();
        if data.last() != Some(&b'\n') {
            return Err(truncated());
        }
        self.pos = data.len();
        Ok(self.window.as_slice())
    }

    fn prefetch_frame(&mut self, n: usize) -> PyResult<()> {
        self.read(n)?;
        self.pos -= n;
        Ok(())
    }

    fn read_object(&mut self, n: usize, bytearray: bool) -> PyResult<Obj> {
        // An empty window means a file read, even for an empty payload (as in CPython).
        if n <= self.available() && self.available() > 0 {
            let data = self.read(n)?;
            return object_from_slice(data, bytearray);
        }
        if n > DIRECT_READ_MAX {
            // Stage in bounded chunks: the claimed length is only trusted once the data is here.
            let mut staged = alloc::to_vec(&self.window.as_slice()[self.pos..])?;
            self.pos = self.window.as_slice().len();
            self.skip_consumed()?;
            let rest = self.read_chunked(n - staged.len())?;
            if staged.is_empty() {
                staged = rest;
            } else {
                alloc::extend(&mut staged, &rest)?;
            }
            if staged.len() < n {
                return Err(truncated());
            }
            return object_from_slice(&staged, bytearray);
        }
        let mut buffer = NewBuffer::new(n, bytearray)?;
        self.read_into(&mut buffer)?;
        Ok(buffer.finish())
    }

    fn finish(&mut self) -> PyResult<()> {
        self.skip_consumed()
    }
}
