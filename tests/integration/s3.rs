//! S3 batch scoring: the real binary as a Lambda (Runtime API harness), moto
//! server as S3 through the real AWS SDK.

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

use crate::helpers::{aws_env, moto_endpoint, root, s3_client, s3_event, score_locally, start_lambda, unique_bucket};
use crate::runtime_api::RuntimeApi;

async fn bucket_with(client: &aws_sdk_s3::Client, objects: &[(&str, Vec<u8>)]) -> String {
    let bucket = unique_bucket("scorer-s3");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    for (key, body) in objects {
        client.put_object().bucket(&bucket).key(*key).body(ByteStream::from(body.clone())).send().await.unwrap();
    }
    bucket
}

async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let got = client.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(got.body.collect().await.unwrap().into_bytes().to_vec())
}

async fn keys(client: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = client.list_objects_v2().bucket(bucket).send().await.unwrap();
    listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

#[tokio::test]
async fn a_dropped_csv_is_scored_byte_for_byte_like_local_score() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let sample = root().join("samples/bad-rows.csv");
    let key = "incoming/lab 7/bad rows + ü.csv";
    let bucket = bucket_with(&s3, &[(key, std::fs::read(&sample).unwrap())]).await;

    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let answer = api.invoke(&s3_event(&[(&bucket, key)])).await.response();
    let file = &answer["files"][0];
    assert_eq!(file["status"], "scored", "{answer}");
    assert_eq!(file["output"]["key"], "scored/lab 7/bad rows + ü.csv");

    let scored = get(&s3, &bucket, "scored/lab 7/bad rows + ü.csv").await.expect("the scored object");
    assert_eq!(scored, score_locally(&sample), "S3 output equals `scorer score` output");

    let summary: Value =
        serde_json::from_slice(&get(&s3, &bucket, "scored/lab 7/bad rows + ü.csv.summary.json").await.unwrap())
            .unwrap();
    assert_eq!(summary["status"], "scored");
    assert_eq!((summary["rows"].as_u64(), summary["rejected"].as_u64()), (Some(15), Some(10)));
    assert!(summary["modelVersion"].as_str().unwrap().starts_with("breast-cancer-gbc-"));
    assert!(summary["inputEtag"].is_string());

    // A single-part output (one PutObject) carries the lineage metadata too.
    let head = s3.head_object().bucket(&bucket).key("scored/lab 7/bad rows + ü.csv").send().await.unwrap();
    assert!(!head.e_tag().unwrap().contains('-'), "one PutObject, not a multipart upload");
    let meta = head.metadata().expect("metadata on the output");
    assert_eq!(meta.get("model-version").map(String::as_str), summary["modelVersion"].as_str());
    assert_eq!(meta.get("source-etag").map(String::as_str), summary["inputEtag"].as_str());

    // A retry of the same event rewrites the same keys: same content, nothing new.
    let before = keys(&s3, &bucket).await;
    let again = api.invoke(&s3_event(&[(&bucket, key)])).await.response();
    assert_eq!(again["files"][0]["status"], "scored");
    assert_eq!(keys(&s3, &bucket).await, before);
    assert_eq!(get(&s3, &bucket, "scored/lab 7/bad rows + ü.csv").await.unwrap(), score_locally(&sample));
}

#[tokio::test]
async fn a_file_of_several_parts_round_trips_through_multipart_upload() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    // ~24 MiB in: the output (~33 MiB) needs several 8 MiB parts.
    let mut csv = String::from("sample_id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n");
    let mut i = 0u64;
    while csv.len() < 24 * 1024 * 1024 {
        let f = (i % 1000) as f64 / 1000.0;
        csv.push_str(&format!(
            "S{i:09},{:.6},{:.4},{:.4},{:.3},{:.6}\n",
            0.2 * f,
            8.0 + 28.0 * f,
            12.0 + 37.0 * f,
            200.0 + 4000.0 * f,
            0.29 * f
        ));
        i += 1;
    }
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), &csv).unwrap();
    let bucket = bucket_with(&s3, &[("incoming/big.csv", csv.into_bytes())]).await;

    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let answer = api.invoke(&s3_event(&[(&bucket, "incoming/big.csv")])).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    assert_eq!(answer["files"][0]["rows"].as_u64(), Some(i));

    let head = s3.head_object().bucket(&bucket).key("scored/big.csv").send().await.unwrap();
    let etag = head.e_tag().unwrap().trim_matches('"').to_owned();
    let parts: u32 = etag.rsplit('-').next().unwrap().parse().expect("a multipart ETag ends in -<parts>");
    assert!(parts >= 3, "{etag}");
    assert_eq!(head.metadata().unwrap()["model-version"].len(), "breast-cancer-gbc-".len() + 12);
    let input = s3.head_object().bucket(&bucket).key("incoming/big.csv").send().await.unwrap();
    assert_eq!(head.metadata().unwrap()["source-etag"], input.e_tag().unwrap().trim_matches('"'));
    assert_eq!(get(&s3, &bucket, "scored/big.csv").await.unwrap(), score_locally(local.path()));
}

