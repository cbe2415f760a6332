//! Frame sizing: where the writer puts protocol-4 frame boundaries (as the C pickler does).

use super::*;
use crate::opcodes::FRAME;

impl Writer {
    /// What a memory-mode writer without large payloads has written so far (for other tests).
    pub(crate) fn written(&self) -> &[u8] {
        &self.buf
    }
}

/// A memory-mode writer with framing on (a frame open).
fn framed() -> Writer {
    let mut w = Writer::new(None);
    w.set_framing(true).unwrap();
    w
}

/// The 9-byte FRAME header for a frame of `len` bytes.
fn header(len: usize) -> Vec<u8> {
    let mut h = vec![FRAME];
    h.extend_from_slice(&(len as u64).to_le_bytes());
    h
}

#[test]
fn a_frame_of_four_bytes_or_more_gets_its_header() {
    let mut w = framed();
    w.write(b"abcd").unwrap();
    w.commit_frame();
    assert_eq!(w.buf, [header(4), b"abcd".to_vec()].concat());
}

#[test]
fn a_frame_under_four_bytes_is_written_without_header() {
    for body in [&b""[..], b"a", b"abc"] {
        let mut w = framed();
        w.write(body).unwrap();
        w.commit_frame();
        assert_eq!(w.buf, body, "body {:?}", body);
    }
}

#[test]
fn committing_twice_or_without_framing_changes_nothing() {
    let mut w = framed();
    w.write_array(*b"12345").unwrap();
    w.commit_frame();
    let once = w.buf.clone();
    w.commit_frame();
    assert_eq!(w.buf, once);

    let mut plain = Writer::new(None);
    plain.write_byte(b'x').unwrap();
    plain.write2(b"yz", b"w").unwrap();
    plain.commit_frame();
    assert_eq!(plain.buf, b"xyzw");
}

#[test]
fn a_full_frame_ends_at_the_next_opcode_boundary() {
    let mut w = framed();
    let chunk = vec![b'x'; 1000];
    // Writes within a frame never end it: only an opcode boundary does, once the target is met.
    while !w.frame_is_full() {
        w.opcode_boundary().unwrap();
        w.write(&chunk).unwrap();
    }
    let first = w.buf.len() - FRAME_HEADER_SIZE;
    assert!(first >= FRAME_SIZE_TARGET && first < FRAME_SIZE_TARGET + chunk.len());
    w.opcode_boundary().unwrap();
    assert!(!w.frame_is_full());
    w.write(b"tail").unwrap();
    w.commit_frame();
    let mut expected = header(first);
    expected.extend(std::iter::repeat_n(b'x', first));
    expected.extend(header(4));
    expected.extend_from_slice(b"tail");
    assert_eq!(w.buf, expected);
}

#[test]
fn a_large_payload_stays_outside_frames() {
    crate::testing::with_python(|_| {
        let big = vec![7u8; FRAME_SIZE_TARGET];
        let owner = ffi::new_bytes(&big).unwrap();
        let mut w = framed();
        w.write(b"head").unwrap();
        w.write_with_payload(
            b"HDR",
            Payload::Borrowed {
                data: &big,
                obj: &owner,
            },
        )
        .unwrap();
        w.write(b"more").unwrap();
        let out = w.finish_bytes().unwrap();
        let mut expected = [header(4), b"head".to_vec(), b"HDR".to_vec(), big.clone()].concat();
        expected.extend([header(4), b"more".to_vec()].concat());
        assert_eq!(out.bytes_data(), &expected[..]);

        // Just under the target, a payload is part of the frame.
        let small = &big[..FRAME_SIZE_TARGET - 1];
        let mut w = framed();
        w.write_with_payload(
            b"H",
            Payload::Borrowed {
                data: small,
                obj: &owner,
            },
        )
        .unwrap();
        let out = w.finish_bytes().unwrap();
        let expected = [header(small.len() + 1), b"H".to_vec(), small.to_vec()].concat();
        assert_eq!(out.bytes_data(), &expected[..]);
    })
}
