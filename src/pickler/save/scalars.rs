//! None, bool, int and float: the atoms, never memoized.

use std::io::Write as _;

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

use super::Saver;
use crate::ffi::{self, Obj};
use crate::opcodes::*;

impl<'m> Saver<'m> {
    pub(super) fn save_bool(&mut self, obj: &Obj) -> PyResult<()> {
        let value = obj.is(&ffi::bool_obj(true));
        if self.proto >= 2 {
            self.out
                .write_byte(if value { NEWTRUE } else { NEWFALSE })?;
        } else {
            self.out.write(if value { TRUE_LINE } else { FALSE_LINE })?;
        }
        Ok(())
    }

    #[inline(always)]
    pub(super) fn save_int(&mut self, obj: &Obj) -> PyResult<()> {
        let (value, overflow) = obj.int_as_long_overflow()?;
        if overflow == 0 && self.bin && value as i32 as i64 == value {
            let b = (value as i32).to_le_bytes();
            if b[2] != 0 || b[3] != 0 {
                self.out.write_array([BININT, b[0], b[1], b[2], b[3]])?;
            } else if b[1] != 0 {
                self.out.write_array([BININT2, b[0], b[1]])?;
            } else {
                self.out.write_array([BININT1, b[0]])?;
            }
            return Ok(());
        }
        self.save_int_other(obj, value, overflow)
    }

    #[inline(never)]
    pub(super) fn save_int_other(&mut self, obj: &Obj, value: i64, overflow: i32) -> PyResult<()> {
        // (Binary protocols write 32-bit values in `save_int`.)
        if overflow == 0 && !self.bin && value >= i32::MIN as i64 && value <= i32::MAX as i64 {
            self.write_text_line(b'I', value as i128)?;
            return Ok(());
        }

        if self.proto >= 2 {
            // Two's-complement little-endian bytes, one more than the magnitude needs, trimmed
            // back when the top byte is only sign extension of a negative number.
            let mut small = [0u8; 9];
            let raw;
            let (sign, mut bytes): (i32, &[u8]) = if overflow == 0 {
                let nbits = 64 - value.unsigned_abs().leading_zeros() as usize;
                let nbytes = (nbits >> 3) + 1;
                small[..8].copy_from_slice(&value.to_le_bytes());
                if value < 0 {
                    small[8] = 0xff;
                }
                (value.signum() as i32, &small[..nbytes])
            } else {
                raw = ffi::number::int_to_pickle_bytes(obj)?;
                if raw.len() > 0x7fff_ffff {
                    return Err(PyOverflowError::new_err("int too large to pickle"));
                }
                (0, &raw[..])
            };
            let n = bytes.len();
            if sign < 0 && n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
                bytes = &bytes[..n - 1];
            }
            let n = bytes.len();
            if n < 256 {
                self.out.write(&[LONG1, n as u8])?;
            } else {
                let l = (n as u32).to_le_bytes();
                self.out.write(&[LONG4, l[0], l[1], l[2], l[3]])?;
            }
            self.out.write(bytes)?;
        } else {
            self.out.write_byte(LONG)?;
            if overflow == 0 {
                let mut buf = [0u8; 24];
                let mut rest = &mut buf[..];
                let _ = write!(rest, "{}", value);
                let len = 24 - rest.len();
                self.out.write(&buf[..len])?;
            } else {
                let repr = obj.repr()?;
                self.out.write(repr.str_utf8()?)?;
            }
            self.out.write(b"L\n")?;
        }
        Ok(())
    }

    #[inline(always)]
    pub(super) fn save_float(&mut self, obj: &Obj) -> PyResult<()> {
        if self.bin {
            let b = obj.float_value().to_be_bytes();
            self.out
                .write_array([BINFLOAT, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])?;
            return Ok(());
        }
        self.save_float_text(obj)
    }

    #[inline(never)]
    pub(super) fn save_float_text(&mut self, obj: &Obj) -> PyResult<()> {
        let repr = obj.repr()?;
        let text = repr.str_utf8()?;
        self.out.write_byte(FLOAT)?;
        self.out.write(text)?;
        self.out.write_byte(b'\n')?;
        Ok(())
    }
}
