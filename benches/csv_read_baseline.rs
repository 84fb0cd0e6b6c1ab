//! The floor for `scorer score`: a bare csv-crate loop that only reads a file
//! (reused ByteRecord, same buffer size) and counts fields.
//! `cargo run --release --example csv_read_baseline -- big.csv`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: csv_read_baseline FILE")?;
    let started = Instant::now();
    let file = std::fs::File::open(&path)?;
    let bytes = file.metadata()?.len();
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(256 * 1024).from_reader(file);
    let mut record = csv::ByteRecord::new();
    let (mut rows, mut fields) = (0u64, 0u64);
    while reader.read_byte_record(&mut record)? {
        rows += 1;
        fields += record.len() as u64;
    }
    let s = started.elapsed().as_secs_f64();
    eprintln!(
        "read {rows} records ({fields} fields, {bytes} bytes) in {s:.3} s: {:.0} rows/s, {:.1} MB/s",
        rows as f64 / s,
        bytes as f64 / s / 1e6
    );
    Ok(())
}
