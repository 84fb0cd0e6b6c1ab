//! Round trips as a lab lives them: a German Excel export (`;`, decimal
//! comma, Windows-1252, CRLF, umlauts in the ids) scored by `scorer score`
//! and by the S3 path, and the output read back as Excel reads a CSV: the
//! encoding by the byte-order mark alone (none: Windows-1252, as German
//! Excel does), fields split by the delimiter, numbers with a decimal comma
//! (a point would be a thousands separator). Expected numbers are sklearn's
//! and shap's (the golden files), never the crate's.

use aws_sdk_s3::primitives::ByteStream;
use encoding_rs::WINDOWS_1252;

use crate::goldens::{assert_like_shap, assert_like_sklearn, Export, GoldenRow};
use crate::helpers::{aws_env, moto_endpoint, s3_client, s3_event, scorer, start_lambda, unique_bucket};
use crate::runtime_api::RuntimeApi;

const HEADER: &str = "Probe;Mean Concave Points;Worst Radius;Worst Texture;Worst Area (µm²);Worst Concave Points";

fn id(i: usize) -> String {
    format!("Müller-Lüdenscheidt {i}")
}

/// The golden rows as German Excel saves them: "CSV (Trennzeichen-getrennt)".
fn german_export(rows: &[GoldenRow]) -> Vec<u8> {
    let mut text = format!("{HEADER}\r\n");
    for (i, g) in rows.iter().enumerate() {
        let cells: Vec<String> = g.text.iter().map(|t| t.replace('.', ",")).collect();
        text.push_str(&format!("{};{}\r\n", id(i), cells.join(";")));
    }
    let (bytes, _, lossy) = WINDOWS_1252.encode(&text);
    assert!(!lossy);
    assert!(bytes.contains(&0xfc) && std::str::from_utf8(&bytes).is_err(), "a Windows-1252 file, not UTF-8");
    bytes.into_owned()
}

/// The output as Excel opens it: records of text cells.
fn open_as_excel(bytes: &[u8], delimiter: u8) -> Vec<Vec<String>> {
    let text = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => String::from_utf8(rest.to_vec()).expect("UTF-8 after a UTF-8 mark"),
        None => WINDOWS_1252.decode_without_bom_handling(bytes).0.into_owned(),
    };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).from_reader(text.as_bytes());
    reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect()
}

/// A number as German Excel reads one: a decimal comma, and no point (a
/// point is a thousands separator there: `0.97` would be 97).
fn german_number(cell: &str) -> f64 {
    assert!(!cell.contains('.'), "{cell:?} has a point: German Excel reads it as text or a thousands separator");
    cell.replace(',', ".").parse().unwrap_or_else(|e| panic!("{cell:?} is not a number: {e}"))
}

/// Every row's id, input cells, and each number the service wrote equal to sklearn's and shap's.
fn assert_round_trip(output: &[u8], rows: &[GoldenRow]) {
    assert!(output.starts_with(b"\xef\xbb\xbf"), "a UTF-8 output needs its mark for Excel");
    let records = open_as_excel(output, b';');
    let header = &records[0];
    let names = Export::shipped().api_names();
    let mut want_header: Vec<String> = HEADER.split(';').map(str::to_owned).collect();
    want_header.extend(["prediction", "probability", "status", "reason", "warnings", "base_value"].map(String::from));
    want_header.extend(names.iter().map(|n| format!("contribution_{n}")));
    assert_eq!(header, &want_header);
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(records.len(), rows.len() + 1);
    for (i, (record, g)) in records[1..].iter().zip(rows).enumerate() {
        assert_eq!(record[0], id(i), "the id as it was");
        for (f, text) in g.text.iter().enumerate() {
            assert_eq!(german_number(&record[1 + f]), g.values[f], "input cell {f} of row {i}: {text}");
        }
        assert_eq!(record[at("status")], "200", "{record:?}");
        let label = german_number(&record[at("prediction")]) as u8;
        assert_like_sklearn("Excel round trip", label, german_number(&record[at("probability")]), g);
        let contributions: Vec<f64> =
            names.iter().map(|n| german_number(&record[at(&format!("contribution_{n}"))])).collect();
        assert_like_shap("Excel round trip", german_number(&record[at("base_value")]), &contributions, g);
    }
}

#[test]
fn a_german_excel_export_scored_by_score_opens_in_excel_with_its_ids_and_numbers_intact() {
    let rows = Export::shipped().sample_rows(40);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("Proben März.csv");
    std::fs::write(&input, german_export(&rows)).unwrap();
    let out = scorer().arg("score").arg(&input).args(["--explain", "-o", "-", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_round_trip(&out.stdout, &rows);
}

#[tokio::test]
async fn a_german_excel_export_scored_on_s3_opens_in_excel_with_its_ids_and_numbers_intact() {
    let rows = Export::shipped().sample_rows(40);
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-excel");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "incoming/Proben März.csv";
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(german_export(&rows))).send().await.unwrap();

    let api = RuntimeApi::start().await;
    let mut env = aws_env(&endpoint);
    env.push(("EXPLAIN", "true".into()));
    let _f = start_lambda(&api, &env);
    let answer = api.invoke(&s3_event(&[(&bucket, key)])).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    let scored = s3.get_object().bucket(&bucket).key("scored/Proben März.csv").send().await.unwrap();
    assert_round_trip(&scored.body.collect().await.unwrap().into_bytes(), &rows);
}

/// A plain UTF-8 comma file keeps its form (no mark added: its readers read
/// UTF-8, and a mark would become part of their first column's name); a
/// UTF-8 file with a mark keeps its mark; a UTF-16 one gets one.
#[test]
fn a_utf8_file_keeps_its_mark_or_its_absence_and_a_utf16_file_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    let body = "Probe,mean concave points,worst radius,worst texture,worst area,worst concave points\n\
                Müller,0.1471,25.38,17.33,2019.0,0.2654\n";
    let score = |bytes: &[u8]| {
        let input = dir.path().join("in.csv");
        std::fs::write(&input, bytes).unwrap();
        let out = scorer().arg("score").arg(&input).args(["-o", "-", "--quiet"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let plain = score(body.as_bytes());
    assert!(plain.starts_with("Probe,mean concave points,".as_bytes()), "no mark added");
    assert!(String::from_utf8(plain)
        .unwrap()
        .contains("\nMüller,0.1471,25.38,17.33,2019.0,0.2654,1,0.972636006802156,"));

    let marked = score(&[b"\xef\xbb\xbf", body.as_bytes()].concat());
    assert!(marked.starts_with(b"\xef\xbb\xbfProbe,"), "the mark kept, once");

    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(body.encode_utf16().flat_map(u16::to_le_bytes));
    let records = open_as_excel(&score(&utf16), b',');
    assert_eq!((records[1][0].as_str(), records[1][7].as_str()), ("Müller", "0.972636006802156"));
}
