//! Which text encoding a CSV input is in, and how it becomes UTF-8.
//!
//! - A UTF-16 LE or BE byte-order mark: the whole input goes through one
//!   streaming decoder (`encoding_rs_io`, a fixed 8 KiB buffer: memory stays
//!   bounded whatever the file), and the pipeline reads UTF-8.
//! - Anything else is read as UTF-8, with no layer in between (the fast
//!   path). A field that is not valid UTF-8 is decoded as Windows-1252, field
//!   by field, when it is written out ([`field_text`]).
//!
//! Why Windows-1252 per field rather than per file: a file is often put
//! together from several sources (a UTF-8 export with one id typed on an
//! old Windows PC); a per-file decision from a sniffed prefix would either
//! garble the real UTF-8 of such a file or miss a 1252 byte past the prefix
//! and pass invalid UTF-8 through. Per field, each field keeps the meaning
//! it has, and the check is one UTF-8 validation of each row's bytes (an
//! ASCII fast path in std; benches/throughput.sh measures it). Every byte
//! sequence is valid Windows-1252 as encoding_rs decodes it, so the output is
//! always valid UTF-8.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// What the first bytes of the input say about its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEncoding {
    /// UTF-8 (or ASCII); `bom`: it began with a UTF-8 byte-order mark.
    Utf8 { bom: bool },
    /// UTF-16 with a byte-order mark (Excel's "Unicode Text").
    Utf16(&'static Encoding),
}

impl InputEncoding {
    /// From the first bytes of the input (at least three unless it is shorter).
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0xef, 0xbb, 0xbf, ..] => InputEncoding::Utf8 { bom: true },
            [0xff, 0xfe, ..] => InputEncoding::Utf16(UTF_16LE),
            [0xfe, 0xff, ..] => InputEncoding::Utf16(UTF_16BE),
            _ => InputEncoding::Utf8 { bom: false },
        }
    }

    /// The one rule for the scored file's encoding, on every path that writes
    /// one (`scorer score`, S3): the output is always UTF-8, and starts with
    /// a UTF-8 byte-order mark when the program that wrote the input needs
    /// one to read it back. Excel decides a CSV's encoding by its mark alone:
    /// with a mark it reads UTF-8 in every locale; without one it reads the
    /// system's ANSI code page (Windows-1252 in western Europe), so `Müller`
    /// written as UTF-8 shows as `MÃ¼ller`. Writing the input's own encoding
    /// instead would lose characters Windows-1252 has no place for (a UTF-8
    /// id in a mixed file, a UTF-16 input's), and UTF-16 out would break
    /// the tools that read UTF-8 only. So a mark when:
    /// - the input had one (UTF-8 with BOM, UTF-16: Excel's "CSV UTF-8" and
    ///   "Unicode Text");
    /// - its first bytes (`head`) are not UTF-8: a Windows-1252 export;
    /// - they are plain ASCII (nothing tells) and the file is `;`-separated
    ///   with decimal commas (`decimal_comma`): a European spreadsheet's export.
    ///
    /// A UTF-8 file without a mark (non-ASCII UTF-8 in its head, or a plain
    /// ASCII `,`/tab file) gets none: it was not written by Excel, and its
    /// output stays byte for byte what its readers read today.
    pub fn output_bom(self, head: &[u8], decimal_comma: bool) -> bool {
        match self {
            InputEncoding::Utf8 { bom: true } | InputEncoding::Utf16(_) => true,
            InputEncoding::Utf8 { bom: false } => match std::str::from_utf8(head) {
                Ok(text) if text.is_ascii() => decimal_comma,
                Ok(_) => false,
                // A character cut by the end of the head is still UTF-8.
                Err(e) => e.error_len().is_some(),
            },
        }
    }

    /// The start of the input as UTF-8 text, for sniffing the delimiter
    /// (a character cut at the end of `head` is replaced, not an error).
    pub fn decode_head(self, head: &[u8]) -> Cow<'_, [u8]> {
        match self {
            InputEncoding::Utf8 { .. } => Cow::Borrowed(head),
            InputEncoding::Utf16(encoding) => {
                let (text, _, _) = encoding.decode(head);
                Cow::Owned(text.into_owned().into_bytes())
            }
        }
    }
}

