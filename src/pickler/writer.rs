//! Output of the pickler: a byte buffer with protocol-4 framing computed on the fly, exactly where
//! the C pickler puts frame boundaries.
//!
//! - `dumps()` mode: everything accumulates in memory; payloads of 64 KiB or more from immutable
//!   objects (bytes, str) are referenced rather than copied, and the final `bytes` is filled once.
//! - file mode (`Pickler.dump`): a frame is flushed with `file.write` as soon as it reaches 64 KiB at
//!   an opcode boundary, and large payloads are written straight to the file, outside any frame.

use pyo3::prelude::*;

use crate::ffi::pickling::HeldBytes;
use crate::ffi::{self, BytesUnderConstruction, Obj};
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
}

impl Payload<'_> {
    fn data(&self) -> &[u8] {
        match self {
            Payload::Held(h) => h.as_slice(),
            Payload::Borrowed { data, .. } => data,
        }
    }
}

thread_local! {
    /// The last dump's buffer, kept (if not huge) so the next dump starts with room to write.
    static SPARE_BUFFER: std::cell::Cell<Option<Vec<u8>>> = std::cell::Cell::new(None);
}
const SPARE_BUFFER_MAX: usize = 1 << 20;

pub struct Writer {
    buf: Vec<u8>,
    framing: bool,
    frame_start: usize,
    file_write: Option<Obj>,
    segments: Vec<Segment>,
}

impl Writer {
    pub fn new(file_write: Option<Obj>) -> Writer {
        let buf = SPARE_BUFFER.with(|spare| spare.take()).unwrap_or_else(|| Vec::with_capacity(4096));
        Writer {
            buf,
            framing: false,
            frame_start: NO_FRAME,
            file_write,
            segments: Vec::new(),
        }
    }

    pub fn set_framing(&mut self, on: bool) {
        self.framing = on;
    }

    #[inline]
    fn open_frame_if_needed(&mut self) {
        if self.framing && self.frame_start == NO_FRAME {
            self.frame_start = self.buf.len();
            self.buf.extend_from_slice(&[0xFE; FRAME_HEADER_SIZE]);
        }
    }

    #[inline]
    pub fn write(&mut self, data: &[u8]) {
        self.open_frame_if_needed();
        self.buf.extend_from_slice(data);
    }

    /// Two pieces back to back (an opcode header and its small payload).
    #[inline]
    pub fn write2(&mut self, a: &[u8], b: &[u8]) {
        self.open_frame_if_needed();
        self.buf.reserve(a.len() + b.len());
        self.buf.extend_from_slice(a);
        self.buf.extend_from_slice(b);
    }

    #[inline]
    pub fn write_byte(&mut self, op: u8) {
        self.open_frame_if_needed();
        self.buf.push(op);
    }

    /// Closes the open frame: writes its header, or drops the header if the frame is tiny.
    pub fn commit_frame(&mut self) {
        if !self.framing || self.frame_start == NO_FRAME {
            return;
        }
        let start = self.frame_start;
        let frame_len = self.buf.len() - start - FRAME_HEADER_SIZE;
        if frame_len >= FRAME_SIZE_MIN {
            self.buf[start] = FRAME;
            self.buf[start + 1..start + FRAME_HEADER_SIZE]
                .copy_from_slice(&(frame_len as u64).to_le_bytes());
        } else {
            self.buf.drain(start..start + FRAME_HEADER_SIZE);
        }
        self.frame_start = NO_FRAME;
    }

    /// Called before each object is saved: ends a frame that has reached the target size.
    #[inline]
    pub fn opcode_boundary(&mut self) -> PyResult<()> {
        if !self.framing || self.frame_start == NO_FRAME {
            return Ok(());
        }
        if self.buf.len() - self.frame_start - FRAME_HEADER_SIZE >= FRAME_SIZE_TARGET {
            self.commit_frame();
            if self.file_write.is_some() {
                self.flush_to_file()?;
            }
        }
        Ok(())
    }

    /// Writes the buffered output to the file (committing the open frame first).
    pub fn flush_to_file(&mut self) -> PyResult<()> {
        self.commit_frame();
        if let Some(write) = &self.file_write {
            let chunk = ffi::new_bytes(&self.buf)?;
            self.buf.clear();
            write.call1(&chunk)?;
        }
        Ok(())
    }

    /// An opcode header followed by a payload. Payloads of 64 KiB or more are kept out of frames
    /// (and, in file mode, written straight to the file) so that loaders can read them in place.
    pub fn write_with_payload(&mut self, header: &[u8], payload: Payload) -> PyResult<()> {
        let data_len = payload.data().len();
        if data_len < FRAME_SIZE_TARGET {
            self.write(header);
            self.write(payload.data());
            return Ok(());
        }
        self.commit_frame();
        let framing = self.framing;
        self.framing = false;
        self.buf.extend_from_slice(header);
        let result = if let Some(write) = self.file_write.clone() {
            self.flush_to_file().and_then(|_| {
                let obj = match &payload {
                    Payload::Held(h) if h.owner_is_bytes => h.owner().clone(),
                    Payload::Held(h) => ffi::new_bytes(h.as_slice())?,
                    Payload::Borrowed { obj, .. } => (*obj).clone(),
                };
                write.call1(&obj).map(|_| ())
            })
        } else {
            match payload {
                Payload::Held(h) => {
                    let before = std::mem::take(&mut self.buf);
                    self.segments.push(Segment::Owned(before));
                    self.segments.push(Segment::Held(h));
                }
                Payload::Borrowed { data, .. } => self.buf.extend_from_slice(data),
            }
            Ok(())
        };
        self.framing = framing;
        result
    }

    /// Drops everything written so far (after an error or before a new dump).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.segments.clear();
        self.frame_start = NO_FRAME;
        self.framing = false;
    }

    /// Ends memory mode: the whole pickle as one `bytes` object.
    pub fn finish_bytes(&mut self) -> PyResult<Obj> {
        self.commit_frame();
        if self.segments.is_empty() {
            return ffi::new_bytes(&self.buf);
        }
        let total: usize = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Owned(v) => v.len(),
                Segment::Held(h) => h.len(),
            })
            .sum::<usize>()
            + self.buf.len();
        let mut out = BytesUnderConstruction::new(total)?;
        let dst = out.as_mut_slice();
        let mut pos = 0;
        for s in &self.segments {
            let src = match s {
                Segment::Owned(v) => v.as_slice(),
                Segment::Held(h) => h.as_slice(),
            };
            dst[pos..pos + src.len()].copy_from_slice(src);
            pos += src.len();
        }
        dst[pos..].copy_from_slice(&self.buf);
        self.segments.clear();
        self.buf.clear();
        Ok(out.finish())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= SPARE_BUFFER_MAX && buf.capacity() > 0 {
            buf.clear();
            SPARE_BUFFER.with(|spare| spare.set(Some(buf)));
        }
    }
}
