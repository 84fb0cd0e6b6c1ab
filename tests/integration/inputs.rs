//! Real-world inputs (issue 15): the 569 golden dataset rows written as the
//! files labs' tools produce, scored exactly as sklearn scores them through
//! the library, the `scorer score` binary and S3 (moto); JSON bodies in the
//! key styles clients send, over HTTP and SQS.

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

use scorer::core::csv_pipeline::{score_csv_with, ScoreOptions};
use scorer::core::model::Model;
use scorer::core::observation::Observation;

use crate::helpers::{
    aws_env, moto_endpoint, root, s3_client, s3_event, scorer, start_lambda, start_serve, unique_bucket,
};
use crate::runtime_api::RuntimeApi;

/// One golden row: the dataset's cells as written, sklearn's label and probability.
struct Golden {
    cells: [String; 5],
    label: u8,
    probability: f64,
}

fn golden() -> Vec<Golden> {
    let mut reader = csv::Reader::from_path(root().join("tests/golden/dataset.csv")).unwrap();
    let rows: Vec<Golden> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Golden {
                cells: std::array::from_fn(|i| r[i].to_owned()),
                label: r[5].parse().unwrap(),
                probability: r[6].parse().unwrap(),
            }
        })
        .collect();
    assert_eq!(rows.len(), 569);
    rows
}

fn id(i: usize) -> String {
    format!("Biopsia-Muñoz-{i}")
}

/// A Spanish Excel export: `;`, decimal commas, Windows-1252, CRLF, units
/// and dataset names in the header, accented ids.
fn excel_semicolon_1252() -> Vec<u8> {
    let mut text = String::from(
        "Muestra;Mean Concave Points;Worst Radius (mm);Worst Texture;Worst Area (µm²);Worst Concave Points\r\n",
    );
    for (i, g) in golden().iter().enumerate() {
        let cells: Vec<String> = g.cells.iter().map(|c| c.replace('.', ",")).collect();
        text.push_str(&format!("{};{}\r\n", id(i), cells.join(";")));
    }
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(!unmappable);
    assert!(std::str::from_utf8(&bytes).is_err(), "the file is not UTF-8");
    bytes.into_owned()
}

/// Excel's "Unicode Text": UTF-16 LE with a mark, tab-separated, CRLF.
fn excel_unicode_text() -> Vec<u8> {
    let mut text = String::from(
        "Sample ID\tmean concave points\tworst radius\tworst texture\tworst area\tworst concave points\r\n",
    );
    for (i, g) in golden().iter().enumerate() {
        text.push_str(&format!("{}\t{}\r\n", id(i), g.cells.join("\t")));
    }
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

/// A snake_case UTF-8 `.tsv`.
fn snake_case_tsv() -> Vec<u8> {
    let mut text =
        String::from("sample_id\tmean_concave_points\tworst_radius\tworst_texture\tworst_area\tworst_concave_points\n");
    for (i, g) in golden().iter().enumerate() {
        text.push_str(&format!("{}\t{}\n", id(i), g.cells.join("\t")));
    }
    text.into_bytes()
}

/// The output is UTF-8 (with a mark iff `bom`), every id is intact and every
/// row scored as sklearn scores it (labels identical, probabilities within
/// 1e-12, as in parity.rs).
fn assert_scored_like_sklearn(output: &[u8], delimiter: u8, bom: bool) {
    let text = std::str::from_utf8(output).expect("the output is valid UTF-8");
    assert_eq!(text.starts_with('\u{feff}'), bom, "a mark out iff a mark in");
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    let (prediction, probability, status, warnings) =
        (at("prediction"), at("probability"), at("status"), at("warnings"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let golden = golden();
    let model = Model::embedded().unwrap();
    assert_eq!(rows.len(), golden.len());
    for (i, (row, g)) in rows.iter().zip(&golden).enumerate() {
        assert_eq!(&row[0], id(i), "row {i}: the id");
        assert_eq!(&row[status], "200", "row {i}: {row:?}");
        assert_eq!(row[prediction].parse::<u8>().unwrap(), g.label, "row {i}");
        let diff = (row[probability].parse::<f64>().unwrap() - g.probability).abs();
        assert!(diff <= 1e-12, "row {i}: probability off by {diff:e}");
        // The training split's range is not the dataset's: some rows warn, as on HTTP.
        let observation = Observation::from_values(g.cells.clone().map(|c| c.parse().unwrap())).unwrap();
        let mut want = String::new();
        model.write_range_warnings(&observation, &mut want).unwrap();
        assert_eq!(&row[warnings], want, "row {i}");
    }
}

fn score_in_process(input: &[u8]) -> Vec<u8> {
    let model = Model::embedded().unwrap();
    let mut out = Vec::new();
    let outcome = score_csv_with(&model, input, &mut out, &ScoreOptions::default(), |_| {}).unwrap();
    assert_eq!((outcome.counts.scored, outcome.counts.bytes_in), (569, input.len() as u64));
    out
}

#[test]
fn the_three_real_world_files_score_exactly_as_sklearn_through_the_library() {
    assert_scored_like_sklearn(&score_in_process(&excel_semicolon_1252()), b';', false);
    assert_scored_like_sklearn(&score_in_process(&excel_unicode_text()), b'\t', true);
    assert_scored_like_sklearn(&score_in_process(&snake_case_tsv()), b'\t', false);
}

#[test]
fn the_three_real_world_files_score_exactly_as_sklearn_through_scorer_score() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, delimiter, bom, flag) in [
        ("excel.csv", excel_semicolon_1252(), b';', false, None),
        ("unicode.txt", excel_unicode_text(), b'\t', true, Some("tab")),
        ("snake.tsv", snake_case_tsv(), b'\t', false, None),
    ] {
        let input = dir.path().join(name);
        std::fs::write(&input, bytes).unwrap();
        let output = dir.path().join(format!("{name}.out"));
        let mut cmd = scorer();
        cmd.arg("score").arg(&input).arg("-o").arg(&output).arg("--quiet");
        if let Some(d) = flag {
            cmd.args(["--delimiter", d]);
        }
        let run = cmd.output().unwrap();
        assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        assert!(String::from_utf8_lossy(&run.stderr).starts_with("569 rows: 569 scored"), "{name}");
        assert_scored_like_sklearn(&std::fs::read(&output).unwrap(), delimiter, bom);
    }
}

#[test]
fn scorer_score_refuses_an_unknown_delimiter_and_a_wrong_one_says_what_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("excel.csv");
    std::fs::write(&input, excel_semicolon_1252()).unwrap();
    let run = scorer().arg("score").arg(&input).args(["--delimiter", "|", "-o", "-"]).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("the delimiter must be ',', ';' or tab"));
    let run = scorer().arg("score").arg(&input).args(["--delimiter", "tab", "-o", "-"]).output().unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("read as 1 column separated by tab (as given)"), "{stderr}");
    assert!(!stderr.contains("Muñoz") && !stderr.contains("Mu\u{fffd}oz"), "{stderr}");
}