/// `input` as a UTF-8 stream: itself when it is UTF-8, a streaming decoder
/// (which drops the mark) when it is UTF-16.
pub fn utf8_reader<'a, R: Read + Send + 'a>(input: R, encoding: InputEncoding) -> Box<dyn Read + Send + 'a> {
    match encoding {
        InputEncoding::Utf8 { .. } => Box::new(input),
        InputEncoding::Utf16(encoding) => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_override(true)
                .strip_bom(true)
                .build(input),
        ),
    }
}

/// A field's text: itself when it is UTF-8, else decoded as Windows-1252.
#[inline]
pub fn field_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// Counts the bytes read through it (the input's own bytes, before decoding).
pub struct Counted<R> {
    pub inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_decides_the_encoding_and_its_absence_means_utf8() {
        assert_eq!(InputEncoding::sniff(b"\xef\xbb\xbfa,b"), InputEncoding::Utf8 { bom: true });
        assert_eq!(InputEncoding::sniff(b"\xff\xfea\0"), InputEncoding::Utf16(UTF_16LE));
        assert_eq!(InputEncoding::sniff(b"\xfe\xff\0a"), InputEncoding::Utf16(UTF_16BE));
        assert_eq!(InputEncoding::sniff(b"a,b"), InputEncoding::Utf8 { bom: false });
        assert_eq!(InputEncoding::sniff(b"\xef\xbb"), InputEncoding::Utf8 { bom: false });
        assert_eq!(InputEncoding::sniff(b""), InputEncoding::Utf8 { bom: false });
    }

    #[test]
    fn the_output_gets_a_mark_when_the_input_had_one_was_not_utf8_or_is_an_ascii_semicolon_export() {
        let bom = |head: &[u8], decimal_comma| InputEncoding::sniff(head).output_bom(head, decimal_comma);
        assert!(bom(b"\xef\xbb\xbfid,a\n", false));
        assert!(bom(b"\xff\xfei\0d\0", false));
        assert!(bom(b"\xfe\xff\0i\0d", false));
        assert!(bom(b"id;a\r\nM\xfcller;0,1\r\n", true), "Windows-1252");
        assert!(bom(b"id,a\nM\xfcller,0.1\n", false), "Windows-1252, any delimiter");
        assert!(bom(b"id;a\r\nS1;0,1\r\n", true), "ASCII ; export");
        assert!(!bom(b"id,a\nS1,0.1\n", false), "a plain ASCII comma file stays as it is");
        assert!(!bom("id;a\nMüller;0,1\n".as_bytes(), true), "UTF-8 without a mark stays without");
        assert!(!bom(&"id;a\nMüller".as_bytes()[..12], true), "a character cut by the head's end");
    }

    #[test]
    fn a_field_that_is_not_utf8_is_read_as_windows_1252() {
        assert_eq!(field_text(b"Biopsia-Mu\xf1oz"), "Biopsia-Muñoz");
        assert_eq!(field_text("Biopsia-Muñoz".as_bytes()), "Biopsia-Muñoz");
        assert!(matches!(field_text(b"plain"), Cow::Borrowed("plain")));
        // Every byte decodes to something: the output is always UTF-8.
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(field_text(&all).chars().count(), 256);
    }

    #[test]
    fn utf16_streams_decode_to_utf8_without_their_mark() {
        for (encoding, mark) in [(UTF_16LE, &b"\xff\xfe"[..]), (UTF_16BE, b"\xfe\xff")] {
            let mut input = mark.to_vec();
            for unit in "id\tMuñoz µm²\n".encode_utf16() {
                let bytes = if encoding == UTF_16LE { unit.to_le_bytes() } else { unit.to_be_bytes() };
                input.extend(bytes);
            }
            let sniffed = InputEncoding::sniff(&input);
            assert_eq!(sniffed, InputEncoding::Utf16(encoding));
            let mut out = String::new();
            utf8_reader(&input[..], sniffed).read_to_string(&mut out).unwrap();
            assert_eq!(out, "id\tMuñoz µm²\n");
        }
    }
}
