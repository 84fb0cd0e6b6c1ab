//! The CSV dialect, one value for the reader and the writer: delimiter and
//! quote, detected from the header or given, and the header's byte-order mark.

use std::io::Write;

/// The CSV dialect, in one place: the reader and the writer are both built
/// from it. RFC 4180 with `,`, `;` or tab between fields; any line end (LF,
/// CRLF, CR) ends a record. The output is written in the input's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect { delimiter: b',', quote: b'"' }
    }
}

/// Delimiters that can be detected from the header.
pub const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

impl Dialect {
    /// A dialect with `delimiter` and the usual quote.
    pub fn with_delimiter(delimiter: u8) -> Self {
        Dialect { delimiter, ..Dialect::default() }
    }

    /// The dialect of a file whose first bytes (UTF-8) are `head`: the
    /// delimiter of [`DELIMITERS`] found most often outside quotes in the
    /// first record (the header); `,` when none is found or on a tie.
    pub fn detect(head: &[u8]) -> Self {
        let mut counts = [0usize; DELIMITERS.len()];
        let mut quoted = false;
        for &b in head {
            match b {
                b'"' => quoted = !quoted,
                b'\n' | b'\r' if !quoted => break,
                _ if !quoted => {
                    if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                        counts[i] += 1;
                    }
                }
                _ => {}
            }
        }
        let best = (0..DELIMITERS.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
        Dialect::with_delimiter(if counts[best] == 0 { b',' } else { DELIMITERS[best] })
    }

    /// A delimiter as people write it (the edges take it from a flag or a setting): `,`,
    /// `;`, or a tab (`tab`, `\t` or the character itself).
    pub fn parse_delimiter(text: &str) -> Result<u8, String> {
        match text {
            "," => Ok(b','),
            ";" => Ok(b';'),
            "\t" | "\\t" => Ok(b'\t'),
            t if t.eq_ignore_ascii_case("tab") => Ok(b'\t'),
            _ => Err(format!("the delimiter must be ',', ';' or tab (written tab or \\t), not {text:?}")),
        }
    }

    /// A decimal comma is read in `;`-separated files only (where a comma
    /// cannot be a field separator): the European spreadsheet export.
    pub fn decimal_comma(&self) -> bool {
        self.delimiter == b';'
    }

    /// How the delimiter is named in messages.
    pub fn delimiter_name(&self) -> String {
        match self.delimiter {
            b'\t' => "tab".to_owned(),
            d => format!("'{}'", d.escape_ascii()),
        }
    }

    pub(super) fn parser(&self) -> csv_core::Reader {
        // csv-core's default terminator (CRLF) ends a record at \n, \r\n or a bare \r.
        csv_core::ReaderBuilder::new().delimiter(self.delimiter).quote(self.quote).build()
    }

    /// The writer for output in this dialect (quotes only where needed, `\n` line ends).
    pub fn writer<W: Write>(&self, out: W) -> csv::Writer<W> {
        csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .buffer_capacity(256 * 1024)
            .from_writer(out)
    }
}

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A header cell without the byte-order marks it begins with. csv-core strips
/// the file's own mark (the reader hands it over whole); one can still survive
/// in a first header cell (a file saved twice with a mark, Step Functions'
/// ItemReader, which keeps it in its first item key). The one rule for every
/// path that matches header names.
pub fn without_bom(field: &[u8]) -> &[u8] {
    let mut rest = field;
    while let Some(after) = rest.strip_prefix(BOM) {
        rest = after;
    }
    rest
}