/// A `|`-separated file: one column to the detector, whatever route reads it.
fn pipe_separated() -> Vec<u8> {
    b"id|mean concave points|worst radius|worst texture|worst area|worst concave points\nS1|0.1|20|20|900|0.1\n"
        .to_vec()
}

#[test]
fn scorer_score_advises_its_flag_for_a_file_read_as_one_column() {
    let dir = tempfile::tempdir().unwrap();
    let (input, report) = (dir.path().join("pipes.csv"), dir.path().join("report.json"));
    std::fs::write(&input, pipe_separated()).unwrap();
    let run = scorer().arg("score").arg(&input).args(["-o", "-", "--report"]).arg(&report).output().unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("another character? Give it with --delimiter (',', ';' or tab)."), "{stderr}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let reason = report["reason"].as_str().unwrap();
    assert!(reason.ends_with("Give it with --delimiter (',', ';' or tab)."), "{reason}");
    for text in [&*stderr, reason] {
        assert!(!text.contains("CSV_DELIMITER"), "the CLI has no such setting: {text}");
    }
}

async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let got = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(got.body.collect().await.unwrap().into_bytes().to_vec())
}

#[tokio::test]
async fn csv_tsv_and_txt_files_dropped_on_s3_are_scored_and_every_other_object_gets_a_summary() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-inputs");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let objects = [
        ("incoming/lab/excel.csv", excel_semicolon_1252()),
        ("incoming/lab/unicode.txt", excel_unicode_text()),
        ("incoming/lab/snake.TSV", snake_case_tsv()),
        ("incoming/lab/report.pdf", b"%PDF-1.4".to_vec()),
        ("incoming/lab/", Vec::new()),
    ];
    for (key, body) in &objects {
        s3.put_object().bucket(&bucket).key(*key).body(ByteStream::from(body.clone())).send().await.unwrap();
    }
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let records: Vec<(&str, &str)> = objects.iter().map(|(k, _)| (bucket.as_str(), *k)).collect();
    let answer = api.invoke(&s3_event(&records)).await.response();
    let status: Vec<&str> = answer["files"].as_array().unwrap().iter().map(|f| f["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["scored", "scored", "scored", "skipped", "skipped"], "{answer}");

    for (key, delimiter, bom) in [
        ("scored/lab/excel.csv", b';', false),
        ("scored/lab/unicode.txt", b'\t', true),
        ("scored/lab/snake.TSV", b'\t', false),
    ] {
        let output = get(&s3, &bucket, key).await.unwrap_or_else(|| panic!("{key}"));
        assert_scored_like_sklearn(&output, delimiter, bom);
        let summary: Value =
            serde_json::from_slice(&get(&s3, &bucket, &format!("{key}.summary.json")).await.unwrap()).unwrap();
        assert_eq!((summary["status"].as_str(), summary["scored"].as_u64()), (Some("scored"), Some(569)), "{key}");
    }
    for (summary_key, says) in [
        ("scored/lab/report.pdf.summary.json", "only keys ending in .csv, .tsv or .txt are scored"),
        ("scored/lab/_folder.summary.json", "a folder marker"),
    ] {
        let summary: Value =
            serde_json::from_slice(&get(&s3, &bucket, summary_key).await.unwrap_or_else(|| panic!("{summary_key}")))
                .unwrap();
        assert_eq!(summary["status"], "skipped", "{summary_key}");
        assert!(summary["reason"].as_str().unwrap().contains(says), "{summary}");
    }
    assert_eq!(get(&s3, &bucket, "scored/lab/report.pdf").await, None, "no output for what is not scored");
}

#[tokio::test]
async fn csv_delimiter_forces_the_delimiter_on_the_s3_route() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-inputs");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "incoming/excel.csv";
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(excel_semicolon_1252())).send().await.unwrap();
    let api = RuntimeApi::start().await;
    let mut env = aws_env(&endpoint);
    env.push(("CSV_DELIMITER", "tab".into()));
    let _f = start_lambda(&api, &env);
    let answer = api.invoke(&s3_event(&[(&bucket, key)])).await.response();
    let file = &answer["files"][0];
    assert_eq!(file["status"], "rejected", "{answer}");
    assert!(file["reason"].as_str().unwrap().contains("separated by tab (as given)"), "{answer}");
}