#[tokio::test]
async fn several_records_test_events_and_own_outputs_are_each_handled() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let valid = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
    let bucket = bucket_with(
        &s3,
        &[("incoming/a.csv", valid.clone()), ("incoming/b.csv", valid.clone()), ("scored/old.csv", valid)],
    )
    .await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));

    let answer = api
        .invoke(&s3_event(&[(&bucket, "incoming/a.csv"), (&bucket, "incoming/b.csv"), (&bucket, "scored/old.csv")]))
        .await
        .response();
    let status: Vec<&str> = answer["files"].as_array().unwrap().iter().map(|f| f["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["scored", "scored", "skipped"], "{answer}");
    assert!(answer["files"][2]["reason"].as_str().unwrap().contains("trigger the function again"));
    assert_eq!(answer["files"][0]["scored"].as_u64(), Some(569));
    let mut listed = keys(&s3, &bucket).await;
    listed.sort();
    assert_eq!(
        listed,
        [
            "incoming/a.csv",
            "incoming/b.csv",
            "scored/a.csv",
            "scored/a.csv.report.html",
            "scored/a.csv.summary.json",
            "scored/b.csv",
            "scored/b.csv.report.html",
            "scored/b.csv.summary.json",
            "scored/old.csv"
        ]
    );

    // The same object announced by EventBridge, straight to the function.
    let _ = s3.delete_object().bucket(&bucket).key("scored/a.csv").send().await;
    let eventbridge = crate::helpers::sample_event("eventbridge-s3-object-created.json", &bucket);
    let mut eventbridge = eventbridge;
    eventbridge["detail"]["object"]["key"] = json!("incoming/a.csv");
    let answer = api.invoke(&eventbridge).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    assert!(get(&s3, &bucket, "scored/a.csv").await.is_some());

    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-25T14:00:00.000Z",
                            "Bucket": bucket, "RequestId": "X", "HostId": "Y"});
    let answer = api.invoke(&test_event).await.response();
    assert_eq!(answer["files"][0]["status"], "skipped");
    assert_eq!(answer["files"][0]["reason"], "ignored: s3:TestEvent");
}

#[tokio::test]
async fn an_unusable_file_gets_a_summary_saying_why_and_no_output() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = bucket_with(&s3, &[("incoming/not-csv.csv", b"\x1f\x8b\x08\x00binary".to_vec())]).await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let answer =
        api.invoke(&s3_event(&[(&bucket, "incoming/not-csv.csv"), (&bucket, "incoming/gone.csv")])).await.response();
    assert_eq!(answer["files"][0]["status"], "rejected", "{answer}");
    assert!(answer["files"][0]["reason"].as_str().unwrap().contains("the header has no column for"));
    // A deleted object is `missing` (it was `rejected` before summaries existed for it).
    assert_eq!(answer["files"][1]["status"], "missing");
    assert_eq!(answer["files"][1]["reason"], "the object no longer exists");
    assert_eq!(get(&s3, &bucket, "scored/not-csv.csv").await, None, "no partial output");
    let summary: Value =
        serde_json::from_slice(&get(&s3, &bucket, "scored/not-csv.csv.summary.json").await.unwrap()).unwrap();
    assert_eq!(summary["status"], "rejected");
    let gone: Value =
        serde_json::from_slice(&get(&s3, &bucket, "scored/gone.csv.summary.json").await.expect("a missing summary"))
            .unwrap();
    assert_eq!(
        (gone["status"].as_str(), gone["reason"].as_str()),
        (Some("missing"), Some("the object no longer exists"))
    );
    assert_eq!(get(&s3, &bucket, "scored/gone.csv").await, None);
    let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty());
}

#[tokio::test]
async fn an_unreachable_s3_fails_the_invocation_so_lambda_retries() {
    let api = RuntimeApi::start().await;
    // Nothing listens on port 9 of loopback.
    let _f = start_lambda(&api, &aws_env("http://127.0.0.1:9"));
    let err = api.invoke(&s3_event(&[("bucket", "incoming/a.csv")])).await.error();
    assert_eq!(err["errorType"], "TransientFailure", "{err}");
}

#[tokio::test]
async fn overlapping_prefixes_stop_the_function_at_start_up() {
    let api = RuntimeApi::start().await;
    let out = crate::helpers::scorer()
        .envs(api.lambda_env())
        .env("INPUT_PREFIX", "data/")
        .env("OUTPUT_PREFIX", "data/scored/")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("would trigger the function again"));
}

#[tokio::test]
async fn a_file_refused_for_an_open_quote_or_an_endless_record_gets_only_a_summary_naming_the_line() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let header = "id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints\n";
    // ~20 MB of output (several 8 MiB parts uploaded) before the quote that never closes.
    let rows = "S1,0.1471,25.38,17.33,2019.0,0.2654\n".repeat(400_000);
    let open_quote = format!("{header}{rows}\"S2,0.1,20,20,900,0.1\nS3,0.1,20,20,900,0.1\n");
    // Classic-Mac line ends and a quoted cell of 2 MB of lines: one record over the cap.
    let endless = format!("{header}S1,0.1,20,20,900,0.1\r\"{}\",0.1,20,20,900,0.1\r", "notes\r".repeat(350_000))
        .replace('\n', "\r");
    let bucket = bucket_with(
        &s3,
        &[("incoming/open-quote.csv", open_quote.into_bytes()), ("incoming/endless.csv", endless.into_bytes())],
    )
    .await;
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let answer = api
        .invoke(&s3_event(&[(&bucket, "incoming/open-quote.csv"), (&bucket, "incoming/endless.csv")]))
        .await
        .response();
    for (i, (name, reason)) in [
        ("open-quote", "the record starting on line 400002 opens a quote that never closes"),
        ("endless", "the record starting on line 3 is longer than 1048576 bytes"),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(answer["files"][i]["status"], "rejected", "{answer}");
        assert!(answer["files"][i]["reason"].as_str().unwrap().contains(reason), "{answer}");
        assert_eq!(get(&s3, &bucket, &format!("scored/{name}.csv")).await, None, "no partial output");
        let summary = get(&s3, &bucket, &format!("scored/{name}.csv.summary.json")).await.unwrap();
        let summary: Value = serde_json::from_slice(&summary).unwrap();
        assert_eq!(summary["status"], "rejected");
    }
    let uploads = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "a multipart upload was left open");
}
