//! Unit tests of the int payload helpers (pure: no interpreter needed).

use super::{pickle_bytes_from_digits, pickle_bytes_from_hex};

/// The LONG payload of `v` as the C pickler writes it: little-endian two's complement in
/// `bit_length() // 8 + 1` bytes, one fewer when the top byte of a negative value is only sign.
fn expected(v: i128) -> Vec<u8> {
    let bits = 128
        - if v < 0 {
            (!v).leading_zeros()
        } else {
            v.leading_zeros()
        };
    let mut n = (bits as usize >> 3) + 1;
    let bytes = v.to_le_bytes();
    if v < 0 && n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
        n -= 1;
    }
    bytes[..n.min(16)].to_vec()
}

fn digits_of(magnitude: u128) -> Vec<u32> {
    let mut digits = Vec::new();
    let mut m = magnitude;
    while m != 0 {
        digits.push((m & ((1 << 30) - 1)) as u32);
        m >>= 30;
    }
    digits
}

#[test]
fn digits_and_hex_give_the_c_picklers_bytes() {
    let mut values = vec![
        0i128,
        1,
        -1,
        127,
        128,
        -128,
        -129,
        255,
        256,
        -256,
        -257,
        1 << 40,
    ];
    for shift in [7, 8, 15, 16, 31, 32, 63, 64, 100, 125] {
        for delta in [-1i128, 0, 1] {
            let v = (1i128 << shift) + delta;
            values.extend([v, -v]);
        }
    }
    for v in values {
        let magnitude = v.unsigned_abs();
        let from_digits = pickle_bytes_from_digits(&digits_of(magnitude), v < 0).unwrap();
        let hex = format!("{}0x{:x}", if v < 0 { "-" } else { "" }, magnitude);
        let from_hex = pickle_bytes_from_hex(hex.as_bytes()).unwrap();
        let want = if v == 0 { vec![0] } else { expected(v) };
        assert_eq!(from_digits, want, "{}", v);
        assert_eq!(from_hex, want, "{}", v);
    }
}
