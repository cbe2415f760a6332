//! Protocol 0's text for str: `raw_unicode_escape` plus escapes for `\`, NUL, `\n`, `\r`, `\x1a`
//! (what the C pickler writes for UNICODE).

use super::*;

fn raw_unicode_escaped(text: &str) -> Vec<u8> {
    let mut out = Writer::new(None);
    write_raw_unicode_escape(&mut out, text.as_bytes()).unwrap();
    out.written().to_vec()
}

fn latin1_escaped(data: &[u8]) -> Vec<u8> {
    let mut out = Writer::new(None);
    write_latin1_escaped(&mut out, data).unwrap();
    out.written().to_vec()
}

#[test]
fn ascii_is_copied_and_the_five_line_breakers_are_escaped() {
    assert_eq!(raw_unicode_escaped(""), b"");
    assert_eq!(raw_unicode_escaped("plain text"), b"plain text");
    assert_eq!(
        raw_unicode_escaped("a\\b\0c\nd\re\x1af\t"),
        &b"a\\u005cb\\u0000c\\u000ad\\u000de\\u001af\t"[..]
    );
}

#[test]
fn latin1_is_one_byte_and_the_rest_is_escaped() {
    assert_eq!(raw_unicode_escaped("caf\u{e9}"), b"caf\xe9");
    assert_eq!(raw_unicode_escaped("\u{ff}\u{100}"), b"\xff\\u0100");
    assert_eq!(raw_unicode_escaped("\u{20ac}1"), b"\\u20ac1");
    assert_eq!(raw_unicode_escaped("\u{1f600}"), b"\\U0001f600");
    assert_eq!(raw_unicode_escaped("\u{10ffff}"), b"\\U0010ffff");
}

#[test]
fn a_lone_surrogate_in_its_three_byte_form_is_escaped() {
    // What a str with a lone surrogate encodes to with "surrogatepass".
    let mut out = Writer::new(None);
    write_raw_unicode_escape(&mut out, b"x\xed\xa0\x80y").unwrap();
    assert_eq!(out.written(), b"x\\ud800y");
}

#[test]
fn long_text_crosses_the_local_buffer_unchanged() {
    // Runs longer than the direct-copy threshold, escapes around the 4 KiB local buffer's end.
    let mut text = String::new();
    let mut expected = Vec::new();
    for i in 0..3000 {
        let piece = match i % 4 {
            0 => "a".repeat(i % 97),
            1 => "\u{e9}\n".to_string(),
            2 => "\u{4e2d}".to_string(),
            _ => "\\".to_string(),
        };
        text.push_str(&piece);
        expected.extend_from_slice(match i % 4 {
            0 => piece.as_bytes(),
            1 => b"\xe9\\u000a",
            2 => b"\\u4e2d",
            _ => b"\\u005c",
        });
    }
    assert_eq!(raw_unicode_escaped(&text), expected);
}

#[test]
fn latin1_bytes_are_kept_but_the_five() {
    assert_eq!(latin1_escaped(b""), b"");
    assert_eq!(latin1_escaped(b"\xe9\xff abc"), b"\xe9\xff abc");
    assert_eq!(
        latin1_escaped(b"\\\0\n\r\x1a\x1b"),
        &b"\\u005c\\u0000\\u000a\\u000d\\u001a\x1b"[..]
    );
    // The same text through the UTF-8 path gives the same bytes.
    let text: String = (0u8..=255).map(char::from).collect();
    let bytes: Vec<u8> = (0u8..=255).collect();
    assert_eq!(latin1_escaped(&bytes), raw_unicode_escaped(&text));
}
