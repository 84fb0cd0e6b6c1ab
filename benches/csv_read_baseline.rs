//! The floor for `scorer score`: a bare csv-crate loop over a file (reused
//! ByteRecord, same buffer size).
//!
//! * `csv_read_baseline FILE`: reads and counts fields only.
//! * `csv_read_baseline FILE --write`: also parses every field after the
//!   header as a float (fast-float2, as scorer does) and writes the floats
//!   back (ryu) to stdout as CSV: the least a scorer must do per row, and the
//!   loop benches/compare.sh sets `scorer score` beside.
//!
//! `cargo run --release --example csv_read_baseline -- big.csv [--write] >/dev/null`

use std::io::Write;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: csv_read_baseline FILE [--write]")?;
    let write = std::env::args().nth(2).as_deref() == Some("--write");
    let started = Instant::now();
    let file = std::fs::File::open(&path)?;
    let bytes = file.metadata()?.len();
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(256 * 1024).from_reader(file);
    let mut out = csv::WriterBuilder::new()
        .buffer_capacity(256 * 1024)
        .flexible(true)
        .from_writer(std::io::BufWriter::new(std::io::stdout().lock()));
    let mut record = csv::ByteRecord::new();
    let mut floats = ryu::Buffer::new();
    let (mut rows, mut fields) = (0u64, 0u64);
    while reader.read_byte_record(&mut record)? {
        rows += 1;
        fields += record.len() as u64;
        if !write {
            continue;
        }
        if rows == 1 {
            out.write_byte_record(&record)?;
            continue;
        }
        for field in &record {
            let value: f64 = fast_float2::parse(field).map_err(|_| format!("row {rows}: not a number"))?;
            out.write_field(floats.format(value))?;
        }
        out.write_record(None::<&[u8]>)?;
    }
    out.flush()?;
    let s = started.elapsed().as_secs_f64();
    std::io::stderr().flush()?;
    eprintln!(
        "read {rows} records ({fields} fields, {bytes} bytes){} in {s:.3} s: {:.0} rows/s, {:.1} MB/s",
        if write { ", parsed and written back" } else { "" },
        rows as f64 / s,
        bytes as f64 / s / 1e6
    );
    Ok(())
}
