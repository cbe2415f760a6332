//! Output of the pickler: a byte buffer with protocol-4 framing computed on the fly, exactly where
//! the C pickler puts frame boundaries.
//!
//! - `dumps()` mode: everything accumulates in memory; payloads of 64 KiB or more from immutable
//!   objects (bytes, str) are referenced rather than copied, and the final `bytes` is filled once.
//! - file mode (`Pickler.dump`): a frame is flushed with `file.write` as soon as it reaches 64 KiB at
//!   an opcode boundary, and large payloads are written straight to the file, outside any frame.

use pyo3::prelude::*;

use crate::alloc;
use crate::ffi::bytes::HeldBytes;
use crate::ffi::{self, NewBuffer, Obj};
use crate::opcodes::FRAME;

pub const FRAME_SIZE_TARGET: usize = 64 * 1024;
const FRAME_SIZE_MIN: usize = 4;
const FRAME_HEADER_SIZE: usize = 9;
const NO_FRAME: usize = usize::MAX;

enum Segment {
    Owned(Vec<u8>),
    Held(HeldBytes),
}

/// Where a large payload's bytes come from.
pub enum Payload<'a> {
    /// Immutable memory owned by an object we can keep a reference to.
    Held(HeldBytes),
    /// Memory that may change once Python code runs again (bytearray, buffer exports): copied in
    /// memory mode; in file mode `obj` itself is given to `file.write`.
    Borrowed { data: &'a [u8], obj: &'a Obj },
    /// Immutable memory reached through `obj` (a PickleBuffer over a bytes object): kept by
    /// reference in memory mode; in file mode `obj` itself is given to `file.write`.
    Shared { held: HeldBytes, obj: &'a Obj },
}

impl Payload<'_> {
    fn data(&self) -> &[u8] {
        match self {
            Payload::Held(h) => h.as_slice(),
            Payload::Borrowed { data, .. } => data,
            Payload::Shared { held, .. } => held.as_slice(),
        }
    }
}

thread_local! {
    /// The last dump's buffer, kept (if not huge) so the next dump starts with room to write.
    static SPARE_BUFFER: std::cell::Cell<Option<Vec<u8>>> = const { std::cell::Cell::new(None) };
}
const SPARE_BUFFER_MAX: usize = 1 << 20;

pub struct Writer {
    /// The output so far (after the segments, in memory mode).
    buf: Vec<u8>,
    framing: bool,
    /// Where the open frame's header placeholder starts; meaningful while `frame_limit` is finite.
    frame_start: usize,
    /// `buf.len()` at which the open frame is full (`usize::MAX` when no frame is open). While
    /// framing is on, a frame is always open except around a large payload, so small writes
    /// never check for it.
    frame_limit: usize,
    file_write: Option<Obj>,
    /// Number of `file.write` calls made (Python code that may change anything).
    file_writes: u64,
    segments: Vec<Segment>,
    /// In memory mode, once a large payload had to be copied: the output up to it and the
    /// payload, in a new `bytes` object with room to spare that becomes the result (then the
    /// output is `base`, `segments`, `buf`, in that order).
    base: Option<Base>,
}

/// A `bytes` object being filled (its first `len` bytes), to be cut to the pickle's length.
struct Base {
    bytes: NewBuffer,
    len: usize,
}

/// Payloads copied into the result directly (see [`Writer::copy_into_base`]) from this size.
const BASE_MIN_PAYLOAD: usize = 1 << 20;
/// The least room a new base leaves for what follows its payload.
const BASE_MIN_SPARE: usize = 64 * 1024;

impl Writer {
    pub fn new(file_write: Option<Obj>) -> Writer {
        let mut buf = SPARE_BUFFER.with(|spare| spare.take()).unwrap_or_default();
        buf.clear();
        // Room to start with; a failure here shows up at the first write instead.
        let _ = buf.try_reserve(4096);
        Writer {
            buf,
            framing: false,
            frame_start: 0,
            frame_limit: NO_FRAME,
            file_write,
            file_writes: 0,
            segments: Vec::new(),
            base: None,
        }
    }

    /// How many times Python code ran to write output so far (calls of the file's `write`).
    #[inline]
    pub fn python_runs(&self) -> u64 {
        self.file_writes
    }

    /// Turns framing on (opening a frame) or off (the open frame must have been committed).
    pub fn set_framing(&mut self, on: bool) -> PyResult<()> {
        self.framing = on;
        if on && self.frame_limit == NO_FRAME {
            self.open_frame()?;
        }
        Ok(())
    }

