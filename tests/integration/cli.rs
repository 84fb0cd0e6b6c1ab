//! The command line as a user meets it.

use serde_json::Value;

use crate::helpers::{root, scorer};

#[test]
fn invoke_prints_the_handlers_response_for_an_event_file() {
    let out = scorer().arg("invoke").arg(root().join("events/function-url-predict.json")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["statusCode"], 200);
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["prediction"], 1);
}

#[test]
fn invoke_fails_clearly_on_a_missing_or_unrecognised_event() {
    let out = scorer().args(["invoke", "/nonexistent/event.json"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.json");
    std::fs::write(&file, r#"{"unknown": true}"#).unwrap();
    let out = scorer().arg("invoke").arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognised event"));
}

#[test]
fn help_explains_the_commands() {
    let out = scorer().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "invoke", "malignant", "MODEL_PATH"] {
        assert!(text.contains(word), "--help should mention {word}:\n{text}");
    }
}

#[test]
fn score_refuses_a_file_whose_quote_never_closes_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    // Enough rows that output was flushed to the temporary file before the end.
    let rows = "S1,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(300_000);
    let header = "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n";
    std::fs::write(&input, format!("{header}{rows}\"S2,0.1,20,20,900,0.1\nS3,0.1,20,20,900,0.1\n")).unwrap();
    let output = dir.path().join("out.csv");
    std::fs::write(&output, "an earlier result").unwrap();

    let out = scorer().arg("score").arg(&input).arg("-o").arg(&output).arg("--quiet").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the record starting on line 300002 opens a quote that never closes"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "an earlier result");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "a temporary file was left: {left:?}");
}

/// The committed openapi.yaml is the shipped model's contract: what `scorer
/// openapi` prints for it, read as values (the file has comments). When this
/// fails, make openapi.yaml and src/contract/openapi.rs agree again.
#[test]
fn openapi_prints_the_committed_contract_for_the_shipped_model() {
    let committed: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("openapi.yaml")).unwrap()).unwrap();
    let out = scorer().arg("openapi").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, committed, "`scorer openapi` differs from openapi.yaml");

    let out = scorer().args(["openapi", "--json"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), committed);

    // MODEL_PATH names the export the document is made for: the same file, the same document.
    let out = scorer().arg("openapi").env("MODEL_PATH", root().join("models/breast-cancer-gbc.json")).output().unwrap();
    assert!(out.status.success());
    assert_eq!(serde_yaml_ng::from_slice::<Value>(&out.stdout).unwrap(), committed);
    let out = scorer().arg("openapi").env("MODEL_PATH", "/nonexistent/model.json").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MODEL_PATH"));
}

/// `scorer score --workers N` writes what one worker writes, byte for byte,
/// with the same summary (counts and drift), on a file of many chunks with
/// quoted line breaks, CRLF, bad rows and Windows-1252 cells.
#[test]
fn score_on_any_number_of_workers_writes_what_one_worker_writes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut data = b"id,notes,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\r\n".to_vec();
    for i in 0..60_000 {
        data.extend(match i % 5 {
            0 => format!("S{i},\"two\r\nlines, \"\"quoted\"\"\",0.1471,25.38,17.33,2019.0,0.2654\r\n").into_bytes(),
            1 => format!("S{i},5\" lump,0.04781,15.11,26.5,711.2,0.07431\r\n").into_bytes(),
            2 => format!("S{i},,0.1,,20,900,0.1\r\n\r\n").into_bytes(),
            3 => format!("S{i},caf\u{e9},0.1,20\r\n").into_bytes(),
            _ => [format!("S{i},").into_bytes(), b"Mu\xf1oz,0.1,20,20,9000,0.1\r\n".to_vec()].concat(),
        });
    }
    std::fs::write(&input, &data).unwrap();
    let run = |workers: &str| {
        let report = dir.path().join(format!("report-{workers}.json"));
        let out = scorer()
            .arg("score")
            .arg(&input)
            .args(["-o", "-", "--quiet", "--workers", workers, "--report"])
            .arg(&report)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut summary = crate::helpers::read_json(&report);
        summary.as_object_mut().unwrap().remove("durationMs");
        // Each feature's mean is a sum added in another order on more
        // workers: equal to 1e-12, compared apart.
        let means: Vec<f64> = summary["drift"]["features"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .map(|f| f.as_object_mut().unwrap().remove("mean").unwrap().as_f64().unwrap())
            .collect();
        (out.stdout, summary, means)
    };
    let (one, summary, means) = run("1");
    assert_eq!((summary["rows"].as_u64(), summary["rejected"].as_u64()), (Some(60_000), Some(24_000)));
    assert_eq!(summary["bytesIn"].as_u64(), Some(data.len() as u64));
    for workers in ["2", "3", "8"] {
        let (many, many_summary, many_means) = run(workers);
        assert!(one == many, "{workers} workers: the output differs");
        assert_eq!(summary, many_summary, "{workers} workers");
        for (a, b) in means.iter().zip(&many_means) {
            assert!((a - b).abs() <= 1e-12 * a.abs(), "{workers} workers: mean {a} vs {b}");
        }
    }
    for bad in ["0", "x", "65", "1.5"] {
        let out = scorer().arg("score").arg(&input).args(["-o", "-", "--workers", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("the worker count must be a whole number from 1 to 64"), "{stderr}");
    }
}
