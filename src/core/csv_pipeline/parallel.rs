//! Scoring on N workers (issue 22): the reading thread cuts the input into
//! chunks of whole records ([`chunks`](super::chunks)), worker `k % N` parses,
//! scores and formats chunk `k` into output buffers of its own, and the
//! caller's thread writes those buffers in chunk order: the output, the
//! counts, the errors (their line and row numbers) and the statistics are
//! what one worker gives, byte for byte (the tests hold N = 1, 2, 3, 8 side
//! by side on hostile files).
//!
//! Round robin keeps the order without a reorder buffer: the writer takes
//! chunk `k`'s buffers from worker `k % N`'s queue only, so each worker runs
//! at most one queued chunk and [`PIECES_QUEUED`] buffers ahead of it.
//! Chunks are of equal size, so round robin balances the work.
//!
//! Each chunk is scored by a fresh [`Scorer`], its tallies merged in chunk
//! order, so the drift statistics' counts and first-seen orders are the
//! single reader's. Their sums of values (each feature's mean) are added in
//! another order, so a mean may differ from one worker's in its last bits.
//!
//! Memory, per worker: two chunks (the one scored, one queued) of at most
//! [`CHUNK_BYTES`] + [`MAX_RECORD_BYTES`](super::MAX_RECORD_BYTES) + 64 KiB each (512 KiB on
//! files of measurements, up to 1.6 MiB with a record near the cap), its RecordReader's 256 KiB buffer, one
//! [`Block`] (under 3 MiB, see `block`), its csv writer's 256 KiB buffer,
//! the output buffer being filled ([`PIECE_BYTES`] plus one row: up to
//! 2 MiB more for a quoted record near the cap) and [`PIECES_QUEUED`] + 1
//! handed on: at most about 18 MiB with records near the cap, about 5 MiB on
//! files of measurements. The reading thread's chunk and its scan of a
//! quoted chunk: under 3 MiB more. The whole: under 4 MiB + N × 18 MiB
//! (tests/memory checks hostile files with N = 2 and 8).

use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::block::Block;
use super::chunks::{read_chunks, Chunk, ChunkInput, CHUNK_BYTES, READ_STEP};
use super::counts::BatchCounts;
use super::error::BatchError;
use super::output::RowFormat;
use super::rows::{fill, Rules};
use crate::core::challenger::ChallengerStats;
use crate::core::csv_reader::{line_ends, Dialect, RecordReader, Rest};
use crate::core::drift::DriftStats;
use crate::core::model::Model;
use crate::core::scoring::{Scorer, Tallies, Wants};

/// A worker hands its output on once it holds this many bytes (and at the
/// end of each chunk).
pub(super) const PIECE_BYTES: usize = 512 * 1024;
/// Output buffers queued from each worker to the writer.
pub(super) const PIECES_QUEUED: usize = 2;

/// What a worker needs to score chunks: the same for every worker.
pub(super) struct Work<'a> {
    pub(super) model: &'a Model,
    pub(super) challenger: Option<&'a Model>,
    pub(super) wants: Wants,
    pub(super) rules: Rules<'a>,
    pub(super) dialect: Dialect,
    /// A new row format (each worker owns one).
    pub(super) format: &'a (dyn Fn() -> RowFormat + Sync),
}

/// What one chunk came to, after its output buffers.
struct ChunkDone {
    counts: BatchCounts,
    tallies: Option<Tallies>,
    /// Line ends in the chunk, and its size: where the next chunk starts.
    lines: u64,
    bytes: u64,
    raw_bytes_read: u64,
    last: bool,
    /// The error that ended the file in this chunk; its line and row numbers
    /// count from the chunk's start.
    error: Option<BatchError>,
}

enum Piece {
    Output(Vec<u8>),
    Done(Box<ChunkDone>),
}

/// The file after its header, as the writer saw it.
pub(super) struct Start {
    /// The line the first record after the header is on or after.
    pub(super) line: u64,
    /// Input bytes read for the header (UTF-8 input: `bytes_in` counts on from there).
    pub(super) header_bytes: u64,
    /// UTF-16 input: progress and `bytes_in` count the input's own bytes.
    pub(super) transcoded: bool,
}

/// What scoring the rows came to: counts (with `bytes_in`) and the merged tallies.
pub(super) struct Scored {
    pub(super) counts: BatchCounts,
    pub(super) tallies: Tallies,
}