    fn open_frame(&mut self) -> PyResult<()> {
        alloc::reserve(&mut self.buf, FRAME_HEADER_SIZE)?;
        self.frame_start = self.buf.len();
        self.frame_limit = self.frame_start + FRAME_HEADER_SIZE + FRAME_SIZE_TARGET;
        self.buf.extend_from_slice(&[0xFE; FRAME_HEADER_SIZE]);
        Ok(())
    }

    /// Makes room for `n` more bytes (raising `MemoryError` when there is none to be had): the
    /// writes below call it only when the buffer is full.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) -> PyResult<()> {
        alloc::grow(&mut self.buf, n)
    }

    #[inline(always)]
    pub fn write(&mut self, data: &[u8]) -> PyResult<()> {
        if self.buf.capacity() - self.buf.len() < data.len() {
            self.grow(data.len())?;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// A small fixed-size piece (an opcode and its argument).
    #[inline(always)]
    pub fn write_array<const N: usize>(&mut self, data: [u8; N]) -> PyResult<()> {
        if self.buf.capacity() - self.buf.len() < N {
            self.grow(N)?;
        }
        self.buf.extend_from_slice(&data);
        Ok(())
    }

    /// Two pieces back to back (an opcode header and its small payload).
    #[inline(always)]
    pub fn write2(&mut self, a: &[u8], b: &[u8]) -> PyResult<()> {
        let n = a.len() + b.len();
        if self.buf.capacity() - self.buf.len() < n {
            self.grow(n)?;
        }
        self.buf.extend_from_slice(a);
        self.buf.extend_from_slice(b);
        Ok(())
    }

    #[inline(always)]
    pub fn write_byte(&mut self, op: u8) -> PyResult<()> {
        if self.buf.len() == self.buf.capacity() {
            self.grow(1)?;
        }
        self.buf.push(op);
        Ok(())
    }

    /// Closes the open frame: writes its header, or drops the header if the frame is tiny.
    pub fn commit_frame(&mut self) {
        if self.frame_limit == NO_FRAME {
            return;
        }
        let start = self.frame_start;
        let end = self.buf.len();
        let frame_len = end - start - FRAME_HEADER_SIZE;
        if frame_len >= FRAME_SIZE_MIN {
            self.buf[start] = FRAME;
            self.buf[start + 1..start + FRAME_HEADER_SIZE]
                .copy_from_slice(&(frame_len as u64).to_le_bytes());
        } else {
            self.buf.copy_within(start + FRAME_HEADER_SIZE..end, start);
            self.buf.truncate(end - FRAME_HEADER_SIZE);
        }
        self.frame_limit = NO_FRAME;
    }

    /// Whether the open frame has reached its target size (the next opcode boundary ends it).
    #[inline(always)]
    pub fn frame_is_full(&self) -> bool {
        self.buf.len() >= self.frame_limit
    }

    /// Called before each object is saved: ends a frame that has reached the target size.
    #[inline(always)]
    pub fn opcode_boundary(&mut self) -> PyResult<()> {
        if self.buf.len() >= self.frame_limit {
            return self.end_full_frame();
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn end_full_frame(&mut self) -> PyResult<()> {
        self.commit_frame();
        if self.file_write.is_some() {
            self.flush_to_file()?;
        }
        self.open_frame()
    }

    /// Writes the buffered output to the file (committing the open frame first).
    pub fn flush_to_file(&mut self) -> PyResult<()> {
        self.commit_frame();
        if let Some(write) = &self.file_write {
            let chunk = ffi::new_bytes(&self.buf)?;
            self.buf.clear();
            self.file_writes += 1;
            write.call1(&chunk)?;
        }
        Ok(())
    }

    /// An opcode header followed by a payload. Payloads of 64 KiB or more are kept out of frames
    /// (and, in file mode, written straight to the file) so that loaders can read them in place.
    pub fn write_with_payload(&mut self, header: &[u8], payload: Payload) -> PyResult<()> {
        let data_len = payload.data().len();
        if data_len < FRAME_SIZE_TARGET {
            return self.write2(header, payload.data());
        }
        self.commit_frame();
        let framing = self.framing;
        self.framing = false;
        let result = self.write(header).and_then(|_| self.write_payload(payload));
        self.framing = framing;
        let reopened = if framing { self.open_frame() } else { Ok(()) };
        result.and(reopened)
    }

    /// The payload part of [`Writer::write_with_payload`], after its header.
    fn write_payload(&mut self, payload: Payload) -> PyResult<()> {
        if let Some(write) = self.file_write.clone() {
            self.flush_to_file().and_then(|_| {
                let obj = match &payload {
                    Payload::Held(h) if h.owner_is_bytes => h.owner().clone(),
                    Payload::Held(h) => ffi::new_bytes(h.as_slice())?,
                    Payload::Borrowed { obj, .. } | Payload::Shared { obj, .. } => (*obj).clone(),
                };
                self.file_writes += 1;
                write.call1(&obj).map(|_| ())
            })
        } else {
            match payload {
                Payload::Held(h) | Payload::Shared { held: h, .. } => {
                    alloc::reserve(&mut self.segments, 2)?;
                    let fresh = alloc::with_capacity(4096)?;
                    let before = std::mem::replace(&mut self.buf, fresh);
                    self.segments.push(Segment::Owned(before));
                    self.segments.push(Segment::Held(h));
                    Ok(())
                }
                Payload::Borrowed { data, .. }
                    if data.len() >= BASE_MIN_PAYLOAD && ffi::bytes_layout::in_use() =>
                {
                    self.copy_into_base(data)
                }
                Payload::Borrowed { data, .. } => self.write(data),
            }
        }
    }

    fn segments_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Owned(v) => v.len(),
                Segment::Held(h) => h.len(),
            })
            .sum()
    }

    /// Moves the segments and the buffer to `dst` from `at`; returns where they end.
    fn drain_into(&mut self, dst: &mut [u8], mut at: usize) -> usize {
        for s in self.segments.drain(..) {
            let src = match &s {
                Segment::Owned(v) => v.as_slice(),
                Segment::Held(h) => h.as_slice(),
            };
            dst[at..at + src.len()].copy_from_slice(src);
            at += src.len();
        }
        dst[at..at + self.buf.len()].copy_from_slice(&self.buf);
        at += self.buf.len();
        self.buf.clear();
        at
    }

    /// Memory mode, a large payload that must be copied now (it may change once Python code runs
    /// again): the output so far and the payload go into the base, which grows by half again when
    /// full, as the C pickler's output buffer does, so the payload is copied once.
    fn copy_into_base(&mut self, payload: &[u8]) -> PyResult<()> {
        let base_len = self.base.as_ref().map_or(0, |b| b.len);
        let needed = base_len
            .checked_add(self.segments_len() + self.buf.len())
            .and_then(|n| n.checked_add(payload.len()))
            .ok_or_else(|| pyo3::exceptions::PyMemoryError::new_err(()))?;
        let mut base = match self.base.take() {
            Some(base) if base.bytes.len() >= needed => base,
            old => {
                let spare = match old {
                    Some(_) => needed / 2,
                    None => (needed / 16).max(BASE_MIN_SPARE),
                };
                let mut bytes = NewBuffer::new(needed.saturating_add(spare), false)?;
                if let Some(mut old) = old {
                    bytes.as_mut_slice()[..base_len]
                        .copy_from_slice(&old.bytes.as_mut_slice()[..base_len]);
                }
                Base {
                    bytes,
                    len: base_len,
                }
            }
        };
        let dst = base.bytes.as_mut_slice();
        let at = self.drain_into(dst, base.len);
        dst[at..at + payload.len()].copy_from_slice(payload);
        base.len = at + payload.len();
        self.base = Some(base);
        Ok(())
    }

    /// Ends memory mode: the whole pickle as one `bytes` object.
    pub fn finish_bytes(&mut self) -> PyResult<Obj> {
        self.commit_frame();
        let rest = self.segments_len() + self.buf.len();
        if let Some(mut base) = self.base.take() {
            if base.bytes.len() - base.len >= rest {
                let dst = base.bytes.as_mut_slice();
                base.len = self.drain_into(dst, base.len);
                match base.bytes.finish_shortened(base.len) {
                    Ok(result) => return Ok(result),
                    Err(bytes) => base.bytes = bytes,
                }
            }
            // No room for the rest: one more copy, of everything, into a result of the right size.
            let mut out = NewBuffer::new(base.len + self.segments_len() + self.buf.len(), false)?;
            let dst = out.as_mut_slice();
            dst[..base.len].copy_from_slice(&base.bytes.as_mut_slice()[..base.len]);
            self.drain_into(dst, base.len);
            return Ok(out.finish());
        }
        if self.segments.is_empty() {
            return ffi::new_bytes(&self.buf);
        }
        let mut out = NewBuffer::new(rest, false)?;
        self.drain_into(out.as_mut_slice(), 0);
        Ok(out.finish())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= SPARE_BUFFER_MAX && buf.capacity() != 0 {
            SPARE_BUFFER.with(|spare| spare.set(Some(buf)));
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
