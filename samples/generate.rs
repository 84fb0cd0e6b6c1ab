//! Writes a large CSV of synthetic observations for benchmarks:
//! `cargo run --release --example generate_csv -- ROWS [--id] > big.csv`
//!
//! Each row holds five full-precision floats (shortest round-trip text, about
//! 95 bytes a row like tests/golden/random.csv), spread over and a little
//! beyond the training ranges. Deterministic: the same ROWS give the same file.

use std::io::{self, BufWriter, Write};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args.next().and_then(|a| a.replace('_', "").parse().ok()).unwrap_or_else(|| {
        eprintln!("usage: generate_csv ROWS [--id] > out.csv");
        std::process::exit(2)
    });
    let with_id = args.any(|a| a == "--id");
    let max = [0.2012, 36.04, 49.54, 4254.0, 0.291];
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    if with_id {
        write!(out, "sample_id,")?;
    }
    writeln!(out, "meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints")?;
    // xorshift64*: fast, deterministic, good enough for test data.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut buf = ryu::Buffer::new();
    for i in 0..rows {
        if with_id {
            write!(out, "S{i:010},")?;
        }
        for (j, m) in max.iter().enumerate() {
            if j > 0 {
                out.write_all(b",")?;
            }
            out.write_all(buf.format(next() * m * 1.1).as_bytes())?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}