/// Scores `rest` on `workers` workers and writes the rows to `output` in order.
#[allow(clippy::too_many_arguments)] // each is a separate fact about this one file
pub(super) fn score_parallel<R: Read + Send, W: Write>(
    rest: Rest<R>,
    work: &Work<'_>,
    workers: usize,
    start: Start,
    raw_bytes_read: &(dyn Fn() -> u64 + Sync),
    output: &mut W,
    progress: &mut impl FnMut(u64),
) -> Result<Scored, BatchError> {
    let workers = workers.max(1);
    let mut chunk_txs = Vec::with_capacity(workers);
    let mut piece_rxs = Vec::with_capacity(workers);
    let mut spare_piece_txs = Vec::with_capacity(workers);
    // Chunk buffers given back to the reading thread.
    let (spare_chunk_tx, spare_chunk_rx) = sync_channel::<Vec<u8>>(workers);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(1);
            let (piece_tx, piece_rx) = sync_channel::<Piece>(PIECES_QUEUED);
            let (spare_piece_tx, spare_piece_rx) = sync_channel::<Vec<u8>>(PIECES_QUEUED + 1);
            let spare_chunks = spare_chunk_tx.clone();
            scope.spawn(move || worker(work, &chunk_rx, &piece_tx, &spare_piece_rx, &spare_chunks));
            chunk_txs.push(chunk_tx);
            piece_rxs.push(piece_rx);
            spare_piece_txs.push(spare_piece_tx);
        }
        drop(spare_chunk_tx);
        let dialect = work.dialect;
        scope.spawn(move || {
            let mut k = 0;
            read_chunks(
                rest,
                dialect,
                raw_bytes_read,
                || spare_chunk_rx.try_recv().ok(),
                |chunk| {
                    let sent = chunk_txs[k % workers].send(chunk).is_ok();
                    k += 1;
                    sent
                },
            );
        });
        // The receivers are this closure's: a panic while writing drops them,
        // which stops the workers and the reader, so the scope can join them.
        let piece_rxs = piece_rxs;
        let spare_piece_txs = spare_piece_txs;
        write_in_order(&piece_rxs, &spare_piece_txs, start, raw_bytes_read, output, progress)
    })
}

/// The caller's thread: chunk `k`'s output from worker `k % N`, in order.
fn write_in_order<W: Write>(
    pieces: &[Receiver<Piece>],
    spares: &[SyncSender<Vec<u8>>],
    start: Start,
    raw_bytes_read: &(dyn Fn() -> u64 + Sync),
    output: &mut W,
    progress: &mut impl FnMut(u64),
) -> Result<Scored, BatchError> {
    let mut counts = BatchCounts::default();
    let mut tallies: Option<Tallies> = None;
    // Where the chunk being written starts: lines and rows before it.
    let (mut lines_before, mut rows_before) = (start.line - 1, 0);
    let mut bytes = start.header_bytes;
    for k in 0.. {
        let worker = k % pieces.len();
        let done = loop {
            // A worker that is gone before the last chunk was written died
            // outside its guard: never a file that looks complete.
            match pieces[worker].recv().map_err(|_| BatchError::Internal { row: None })? {
                Piece::Output(buffer) => {
                    output.write_all(&buffer).map_err(BatchError::Write)?;
                    let _ = spares[worker].try_send(buffer);
                }
                Piece::Done(done) => break done,
            }
        };
        if let Some(e) = done.error {
            return Err(shifted(e, lines_before, rows_before));
        }
        counts.merge(&done.counts);
        if let Some(t) = done.tallies {
            tallies = Some(match tallies {
                None => t,
                Some(mut all) => {
                    merge(&mut all.drift, t.drift.as_ref(), DriftStats::merge);
                    merge(&mut all.challenger, t.challenger.as_ref(), ChallengerStats::merge);
                    all
                }
            });
        }
        lines_before += done.lines;
        rows_before += done.counts.rows;
        bytes += done.bytes;
        let bytes_read = if start.transcoded { done.raw_bytes_read } else { bytes };
        progress(bytes_read);
        if done.last {
            counts.bytes_in = if start.transcoded { raw_bytes_read() } else { bytes };
            let tallies = tallies.unwrap_or(Tallies { drift: None, challenger: None });
            return Ok(Scored { counts, tallies });
        }
    }
    unreachable!("the loop above returns")
}

fn merge<T>(all: &mut Option<T>, part: Option<&T>, add: fn(&mut T, &T)) {
    if let (Some(all), Some(part)) = (all, part) {
        add(all, part);
    }
}

