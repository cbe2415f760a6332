//! Number text parsing through CPython's own parsers, and LONG payloads through hex text.

use super::*;
use crate::testing::with_python;

#[test]
fn int_text_as_protocol_0_writes_it() {
    with_python(|_| {
        let int = |text: &[u8]| int_from_text(text, 0).unwrap().as_long().unwrap();
        assert_eq!(int(b"123\n"), 123);
        assert_eq!(int(b" -0x1f"), -31);
        assert_eq!(int(b"0o17"), 15);
        assert!(int_from_text(b"12a\n", 0).is_err());
        assert!(
            int_from_text(b"017", 0).is_err(),
            "int() has no C-style octal"
        );
        let big = int_from_text(b"123456789012345678901234567890", 10).unwrap();
        assert_eq!(
            big.repr_string().to_string(),
            "123456789012345678901234567890"
        );
    })
}

#[test]
fn float_prefix_stops_where_the_number_ends() {
    with_python(|_| {
        assert_eq!(parse_float_prefix(b"1.5e3\n\0").unwrap(), (1500.0, 5));
        assert_eq!(
            parse_float_prefix(b"-inf\n\0").unwrap(),
            (f64::NEG_INFINITY, 4)
        );
        assert_eq!(parse_float_prefix(b"2.5x\0").unwrap(), (2.5, 3));
        assert!(parse_float_prefix(b"abc\0").is_err());
    })
}

#[test]
fn long_payloads_round_trip_through_text() {
    with_python(|_| {
        for text in [
            &b"10000000000000000"[..],
            b"-10000000000000000",
            b"-8000000000000001",
        ] {
            let value = int_from_text(text, 16).unwrap();
            let payload = int_to_pickle_bytes_by_text(&value).unwrap();
            let back = int_from_signed_le(&payload).unwrap();
            assert_eq!(
                back.repr_string().to_string(),
                value.repr_string().to_string()
            );
        }
        let value = int_from_text(b"10000000000000000", 16).unwrap();
        assert_eq!(
            int_to_pickle_bytes_by_text(&value).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    })
}
