//! S3 notification parsing and key decoding on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scorer::adapters::s3_event::{decode_key, parse_notification, parse_records};

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
});
