//! Ints beyond 64 bits in the pickle's LONG1/LONG4 form (little-endian two's complement), converted
//! through hexadecimal text: `hex()` and `int(text, 16)` are linear-time in CPython and part of the
//! stable ABI (`PyNumber_ToBase`, `PyLong_FromString`), where `int.to_bytes`/`int.from_bytes` are
//! method calls with a keyword dict per value.

/// The value of each ASCII hex digit; 0x10 marks every other byte.
const NIBBLE: [u8; 256] = {
    let mut table = [0x10u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

fn nibble(c: u8) -> Option<u8> {
    Some(NIBBLE[c as usize]).filter(|&v| v < 0x10)
}

/// Two's-complement negation in place (little-endian).
fn negate(bytes: &mut [u8]) {
    let mut carry = true;
    for b in bytes.iter_mut() {
        let (v, c) = (!*b).overflowing_add(carry as u8);
        *b = v;
        carry = c;
    }
}

/// The LONG1/LONG4 payload of the int whose `hex()` is `hex` ("0x1f", "-0x1f"), as the C pickler
/// writes it: `bit_length() // 8 + 1` bytes, one fewer for a negative number whose top byte is
/// only sign extension. None when `hex` is not such text.
pub fn pickle_bytes_from_hex(hex: &[u8]) -> Option<Vec<u8>> {
    let (negative, digits) = match hex {
        [b'-', b'0', b'x', rest @ ..] => (true, rest),
        [b'0', b'x', rest @ ..] => (false, rest),
        _ => return None,
    };
    let digits = match digits.iter().position(|&c| c != b'0') {
        Some(first) => &digits[first..],
        None => &[][..],
    };
    // bit_length of the magnitude: 4 bits per digit, less the leading zero bits of the first.
    let nbits = match digits.first() {
        Some(&c) => digits.len() * 4 - (nibble(c)?.leading_zeros() as usize - 4),
        None => 0,
    };
    let nbytes = (nbits >> 3) + 1;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(nbytes).ok()?;
    bytes.resize(nbytes, 0);
    // Two digits a byte from the low end; `invalid` collects the marker bit of non-digits.
    let mut invalid = 0u8;
    let mut pairs = digits.rchunks_exact(2);
    for (byte, pair) in bytes.iter_mut().zip(&mut pairs) {
        let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        invalid |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    if let [first] = pairs.remainder() {
        let v = NIBBLE[*first as usize];
        invalid |= v;
        bytes[digits.len() / 2] = v & 0x0f;
    }
    if invalid & 0x10 != 0 {
        return None;
    }
    if negative {
        negate(&mut bytes);
        let n = bytes.len();
        if n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
            bytes.pop();
        }
    }
    Some(bytes)
}

/// NUL-terminated text for `int(text, 16)` of the little-endian two's-complement `data`.
pub fn hex_from_signed_le(data: &[u8]) -> Option<Vec<u8>> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let negative = data.last().is_some_and(|&b| b & 0x80 != 0);
    let mut magnitude = Vec::new();
    magnitude.try_reserve_exact(data.len()).ok()?;
    magnitude.extend_from_slice(data);
    if negative {
        negate(&mut magnitude);
    }
    let mut text = Vec::new();
    text.try_reserve_exact(data.len() * 2 + 3).ok()?;
    if negative {
        text.push(b'-');
    }
    for &b in magnitude.iter().rev() {
        text.push(DIGITS[(b >> 4) as usize]);
        text.push(DIGITS[(b & 15) as usize]);
    }
    if text.len() == negative as usize {
        text.push(b'0');
    }
    text.push(0);
    Some(text)
}
