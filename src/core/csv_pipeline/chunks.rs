//! The parallel pipeline's reading thread: the input's (already transcoded)
//! bytes cut into chunks at record boundaries, each a whole number of
//! records that a worker parses on its own.
//!
//! The reading thread does as little as it can: it reads about
//! [`CHUNK_BYTES`] and finds the last record boundary in them.
//!
//! - A chunk with no quote at all (one memchr pass): every `\n` or `\r`
//!   ends a record there (or a blank line), so the boundary is after the last
//!   one, never between a `\r` and the `\n` after it.
//! - A chunk with a quote: only csv-core knows where records end (a quote
//!   opens a quoted field only at a field's start; `5" tumour` is literal,
//!   so counting quotes is wrong). [`RecordReader`] itself, the one every
//!   path reads with, reads the chunk's records and the boundary is after
//!   the last one that ended inside it.
//!
//! A chunk starts where a record starts, as the single reader would see it,
//! so a worker's [`RecordReader::after_boundary`] reads exactly the records,
//! errors and line numbers (counted from the chunk's start) that one reader
//! over the whole file reads. When no record ends within [`MAX_RECORD_BYTES`]
//! (a record too long, a quote that never closes), the chunk holds that much
//! and the reading stops: the worker fails the file on it, as the single
//! reader does, with the same error and line. A read error or a panic of the
//! input ends the last chunk and is raised again by [`ChunkInput`] exactly
//! where the single reader would have met it.
//!
//! Memory: the chunk being read holds at most [`CHUNK_BYTES`] +
//! [`MAX_RECORD_BYTES`] + 2 + [`READ_STEP`] bytes; a chunk with a quote is
//! scanned with one more [`RecordReader`] (its 256 KiB buffer and 64 KiB of
//! scratch).

use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};

use crate::core::csv_reader::{Dialect, Fields, RecordReader, Rest, MAX_RECORD_BYTES};

/// Input bytes a chunk holds before its last boundary is looked for. 512 KiB
/// is some thousands of rows of measurements, milliseconds of a worker's
/// work: the per-chunk costs (a channel hand-over, a scorer, a reader's
/// buffer) are lost in that, and the memory per worker stays small.
pub(super) const CHUNK_BYTES: usize = if cfg!(test) { TEST_CHUNK_BYTES } else { 512 * 1024 };
/// The unit tests cut chunks this small, so their files of some kilobytes
/// cross many chunk boundaries (tests/memory and the integration tests score
/// with the real size).
const TEST_CHUNK_BYTES: usize = 3000;
/// More input read at a time while a chunk has no boundary yet.
pub(super) const READ_STEP: usize = 64 * 1024;

/// What comes after a chunk's bytes.
pub(super) enum Then {
    /// The next chunk (or, for the last chunk, the end of the input).
    Next,
    /// The input failed with this error here.
    Fails(io::Error),
    /// The input panicked here.
    Panics,
}

/// Whole records of the input, as a worker gets them.
pub(super) struct Chunk {
    pub(super) bytes: Vec<u8>,
    pub(super) then: Then,
    /// No chunk follows.
    pub(super) last: bool,
    /// The byte before the chunk was a `\r` (only the first chunk can start
    /// with the `\n` of a `\r\n` whose `\r` ended the header).
    pub(super) after_cr: bool,
    /// The input's own bytes read when the chunk was cut (for progress; the
    /// same as the transcoded bytes but for UTF-16 input).
    pub(super) raw_bytes_read: u64,
}

/// A chunk read as a stream: its bytes, then what ended them.
pub(super) struct ChunkInput<'a> {
    bytes: &'a [u8],
    then: Option<Then>,
}

impl<'a> ChunkInput<'a> {
    pub(super) fn new(bytes: &'a [u8], then: Then) -> Self {
        ChunkInput { bytes, then: Some(then) }
    }
}

impl Read for ChunkInput<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.bytes.is_empty() {
            let n = buf.len().min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            return Ok(n);
        }
        match self.then.take() {
            None | Some(Then::Next) => Ok(0),
            Some(Then::Fails(e)) => Err(e),
            // The input's own panic was caught on the reading thread (its hook
            // already ran); this one carries no message at all.
            Some(Then::Panics) => panic::resume_unwind(Box::new(())),
        }
    }
}

/// Where the next chunk starts: after the last record of `bytes` (which
/// start where a record starts) that ends inside them. `None`: no record
/// ends inside them (or only at their very end, with a `\r` whose `\n` may
/// follow).
pub(super) fn last_boundary(bytes: &[u8], dialect: Dialect) -> Option<usize> {
    let len = bytes.len();
    if len == 0 {
        return None;
    }
    if memchr::memchr(dialect.quote, bytes).is_none() {
        if bytes[len - 1] == b'\n' {
            return Some(len);
        }
        // A `\r` found here is followed by a byte that is not `\n`.
        return memchr::memrchr2(b'\r', b'\n', &bytes[..len - 1]).map(|i| i + 1);
    }
    let mut reader = RecordReader::after_boundary(bytes, dialect);
    let mut fields = Fields::default();
    let mut last = None;
    // Any error (a record too long, a quote open at the end) ends the search:
    // the records before it ended.
    while let Ok(Some(_)) = reader.read_record(&mut fields, 1) {
        fields.clear();
        let end = reader.bytes_read() as usize;
        // At the end of the bytes the reader ends a pending record as the end
        // of the input would: only a real line end ended it here.
        if end == len && bytes[len - 1] != b'\n' {
            break;
        }
        last = Some(end);
    }
    // Past the blank lines after it (the reader skips them before a record
    // anyway), so a chunk never starts with the `\n` of a `\r\n` split.
    last.map(|mut end| {
        while end < len && matches!(bytes[end], b'\n' | b'\r') && !(bytes[end] == b'\r' && end + 1 == len) {
            end += 1;
        }
        end
    })
}

