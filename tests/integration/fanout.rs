//! Past one Lambda: Step Functions Distributed Map batches and S3 Batch
//! Operations tasks, through the real binary (Runtime API harness) and moto.

use aws_sdk_s3::primitives::ByteStream;
use proptest::prelude::*;
use scorer::core::csv_pipeline::score_csv;
use scorer::core::model::Model;
use serde_json::{json, Map, Value};

use crate::helpers::{aws_env, moto_endpoint, root, s3_client, sample_event, start_lambda, unique_bucket};
use crate::runtime_api::RuntimeApi;

#[tokio::test]
async fn a_distributed_map_batch_comes_back_item_for_item_in_order() {
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &[]);
    let event = sample_event("stepfunctions-distributed-map.json", "scorer-demo");
    let answer = api.invoke(&event).await.response();
    let items = answer.as_array().expect("an array of scored items");
    assert_eq!(items.len(), event["Items"].as_array().unwrap().len());
    let ids: Vec<&str> = items.iter().map(|i| i["sample_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["WDBC-0000", "WDBC-0019", "BAD-1", "BAD-2"]);
    let status: Vec<&str> = items.iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["200", "200", "400", "400"]);
    // WDBC-0000 is the dataset's first row: sklearn's label from tests/golden/dataset.csv.
    let first: Vec<f64> = crate::helpers::FEATURES
        .iter()
        .map(|f| event["Items"][0][f.dataset_name].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(items[0]["prediction"], json!(crate::goldens::shipped_golden_label(&first)));
    assert_eq!(items[1]["prediction"], json!(0));
    assert_eq!(items[2]["prediction"], "");
    assert_eq!(items[0]["worst area"], "2019.0", "original fields untouched");

    let odd = json!({"Items": [json!({"worst area": 5}), json!("not an object")], "BatchInput": {}});
    let answer = api.invoke(&odd).await.response();
    assert_eq!(answer.as_array().unwrap().len(), 2);
    assert_eq!(answer[1]["status"], "400");
}

#[tokio::test]
async fn s3_batch_operations_tasks_get_one_result_each_with_the_right_code() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-batchops");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let wdbc = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
    s3.put_object().bucket(&bucket).key("incoming/wdbc.csv").body(ByteStream::from(wdbc)).send().await.unwrap();
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));

    let answer = api.invoke(&sample_event("s3-batch-operations.json", &bucket)).await.response();
    assert_eq!(answer["invocationSchemaVersion"], "2.0");
    assert_eq!(answer["invocationId"], "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo");
    let results = answer["results"].as_array().unwrap();
    let codes: Vec<(&str, &str)> =
        results.iter().map(|r| (r["taskId"].as_str().unwrap(), r["resultCode"].as_str().unwrap())).collect();
    assert_eq!(codes, [("dGFza2lkZ29lc2hlcmUK", "Succeeded"), ("dGFza2lkZ29lc2hlcmUL", "PermanentFailure")]);
    assert!(results[0]["resultString"].as_str().unwrap().starts_with("rows=569 scored=569 rejected=0 output=s3://"));
    let scored = s3.get_object().bucket(&bucket).key("scored/wdbc.csv").send().await.expect("the scored object");
    assert_eq!(scored.body.collect().await.unwrap().into_bytes().iter().filter(|&&b| b == b'\n').count(), 570);
    // The missing object is a PermanentFailure with a `missing` summary.
    assert_eq!(results[1]["resultString"], "the object no longer exists");
    let summary = s3.get_object().bucket(&bucket).key("scored/does-not-exist.csv.summary.json").send().await;
    let summary: Value =
        serde_json::from_slice(&summary.expect("a summary").body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(summary["status"], "missing");

    // Schema 1.0 (bucket ARN) works too; S3 unreachable is a TemporaryFailure so the job retries.
    let answer = api.invoke(&sample_event("s3-batch-operations-v1.json", &bucket)).await.response();
    assert_eq!(answer["results"][0]["resultCode"], "Succeeded");

    // Keys arrive URL-encoded with `+` for a space, as S3 event keys do.
    let key = "incoming/lab 7/wdbc+1.csv";
    let wdbc = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
    s3.put_object().bucket(&bucket).key(key).body(ByteStream::from(wdbc)).send().await.unwrap();
    let mut event = sample_event("s3-batch-operations-v1.json", &bucket);
    event["tasks"][0]["s3Key"] = json!("incoming/lab+7/wdbc%2B1.csv");
    let answer = api.invoke(&event).await.response();
    assert_eq!(answer["results"][0]["resultCode"], "Succeeded", "{answer}");
    assert!(answer["results"][0]["resultString"].as_str().unwrap().ends_with("/scored/lab 7/wdbc+1.csv drift=ok"));

    let api2 = RuntimeApi::start().await;
    let _g = start_lambda(&api2, &aws_env("http://127.0.0.1:9"));
    let answer = api2.invoke(&sample_event("s3-batch-operations.json", &bucket)).await.response();
    assert_eq!(answer["results"][0]["resultCode"], "TemporaryFailure");
}

/// What a Distributed Map ItemReader makes of a CSV: one object of strings per row.
fn items_of(csv_text: &str) -> Vec<Map<String, Value>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers.iter().zip(r.iter()).map(|(h, v)| (h.to_owned(), Value::from(v))).collect()
        })
        .collect()
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        (0.0..3000.0f64).prop_map(|v| v.to_string()),
        (0.0..0.3f64).prop_map(|v| v.to_string()),
        Just(String::new()),
        Just("-2".to_owned()),
        Just("abc".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn distributed_map_batches_of_any_size_match_scoring_the_whole_file(
        rows in prop::collection::vec(prop::collection::vec(cell(), 5), 1..60),
        batch in 1usize..25,
    ) {
        let mut text = String::from("id,worst area,meanConcavePoints,worstRadius,worstTexture,worst concave points\n");
        for (i, r) in rows.iter().enumerate() {
            text.push_str(&format!("r{i},{}\n", r.join(",")));
        }
        let model = Model::embedded().unwrap();
        let mut whole = Vec::new();
        score_csv(&model, text.as_bytes(), &mut whole, |_| {}).unwrap();
        let whole: Vec<csv::StringRecord> = csv::Reader::from_reader(&whole[..]).records().map(Result::unwrap).collect();

        let mut scored = Vec::new();
        for chunk in items_of(&text).chunks(batch) {
            scored.extend(scorer::adapters::step_functions::score_items(&model, chunk.iter().cloned().map(Value::Object).collect()).0);
        }
        prop_assert_eq!(scored.len(), whole.len());
        for (item, row) in scored.iter().zip(&whole) {
            prop_assert_eq!(item["id"].as_str().unwrap(), &row[0]);
            let prediction = match &item["prediction"] { Value::Number(n) => n.to_string(), _ => String::new() };
            prop_assert_eq!(prediction.as_str(), &row[6]);
            let probability = item["probability"].as_f64().map(|p| p.to_string()).unwrap_or_default();
            let expected = if row[7].is_empty() { String::new() } else { row[7].parse::<f64>().unwrap().to_string() };
            prop_assert_eq!(probability, expected);
            prop_assert_eq!(item["status"].as_str().unwrap(), &row[8]);
            prop_assert_eq!(item["reason"].as_str().unwrap(), &row[9]);
        }
    }
}
