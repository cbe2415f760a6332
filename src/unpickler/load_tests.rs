//! Protocol 0 and binary number parsing of the loader.

use super::*;

#[test]
fn strtol_base0_reads_like_libc() {
    // Decimal, with sign and leading white space; the newline ends it.
    assert_eq!(strtol_base0(b"123\n"), (Some(123), 3));
    assert_eq!(strtol_base0(b"  -42\n"), (Some(-42), 5));
    assert_eq!(strtol_base0(b"+7"), (Some(7), 2));
    // Base 0: 0x is hexadecimal, a leading 0 octal.
    assert_eq!(strtol_base0(b"0x1F\n"), (Some(31), 4));
    assert_eq!(strtol_base0(b"0X1f"), (Some(31), 4));
    assert_eq!(strtol_base0(b"017\n"), (Some(15), 3));
    assert_eq!(strtol_base0(b"0\n"), (Some(0), 1));
    // "0x" without a hex digit is the 0, then an unparsed "x".
    assert_eq!(strtol_base0(b"0xg"), (Some(0), 1));
    // An octal number stops at the first 8 or 9.
    assert_eq!(strtol_base0(b"019"), (Some(1), 2));
    // No digits: nothing consumed.
    assert_eq!(strtol_base0(b"abc"), (Some(0), 0));
    assert_eq!(strtol_base0(b"-"), (Some(0), 0));
    assert_eq!(strtol_base0(b""), (Some(0), 0));
    // A NUL stops it like any other non-digit.
    assert_eq!(strtol_base0(b"12\x0034"), (Some(12), 2));
}

#[test]
fn strtol_base0_reports_overflow_and_keeps_the_extremes() {
    assert_eq!(strtol_base0(b"9223372036854775807\n"), (Some(i64::MAX), 19));
    assert_eq!(
        strtol_base0(b"-9223372036854775808\n"),
        (Some(i64::MIN), 20)
    );
    assert_eq!(strtol_base0(b"9223372036854775808\n"), (None, 19));
    assert_eq!(strtol_base0(b"-9223372036854775809"), (None, 20));
    let long = b"123456789012345678901234567890123456789012345678901234567890L\n";
    assert_eq!(strtol_base0(long), (None, 60));
    assert_eq!(strtol_base0(b"0x8000000000000000"), (None, 18));
    assert_eq!(strtol_base0(b"-0x8000000000000000"), (Some(i64::MIN), 19));
}

#[test]
fn binsize_is_little_endian_and_bounded() {
    assert_eq!(binsize(&[0x7f]), Some(0x7f));
    assert_eq!(binsize(&[1, 2, 3, 4]), Some(0x0403_0201));
    assert_eq!(binsize(&[0xff; 4]), Some(0xffff_ffff));
    assert_eq!(
        binsize(&[1, 0, 0, 0, 0, 0, 0, 0x7f]),
        Some(0x7f00_0000_0000_0001)
    );
    assert_eq!(binsize(&[0, 0, 0, 0, 0, 0, 0, 0x80]), None);
    assert_eq!(binsize(&[0xff; 8]), None);
    assert_eq!(binsize(&[1, 2]), Some(0x0201));
}

#[test]
fn binint_is_unsigned_below_four_bytes_and_signed_at_four() {
    assert_eq!(binint(&[0xff]), 255);
    assert_eq!(binint(&[0xff, 0xff]), 65535);
    assert_eq!(binint(&[0xff, 0xff, 0xff, 0xff]), -1);
    assert_eq!(binint(&[0, 0, 0, 0x80]), i32::MIN as i64);
    assert_eq!(binint(&[1, 0, 0, 0]), 1);
}