/// Reads `rest` (the input after the header) into chunks and hands each to
/// `send` in order, until the input ends, fails, or `send` returns false
/// (the pipeline stopped). `raw_bytes_read` tells the input's own bytes read
/// so far; `spare` holds chunk buffers the workers gave back.
pub(super) fn read_chunks<R: Read>(
    rest: Rest<R>,
    dialect: Dialect,
    raw_bytes_read: impl Fn() -> u64,
    spare: impl Fn() -> Option<Vec<u8>>,
    mut send: impl FnMut(Chunk) -> bool,
) {
    let Rest { buffered: mut buf, mut input, mut eof, after_cr, .. } = rest;
    // What ended the input, once it did: the last chunk's.
    let mut ended = Then::Next;
    let mut first = true;
    loop {
        let mut valid = buf.len();
        // The bytes a boundary is looked for in: a chunk's worth (more when
        // no record ends in them), however much is at hand (the header's
        // reader may have read far ahead).
        let mut window = CHUNK_BYTES;
        let (cut, last) = loop {
            while valid < window && !eof && matches!(ended, Then::Next) {
                if buf.len() < window {
                    buf.resize(window, 0);
                }
                // Every read error ends the file, `Interrupted` included (see RecordReader::refill).
                match panic::catch_unwind(AssertUnwindSafe(|| input.read(&mut buf[valid..window]))) {
                    Ok(Ok(0)) => eof = true,
                    Ok(Ok(n)) => valid += n,
                    Ok(Err(e)) => ended = Then::Fails(e),
                    Err(_panic) => ended = Then::Panics,
                }
            }
            let ending = eof || !matches!(ended, Then::Next);
            if ending && valid <= window {
                break (valid, true);
            }
            let seen = window.min(valid);
            if let Some(cut) = last_boundary(&buf[..seen], dialect) {
                break (cut, false);
            }
            let blanks = buf[..seen].iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
            if seen >= blanks + MAX_RECORD_BYTES + 2 {
                // The record that starts here is longer than the cap: the
                // worker fails the file on it; nothing after it is read.
                ended = Then::Next;
                break (seen, true);
            }
            window = seen + READ_STEP;
        };
        let then = if last { std::mem::replace(&mut ended, Then::Next) } else { Then::Next };
        let mut next = if last { Vec::new() } else { spare().unwrap_or_default() };
        next.clear();
        next.extend_from_slice(&buf[cut..valid]);
        buf.truncate(cut);
        let chunk = Chunk { bytes: buf, then, last, after_cr: first && after_cr, raw_bytes_read: raw_bytes_read() };
        if !send(chunk) || last {
            return;
        }
        buf = next;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unquoted_chunk_ends_after_its_last_line_end_never_inside_a_crlf() {
        let d = Dialect::default();
        assert_eq!(last_boundary(b"a,b\nc,d\ne", d), Some(8));
        assert_eq!(last_boundary(b"a,b\nc,d\n", d), Some(8));
        assert_eq!(last_boundary(b"a,b\rc,d\re", d), Some(8));
        assert_eq!(last_boundary(b"a,b\r\nc,d\r", d), Some(5), "the last \\r may be half a \\r\\n");
        assert_eq!(last_boundary(b"a,b\r", d), None);
        assert_eq!(last_boundary(b"abc", d), None);
        assert_eq!(last_boundary(b"", d), None);
    }

    #[test]
    fn a_quoted_chunk_ends_where_csv_core_ends_a_record() {
        let d = Dialect::default();
        // The line break inside quotes ends no record.
        assert_eq!(last_boundary(b"a,\"b\nc\"\nd,\"e\nf", d), Some(8));
        // A quote inside an unquoted field is literal: its line end ends the record.
        assert_eq!(last_boundary(b"a,5\" tumour\nb,c", d), Some(12));
        // Blank lines after a record go with it; a final \r waits for its \n.
        assert_eq!(last_boundary(b"\"a\"\r\n\r\nb", d), Some(7));
        assert_eq!(last_boundary(b"\"a\"\r\n\r", d), Some(5));
        assert_eq!(last_boundary(b"\"a\"\r", d), None);
        assert_eq!(last_boundary(b"\"a\"\n", d), Some(4));
        assert_eq!(last_boundary(b"\"a\nb", d), None);
        // `;` files quote the same way.
        assert_eq!(last_boundary(b"x;\"1;2\n3\";4\ny;\"", Dialect::with_delimiter(b';')), Some(12));
    }
}
