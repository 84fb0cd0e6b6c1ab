//! Batch CSV scoring on arbitrary bytes: never panics; when it succeeds the
//! output is rectangular CSV with a header and one record per input data record.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scorer::core::batch::{score_csv, RESULT_COLUMNS};
use scorer::core::model::Model;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::embedded().expect("embedded model loads"))
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let Ok(counts) = score_csv(model(), data, &mut out, |_| {}) else { return };

    // Records in the input, read the way the scorer reads them.
    let mut input = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(data);
    let mut record = csv::ByteRecord::new();
    let mut input_records = 0u64;
    let mut header_width = None;
    while input.read_byte_record(&mut record).expect("input the scorer accepted reads as CSV") {
        header_width.get_or_insert(record.len());
        input_records += 1;
    }
    let data_records = input_records.checked_sub(1).expect("accepted input has a header");
    assert_eq!(counts.rows, data_records, "counts.rows differs from the input's data records");
    assert_eq!(counts.scored + counts.rejected, counts.rows, "scored + rejected != rows");

    // Output: strict (non-flexible) CSV, header + exactly one record per input record.
    let width = header_width.unwrap() + RESULT_COLUMNS.len();
    let mut output = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(out.as_slice());
    let head = output.byte_headers().expect("output header reads").clone();
    assert_eq!(head.len(), width, "output header width");
    let mut output_records = 0u64;
    while output
        .read_byte_record(&mut record)
        .unwrap_or_else(|e| panic!("output is not rectangular CSV: {e}\n{}", String::from_utf8_lossy(&out)))
    {
        output_records += 1;
        let status = &record[width - 2];
        assert!(status == b"200" || status == b"400", "status column {:?}", String::from_utf8_lossy(status));
    }
    assert_eq!(
        output_records,
        data_records,
        "output records differ from input data records\ninput: {:?}\noutput: {:?}",
        String::from_utf8_lossy(data),
        String::from_utf8_lossy(&out)
    );
});
