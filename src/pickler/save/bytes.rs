//! bytes, bytearray and PickleBuffer.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

use super::Saver;
use crate::errors;
use crate::ffi::bytes::HeldBytes;
use crate::ffi::{self, types, Obj};
use crate::interned;
use crate::lookup::tables;
use crate::opcodes::*;
use crate::pickler::writer::{Payload, FRAME_SIZE_TARGET};

impl<'m> Saver<'m> {
    #[inline]
    pub(super) fn bytes_header(&self, size: usize) -> PyResult<([u8; 9], usize)> {
        let mut h = [0u8; 9];
        if size <= 0xff {
            h[0] = SHORT_BINBYTES;
            h[1] = size as u8;
            Ok((h, 2))
        } else if size <= 0xffff_ffff {
            h[0] = BINBYTES;
            h[1..5].copy_from_slice(&(size as u32).to_le_bytes());
            Ok((h, 5))
        } else if self.proto >= 4 {
            h[0] = BINBYTES8;
            h[1..9].copy_from_slice(&(size as u64).to_le_bytes());
            Ok((h, 9))
        } else {
            Err(PyOverflowError::new_err(
                "serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher",
            ))
        }
    }

    pub(super) fn save_bytes(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto < 3 {
            // No bytes opcode before protocol 3: pickle as codecs.encode(latin-1 text), which
            // Python 2 also understands (or as bytes() when empty).
            let data = obj.bytes_data();
            let value = if data.is_empty() {
                ffi::tuple(&[&types::bytes().as_obj(), &ffi::new_tuple(vec![])?])?
            } else {
                let text = ffi::str::str_from_latin1(data)?;
                let args = ffi::tuple(&[&text, interned!("latin1")])?;
                if !self.bin {
                    self.latin1_text = Some((text, obj.clone()));
                }
                ffi::tuple(&[&tables().codecs_encode, &args])?
            };
            let result = self.save_reduce(&value, Some(obj));
            self.latin1_text = None;
            return result;
        }
        let data = obj.bytes_data();
        let (header, n) = self.bytes_header(data.len())?;
        if data.len() < FRAME_SIZE_TARGET {
            self.out.write2(&header[..n], data)?;
        } else {
            self.out
                .write_with_payload(&header[..n], Payload::Held(HeldBytes::of_bytes(obj)))?;
        }
        self.memo_put(obj)
    }

    pub(super) fn bytearray8_header(size: usize) -> [u8; 9] {
        let mut h = [0u8; 9];
        h[0] = BYTEARRAY8;
        h[1..].copy_from_slice(&(size as u64).to_le_bytes());
        h
    }

    pub(super) fn save_bytearray(&mut self, obj: &Obj) -> PyResult<()> {
        if self.proto < 5 {
            let bytearray = types::bytearray().as_obj();
            let value = if obj.bytearray_data().is_empty() {
                ffi::tuple(&[&bytearray, &ffi::new_tuple(vec![])?])?
            } else {
                let content = obj.to_bytes_object()?;
                ffi::tuple(&[&bytearray, &ffi::tuple(&[&content])?])?
            };
            return self.save_reduce(&value, Some(obj));
        }
        let data = obj.bytearray_data();
        let header = Self::bytearray8_header(data.len());
        self.out
            .write_with_payload(&header, Payload::Borrowed { data, obj })?;
        self.memo_put(obj)
    }

    pub(super) fn save_picklebuffer(&mut self, obj: &Obj) -> PyResult<()> {
        self.with_python_run(|this| {
            if this.proto < 5 {
                let msg = if ffi::version::running() >= (3, 13) {
                    "PickleBuffer can only be pickled with protocol >= 5"
                } else {
                    "PickleBuffer can only pickled with protocol >= 5"
                };
                return Err(errors::pickling(msg));
            }
            let view = crate::buffer::pickle_buffer_view(obj)?;
            if !view.is_contiguous(b'A') {
                return Err(errors::pickling(
                    "PickleBuffer can not be pickled when pointing to a non-contiguous buffer",
                ));
            }
            let mut in_band = true;
            if let Some(callback) = this.hooks.buffer_callback.clone() {
                in_band = callback.call_one(obj)?.is_true()?;
            }
            if in_band {
                let data = view.as_slice();
                if view.readonly() {
                    let (header, n) = this.bytes_header(data.len())?;
                    let payload = match view.immutable_exporter() {
                        Some(bytes) if data.len() >= FRAME_SIZE_TARGET => Payload::Shared {
                            held: HeldBytes::of_bytes_part(bytes, data),
                            obj,
                        },
                        _ => Payload::Borrowed { data, obj },
                    };
                    this.out.write_with_payload(&header[..n], payload)?;
                } else {
                    let header = Self::bytearray8_header(data.len());
                    this.out
                        .write_with_payload(&header, Payload::Borrowed { data, obj })?;
                }
                drop(view);
                this.memo_put(obj)
            } else {
                this.out.write_byte(NEXT_BUFFER)?;
                if view.readonly() {
                    this.out.write_byte(READONLY_BUFFER)?;
                }
                Ok(())
            }
        })
    }
}