#[tokio::test]
async fn the_s3_route_advises_csv_delimiter_for_a_file_read_as_one_column() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-inputs");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let key = "incoming/pipes.csv";
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(pipe_separated())).send().await.unwrap();
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let answer = api.invoke(&s3_event(&[(&bucket, key)])).await.response();
    let file = &answer["files"][0];
    assert_eq!(file["status"], "rejected", "{answer}");
    let reason = file["reason"].as_str().unwrap();
    assert!(reason.ends_with("another character? Give it with CSV_DELIMITER (',', ';' or tab)."), "{reason}");
    assert!(!reason.contains("--delimiter"), "the function has no flags: {reason}");
}

const VALUES: [f64; 5] = [0.1471, 25.38, 17.33, 2019.0, 0.2654];

/// The same observation with keys in the styles clients send.
fn bodies() -> Vec<(&'static str, String)> {
    let [a, b, c, d, e] = VALUES;
    vec![
        ("PascalCase", json!({"MeanConcavePoints": a, "WorstRadius": b, "WorstTexture": c, "WorstArea": d, "WorstConcavePoints": e}).to_string()),
        ("snake_case", json!({"mean_concave_points": a, "worst_radius": b, "worst_texture": c, "worst_area": d, "worst_concave_points": e}).to_string()),
        ("dataset names", json!({"mean concave points": a, "worst radius": b, "worst texture": c, "worst area (mm2)": d, "worst concave points": e}).to_string()),
        ("a BOM", format!("\u{feff}{}", crate::helpers::VALID_BODY)),
    ]
}

#[test]
fn json_bodies_in_every_key_style_and_with_a_bom_are_scored_over_http() {
    let (_server, url) = start_serve();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let model = Model::embedded().unwrap();
    let want = model.predict(&Observation::from_values(VALUES).unwrap());
    for (style, body) in bodies() {
        let mut r = agent.post(&url).header("content-type", "application/json").send(body.as_bytes()).unwrap();
        let status = r.status().as_u16();
        let answer: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(status, 200, "{style}: {answer}");
        assert_eq!(answer["probability"].as_f64(), Some(want.probability), "{style}");
    }
    let dup = crate::helpers::VALID_BODY.replace('}', r#","worst_area":1}"#);
    let mut r = agent.post(&url).send(dup.as_bytes()).unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let answer: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(
        (errors[0]["field"].as_str(), errors[0]["code"].as_str()),
        (Some("worstArea"), Some("duplicate")),
        "{answer}"
    );
}

#[tokio::test]
async fn json_bodies_in_every_key_style_and_with_a_bom_are_scored_from_sqs() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-inputs");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &env);
    let mut event = crate::helpers::sample_event("sqs-observation.json", &bucket);
    let template = event["Records"][0].clone();
    let records: Vec<Value> = bodies()
        .into_iter()
        .enumerate()
        .map(|(i, (_, body))| {
            let mut r = template.clone();
            r["messageId"] = json!(format!("00000000-0000-4000-8000-00000000000{i}"));
            r["body"] = json!(body);
            r
        })
        .collect();
    event["Records"] = json!(records);
    let answer = api.invoke(&event).await.response();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    for (i, (style, _)) in bodies().into_iter().enumerate() {
        let key = scorer::adapters::sqs::results_key("scored/", &format!("00000000-0000-4000-8000-00000000000{i}"));
        let text =
            String::from_utf8(get(&s3, &bucket, &key).await.unwrap_or_else(|| panic!("{style}: {key}"))).unwrap();
        let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["status"], "200", "{style}: {line}");
    }
}
