//! Ints beyond 64 bits in the pickle's LONG1/LONG4 form (little-endian two's complement), to and
//! from CPython's 30-bit digits (read and written in place where `ffi::int_layout` may) or
//! hexadecimal text (the API path: `hex()` and `int(text, 16)` are linear-time in CPython and in the
//! stable ABI, where `int.to_bytes`/`int.from_bytes` are calls with a keyword dict per value).

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

/// Two's-complement negation in place (little-endian): `!x + 1`, so the low zero bytes stay zero,
/// the lowest non-zero byte is negated and every byte above it inverted (a loop the compiler
/// vectorises, where a carry chain goes byte by byte).
fn negate(bytes: &mut [u8]) {
    if let Some(low) = bytes.iter().position(|&b| b != 0) {
        bytes[low] = bytes[low].wrapping_neg();
        for b in &mut bytes[low + 1..] {
            *b = !*b;
        }
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
    Some(signed_pickle_form(bytes, negative))
}

/// From the magnitude in `bit_length() // 8 + 1` bytes to the pickle's two's complement.
fn signed_pickle_form(mut bytes: Vec<u8>, negative: bool) -> Vec<u8> {
    if negative {
        negate(&mut bytes);
        let n = bytes.len();
        if n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
            bytes.pop();
        }
    }
    bytes
}

/// Bits in one digit of CPython's int representation (`sys.int_info.bits_per_digit`).
pub const DIGIT_BITS: u32 = 30;
const DIGIT_MASK: u32 = (1 << DIGIT_BITS) - 1;

/// The LONG1/LONG4 payload of the int with these magnitude digits (least significant first, the
/// last one non-zero) and sign. None when memory runs out.
pub fn pickle_bytes_from_digits(digits: &[u32], negative: bool) -> Option<Vec<u8>> {
    let nbits = match digits.last() {
        Some(&top) => {
            (digits.len() - 1) * DIGIT_BITS as usize + (32 - top.leading_zeros()) as usize
        }
        None => 0,
    };
    let nbytes = (nbits >> 3) + 1;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(nbytes + 8).ok()?;
    bytes.resize(nbytes + 8, 0);
    // Whole bytes out of a 64-bit accumulator, stored by index into a buffer sized up front (the
    // digits hold at most 29 bits more than `nbits`, so at most `nbytes + 4` bytes are stored).
    let mut at = 0;
    let mut acc: u64 = 0;
    let mut held = 0u32;
    for &d in digits {
        acc |= u64::from(d & DIGIT_MASK) << held;
        held += DIGIT_BITS;
        while held >= 8 {
            bytes[at] = acc as u8;
            at += 1;
            acc >>= 8;
            held -= 8;
        }
    }
    bytes[at] = acc as u8;
    bytes.truncate(nbytes);
    Some(signed_pickle_form(bytes, negative))
}

/// Calls `f` with the magnitude (little-endian, no high zero bytes) and sign of little-endian
/// two's-complement `data`: a positive value's magnitude is `data` itself; a negative one is
/// negated in a stack buffer when it fits. None when memory runs out.
#[inline]
pub fn with_magnitude<R>(data: &[u8], f: impl FnOnce(&[u8], bool) -> R) -> Option<R> {
    fn trimmed(bytes: &[u8]) -> &[u8] {
        let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &bytes[..used]
    }
    let negative = data.last().is_some_and(|&b| b & 0x80 != 0);
    if !negative {
        return Some(f(trimmed(data), false));
    }
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let magnitude: &mut [u8] = if data.len() <= stack.len() {
        &mut stack[..data.len()]
    } else {
        heap.try_reserve_exact(data.len()).ok()?;
        heap.resize(data.len(), 0);
        &mut heap
    };
    magnitude.copy_from_slice(data);
    negate(magnitude);
    Some(f(trimmed(magnitude), true))
}

/// How many digits hold a magnitude of `len` bytes whose top byte is `top` (non-zero).
pub fn digit_count(len: usize, top: u8) -> usize {
    if len == 0 {
        return 0;
    }
    let nbits = (len - 1) * 8 + (8 - top.leading_zeros() as usize);
    nbits.div_ceil(DIGIT_BITS as usize)
}

/// Fills `digits` (exactly [`digit_count`] of them) from the little-endian `magnitude`, reading
/// it 32 bits at a time.
pub fn fill_digits(magnitude: &[u8], digits: &mut [u32]) {
    let mut slots = digits.iter_mut();
    let mut acc: u64 = 0;
    let mut held = 0u32;
    let mut emit = |acc: &mut u64, held: &mut u32| {
        while *held >= DIGIT_BITS {
            if let Some(slot) = slots.next() {
                *slot = *acc as u32 & DIGIT_MASK;
            }
            *acc >>= DIGIT_BITS;
            *held -= DIGIT_BITS;
        }
    };
    let mut words = magnitude.chunks_exact(4);
    for word in &mut words {
        let word = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        acc |= u64::from(word) << held;
        held += 32;
        emit(&mut acc, &mut held);
    }
    for &b in words.remainder() {
        acc |= u64::from(b) << held;
        held += 8;
        emit(&mut acc, &mut held);
    }
    if held > 0 {
        held = DIGIT_BITS;
        emit(&mut acc, &mut held);
    }
}

/// The value of little-endian two's-complement `data` of 1 to 8 bytes. Assembled in registers: a
/// short copy into a buffer read back whole stalls on store forwarding.
pub fn small_signed(data: &[u8]) -> i64 {
    let mut bits = 0u64;
    for (i, &b) in data.iter().enumerate().take(8) {
        bits |= u64::from(b) << (8 * i);
    }
    let unused = 64 - 8 * data.len().clamp(1, 8) as u32;
    ((bits << unused) as i64) >> unused
}

/// The magnitude and sign of little-endian two's-complement `data` of 9 to 16 bytes, from two
/// whole-word reads (the high one overlapping the low one, shifted back).
pub fn small_magnitude(data: &[u8]) -> Option<(u128, bool)> {
    let n = data.len();
    if !(9..=16).contains(&n) {
        return None;
    }
    let word = |at: usize| {
        let b = &data[at..at + 8];
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    };
    let low = word(0);
    let high = (word(n - 8) as i64) >> (8 * (16 - n));
    let value = (i128::from(high) << 64) | i128::from(low);
    Some((value.unsigned_abs(), value < 0))
}

/// The digits of a magnitude below 2**128 and how many there are.
pub fn small_digits(magnitude: u128) -> ([u32; 5], usize) {
    let nbits = 128 - magnitude.leading_zeros() as usize;
    let mut digits = [0u32; 5];
    for (i, digit) in digits.iter_mut().enumerate() {
        *digit = (magnitude >> (DIGIT_BITS as usize * i)) as u32 & DIGIT_MASK;
    }
    (digits, nbits.div_ceil(DIGIT_BITS as usize))
}

/// NUL-terminated text for `int(text, 16)` of the little-endian two's-complement `data`.
pub fn hex_from_signed_le(data: &[u8]) -> Option<Vec<u8>> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    with_magnitude(data, |magnitude, negative| {
        let mut text = Vec::new();
        text.try_reserve_exact(magnitude.len() * 2 + 3).ok()?;
        if negative {
            text.push(b'-');
        }
        for &b in magnitude.iter().rev() {
            text.push(DIGITS[(b >> 4) as usize]);
            text.push(DIGITS[(b & 15) as usize]);
        }
        if magnitude.is_empty() {
            text.push(b'0');
        }
        text.push(0);
        Some(text)
    })
    .flatten()
}

#[cfg(test)]
#[path = "bigint_tests.rs"]
mod tests;
