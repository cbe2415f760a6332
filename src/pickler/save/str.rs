//! str: binary protocols write its UTF-8, protocol 0 a `raw_unicode_escape` text line.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

use super::Saver;
use crate::ffi::Obj;
use crate::opcodes::*;
use crate::pickler::writer::{Payload, Writer, FRAME_SIZE_TARGET};

impl<'m> Saver<'m> {
    pub(super) fn save_str(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            match obj.str_utf8_fast() {
                Some(data) if data.len() < FRAME_SIZE_TARGET => {
                    let (header, n) = self.str_header(data.len())?;
                    self.out.write2(&header[..n], data)?;
                }
                _ => {
                    let payload = obj.str_utf8_payload()?;
                    let (header, n) = self.str_header(payload.len())?;
                    self.out
                        .write_with_payload(&header[..n], Payload::Held(payload))?;
                }
            }
        } else {
            self.out.write_byte(UNICODE)?;
            match self.latin1_text.take() {
                Some((text, bytes)) if text.is(obj) => {
                    write_latin1_escaped(&mut self.out, bytes.bytes_data())?
                }
                _ => {
                    let payload = obj.str_utf8_payload()?;
                    write_raw_unicode_escape(&mut self.out, payload.as_slice())?;
                }
            }
            self.out.write_byte(b'\n')?;
        }
        self.memo_put(obj)
    }

    #[inline]
    pub(super) fn str_header(&self, size: usize) -> PyResult<([u8; 9], usize)> {
        let mut h = [0u8; 9];
        if size <= 0xff && self.proto >= 4 {
            h[0] = SHORT_BINUNICODE;
            h[1] = size as u8;
            Ok((h, 2))
        } else if size <= 0xffff_ffff {
            h[0] = BINUNICODE;
            h[1..5].copy_from_slice(&(size as u32).to_le_bytes());
            Ok((h, 5))
        } else if self.proto >= 4 {
            h[0] = BINUNICODE8;
            h[1..9].copy_from_slice(&(size as u64).to_le_bytes());
            Ok((h, 9))
        } else {
            Err(PyOverflowError::new_err(
                "serializing a string larger than 4 GiB requires pickle protocol 4 or higher",
            ))
        }
    }
}

/// What [`write_raw_unicode_escape`] writes for the text of latin-1 `data`: every byte as it is
/// but the five escaped characters.
fn write_latin1_escaped(out: &mut Writer, data: &[u8]) -> PyResult<()> {
    let mut rest = data;
    while let Some(i) = rest
        .iter()
        .position(|&b| matches!(b, b'\\' | 0 | b'\n' | b'\r' | 0x1a))
    {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let b = rest[i];
        out.write(&rest[..i])?;
        out.write(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xf) as usize],
        ])?;
        rest = &rest[i + 1..];
    }
    out.write(rest)
}

/// `raw_unicode_escape` plus escapes for `\\`, NUL, `\n`, `\r` and `\x1a`, so the text survives a
/// line-based protocol-0 reader. Input is UTF-8 (possibly with surrogates encoded as 3-byte forms).
/// Long runs of ASCII that need no escape are copied as they are; everything else is gathered in a
/// small local buffer (no temporary as large as the text), one byte-class lookup per character.
fn write_raw_unicode_escape(out: &mut Writer, utf8: &[u8]) -> PyResult<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const CAP: usize = 4096;
    /// A run of ASCII needing no escape at least this long goes to the output directly.
    const DIRECT_RUN: usize = 64;
    const COPY: u8 = 0;
    const ESCAPE: u8 = 1;
    /// Classes 2, 3, 4: the lead byte of a sequence of that many bytes; 5: anything else, kept.
    const OTHER: u8 = 5;
    static CLASS: [u8; 256] = {
        let mut t = [OTHER; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = match b as u8 {
                b'\\' | 0 | b'\n' | b'\r' | 0x1a => ESCAPE,
                0..=0x7f => COPY,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xff => 4,
                _ => OTHER,
            };
            b += 1;
        }
        t
    };
    let mut buf = [0u8; CAP];
    let mut n = 0;
    let mut i = 0;
    let len = utf8.len();
    while i < len {
        if n > CAP - 10 {
            out.write(&buf[..n])?;
            n = 0;
        }
        let b0 = utf8[i];
        let class = CLASS[b0 as usize];
        let (ch, width) = match class {
            COPY => {
                let run = utf8[i..]
                    .iter()
                    .position(|&b| CLASS[b as usize] != COPY)
                    .unwrap_or(len - i);
                if run >= DIRECT_RUN || run > CAP - n {
                    out.write(&buf[..n])?;
                    n = 0;
                    out.write(&utf8[i..i + run])?;
                } else {
                    buf[n..n + run].copy_from_slice(&utf8[i..i + run]);
                    n += run;
                }
                i += run;
                continue;
            }
            2 if i + 1 < len => (((b0 as u32 & 0x1f) << 6) | (utf8[i + 1] as u32 & 0x3f), 2),
            3 if i + 2 < len => (
                ((b0 as u32 & 0x0f) << 12)
                    | ((utf8[i + 1] as u32 & 0x3f) << 6)
                    | (utf8[i + 2] as u32 & 0x3f),
                3,
            ),
            4 if i + 3 < len => (
                ((b0 as u32 & 0x07) << 18)
                    | ((utf8[i + 1] as u32 & 0x3f) << 12)
                    | ((utf8[i + 2] as u32 & 0x3f) << 6)
                    | (utf8[i + 3] as u32 & 0x3f),
                4,
            ),
            // ESCAPE, OTHER, and a truncated sequence: the byte itself.
            _ => (b0 as u32, 1),
        };
        i += width;
        let digits = if ch >= 0x10000 {
            buf[n..n + 2].copy_from_slice(b"\\U");
            8
        } else if ch >= 256 || class == ESCAPE {
            buf[n..n + 2].copy_from_slice(b"\\u");
            4
        } else {
            buf[n] = ch as u8;
            n += 1;
            continue;
        };
        n += 2;
        for shift in (0..digits).rev() {
            buf[n] = HEX[((ch >> (shift * 4)) & 0xf) as usize];
            n += 1;
        }
    }
    out.write(&buf[..n])
}

#[cfg(test)]
#[path = "str_tests.rs"]
mod tests;
