//! S3 notification parsing and key decoding on arbitrary text; a key encoded
//! as S3 encodes it in notifications decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scorer::adapters::s3_event::{decode_key, parse_notification, parse_records};

/// S3 notifications carry keys form-encoded, like Java's URLEncoder: a space
/// is `+`, letters, digits and `.-*_` stay, every other byte is `%XX`. Real
/// S3 leaves `/` as it is; moto encodes it (`%2F`): both are tried.
/// Written here independently of the decoder under test.
fn encode_as_s3(key: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(key.len() * 3);
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(char::from(b)),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for records in [parse_notification(&text), parse_records(&text)].into_iter().flatten() {
        for record in records.into_iter().flatten() {
            // A decoded key is plain text: decoding it again must not panic either.
            let _ = decode_key(&record.key);
        }
    }
    let key = decode_key(&text);
    if !text.contains(['%', '+']) {
        assert_eq!(key, text, "a key without '%' or '+' must decode to itself");
    }
    for keep_slash in [true, false] {
        let encoded = encode_as_s3(&text, keep_slash);
        assert_eq!(decode_key(&encoded), text, "key {text:?} encoded as {encoded:?} does not round-trip");
    }
});