/// A chunk's error, its line and row numbers counted from the file's start.
fn shifted(e: BatchError, lines_before: u64, rows_before: u64) -> BatchError {
    match e {
        BatchError::RecordTooLong { line } => BatchError::RecordTooLong { line: line + lines_before },
        BatchError::UnterminatedQuote { line } => BatchError::UnterminatedQuote { line: line + lines_before },
        BatchError::Internal { row } => BatchError::Internal { row: row.map(|r| r + rows_before) },
        other => other,
    }
}

/// The error, its line one earlier.
fn line_earlier(e: BatchError) -> BatchError {
    match e {
        BatchError::RecordTooLong { line } => BatchError::RecordTooLong { line: line - 1 },
        BatchError::UnterminatedQuote { line } => BatchError::UnterminatedQuote { line: line - 1 },
        other => other,
    }
}

/// One worker: scores the chunks it is given, in order, until there are no
/// more or the writer stopped.
fn worker(
    work: &Work<'_>,
    chunks: &Receiver<Chunk>,
    pieces: &SyncSender<Piece>,
    spare_pieces: &Receiver<Vec<u8>>,
    spare_chunks: &SyncSender<Vec<u8>>,
) {
    let mut block = Block::default();
    let mut format = (work.format)();
    let mut writer = PieceWriter { buffer: Vec::new(), pieces, spare: spare_pieces };
    for chunk in chunks.iter() {
        let Chunk { bytes, then, last, after_cr, raw_bytes_read } = chunk;
        let mut counts = BatchCounts::default();
        let mut rows = 0u64;
        // Rows of the chunk are scored, formatted and handed on in pieces; a
        // panic (ours, or the input's raised again where it happened) ends
        // the file at its row, its message dropped unread.
        let scored = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut scorer = Scorer::new(work.model, work.wants)?.with_challenger(work.challenger);
            let mut reader = RecordReader::after_boundary(ChunkInput::new(&bytes, then), work.dialect);
            loop {
                let filled =
                    panic::catch_unwind(AssertUnwindSafe(|| fill(&mut reader, &mut block, &mut scorer, &work.rules)))
                        .unwrap_or_else(|_panic| {
                            Err(BatchError::Internal { row: Some(rows + block.rows.len() as u64 + 1) })
                        });
                rows += block.rows.len() as u64;
                format.write_block(&mut writer, &block, &mut counts)?;
                block.recycle();
                if !filled? {
                    return Ok(scorer.into_tallies());
                }
            }
        }))
        .unwrap_or(Err(BatchError::Internal { row: None }));
        // The rows formatted before an error go out too, as with one worker.
        let handed = format.finish(&mut writer).and_then(|()| writer.flush().map_err(BatchError::Write));
        let (tallies, error) = match scored.and_then(|tallies| handed.map(|()| tallies)) {
            Ok(tallies) => (Some(tallies), None),
            // The reader counted the `\n` of the header's `\r\n` as a line of its own.
            Err(e) if after_cr && bytes.first() == Some(&b'\n') => (None, Some(line_earlier(e))),
            Err(e) => (None, Some(e)),
        };
        let failed = error.is_some();
        let lines = line_ends(&bytes, after_cr);
        let done = ChunkDone { counts, tallies, lines, bytes: bytes.len() as u64, raw_bytes_read, last, error };
        if pieces.send(Piece::Done(Box::new(done))).is_err() || failed {
            return;
        }
        // A buffer that grew for a record near the cap is let go.
        if bytes.capacity() <= CHUNK_BYTES + READ_STEP {
            let _ = spare_chunks.try_send(bytes);
        }
    }
}

/// A worker's output: bytes gathered into buffers of about [`PIECE_BYTES`],
/// each handed to the writer when full and when flushed (a chunk's end).
struct PieceWriter<'a> {
    buffer: Vec<u8>,
    pieces: &'a SyncSender<Piece>,
    /// Buffers the writer wrote and gave back.
    spare: &'a Receiver<Vec<u8>>,
}

impl PieceWriter<'_> {
    fn hand_on(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(PIECE_BYTES));
        next.clear();
        let full = std::mem::replace(&mut self.buffer, next);
        // The writer stopped (its own error, or an earlier chunk's, is the file's).
        self.pieces.send(Piece::Output(full)).map_err(|_| io::Error::other("the pipeline stopped"))
    }
}

impl Write for PieceWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PIECE_BYTES {
            self.hand_on()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_on()
    }
}
