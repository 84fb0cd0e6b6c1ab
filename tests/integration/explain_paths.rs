//! Explanations on every path agree with shap (tests/golden/explanations.csv,
//! written by models/train.py) within 1e-9 on every golden row: `serve`
//! (HTTP), `score --explain`, SQS results objects (moto S3) and Distributed
//! Map items. A version 1 export answers `explanations_unavailable` on each.

use crate::helpers::{FEATURES, FEATURE_COUNT};
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::{Model, EMBEDDED_MODEL};
use scorer::handler::App;
use serde_json::{json, Value};

use crate::helpers::{moto_endpoint, record_ureq, root, s3_client, scorer, start_serve, unique_bucket};

const SHAP_TOLERANCE: f64 = 1e-9;

/// One golden row: the values as the file writes them, shap's base value and contributions.
struct Golden {
    text: [String; FEATURE_COUNT],
    base_value: f64,
    contributions: [f64; FEATURE_COUNT],
}

fn golden() -> Vec<Golden> {
    let mut reader = csv::Reader::from_path(root().join("tests/golden/explanations.csv")).unwrap();
    let rows: Vec<Golden> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Golden {
                text: std::array::from_fn(|i| r[2 + i].to_owned()),
                base_value: r[8].parse().unwrap(),
                contributions: std::array::from_fn(|i| r[9 + i].parse().unwrap()),
            }
        })
        .collect();
    assert!(rows.len() > 10_000, "every golden row: {}", rows.len());
    rows
}

/// The observation as a JSON object, values written as the golden file has them.
fn body(g: &Golden, extra: &str) -> String {
    let fields: Vec<String> = FEATURES.iter().zip(&g.text).map(|(f, v)| format!("\"{}\":{v}", f.api_name)).collect();
    format!("{{{extra}{}}}", fields.join(","))
}

/// Checks an explanation object (`{"unit","baseValue","contributions"}`) against shap's row.
fn assert_like_shap(what: &str, explanation: &Value, g: &Golden) {
    assert_eq!(explanation["unit"], "log-odds", "{what}");
    let base = explanation["baseValue"].as_f64().unwrap_or_else(|| panic!("{what}: {explanation}"));
    assert!((base - g.base_value).abs() <= SHAP_TOLERANCE, "{what}: base {base} vs shap {}", g.base_value);
    let contributions = explanation["contributions"].as_object().unwrap();
    let names: Vec<&str> = contributions.keys().map(String::as_str).collect();
    assert_eq!(names, FEATURES.map(|f| f.api_name), "{what}: model order");
    for (f, shap) in FEATURES.iter().zip(&g.contributions) {
        let ours = contributions[f.api_name].as_f64().unwrap();
        assert!((ours - shap).abs() <= SHAP_TOLERANCE, "{what}: {} {ours} vs shap {shap}", f.api_name);
    }
}

/// The embedded export written as format version 1 (no covers, no profile).
pub fn version_1_json() -> String {
    let mut doc: Value = serde_json::from_slice(EMBEDDED_MODEL).unwrap();
    doc["format_version"] = 1.into();
    doc.as_object_mut().unwrap().remove("training_profile");
    for tree in doc["trees"].as_array_mut().unwrap() {
        tree.as_object_mut().unwrap().remove("cover");
    }
    doc.to_string()
}

pub fn version_1_model() -> Model {
    let model = Model::from_json_bytes(version_1_json().as_bytes()).unwrap();
    assert!(!model.can_explain());
    model
}

#[test]
fn serve_explains_every_golden_row_as_shap_does() {
    let (_server, url) = start_serve();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for (i, g) in golden().iter().enumerate() {
        let response = agent.post(&format!("{url}/?explain=true")).send(body(g, "").as_str()).unwrap();
        let (status, headers, text) = if i < 20 {
            record_ureq("POST", "/", response)
        } else {
            let mut r = response;
            (r.status().as_u16(), Vec::new(), r.body_mut().read_to_string().unwrap())
        };
        assert_eq!(status, 200, "row {i}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_like_shap(&format!("serve row {i}"), &answer["explanation"], g);
        if i < 20 {
            let header = headers.iter().find(|(k, _)| k == "x-request-id").map(|(_, v)| v.as_str());
            assert_eq!(header, answer["requestId"].as_str(), "row {i}");
        }
    }
}

#[test]
fn score_explain_gives_shap_contributions_on_every_golden_row_and_empty_cells_on_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
    let golden = golden();
    let mut csv = format!("sample,{}\n", FEATURES.map(|f| f.dataset_name).join(","));
    for (i, g) in golden.iter().enumerate() {
        csv.push_str(&format!("s{i},{}\n", g.text.join(",")));
    }
    csv.push_str("bad,0.1,-1,20,900,0.1\n");
    std::fs::write(&input, csv).unwrap();
    let run = scorer().arg("score").arg(&input).arg("-o").arg(&output).arg("--explain").output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let mut reader = csv::Reader::from_path(&output).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let mut expected: Vec<String> =
        ["prediction", "probability", "status", "reason", "warnings", "base_value"].map(String::from).into();
    expected.extend(FEATURES.iter().map(|f| format!("contribution_{}", f.api_name)));
    assert_eq!(headers[6..], expected[..]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), golden.len() + 1);
    for (i, (row, g)) in rows.iter().zip(&golden).enumerate() {
        assert_eq!(&row[8], "200", "row {i}");
        let explanation = json!({
            "unit": "log-odds",
            "baseValue": row[11].parse::<f64>().unwrap(),
            "contributions": FEATURES.iter().enumerate()
                .map(|(f, feature)| (feature.api_name.to_owned(), json!(row[12 + f].parse::<f64>().unwrap())))
                .collect::<serde_json::Map<_, _>>(),
        });
        assert_like_shap(&format!("score row {i}"), &explanation, g);
    }
    let rejected = rows.last().unwrap();
    assert_eq!(&rejected[8], "400");
    assert!(rejected.iter().skip(10).all(str::is_empty), "{rejected:?}");
}

#[test]
fn score_explain_on_a_version_1_model_fails_the_file_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("v1.json");
    std::fs::write(&model, version_1_json()).unwrap();
    let input = root().join("samples/wdbc.csv");
    let run = scorer().arg("score").arg(&input).arg("--explain").env("MODEL_PATH", &model).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("explanations are not available for this model"), "{stderr}");
    assert!(run.stdout.is_empty(), "nothing is written");
    // Without --explain the same model scores the file.
    let run = scorer()
        .arg("score")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("o.csv"))
        .env("MODEL_PATH", &model)
        .output()
        .unwrap();
    assert!(run.status.success());
}

fn distributed_map_event(items: Vec<Value>, batch_input: Value) -> String {
    json!({"Items": items, "BatchInput": batch_input}).to_string()
}

fn golden_items(golden: &[Golden]) -> Vec<Value> {
    golden
        .iter()
        .map(|g| {
            let mut item = serde_json::Map::new();
            for (f, v) in FEATURES.iter().zip(&g.text) {
                item.insert(f.dataset_name.to_owned(), json!(v));
            }
            Value::Object(item)
        })
        .collect()
}

#[test]
fn distributed_map_items_carry_shap_contributions_when_batch_input_asks() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let app = App::new(Model::embedded().unwrap(), BatchConfig::from_env().unwrap());
    let golden = golden();
    for (chunk_no, chunk) in golden.chunks(1000).enumerate() {
        let event = distributed_map_event(golden_items(chunk), json!({"explain": true}));
        let reply = serde_json::to_value(rt.block_on(app.handle_json(&event, &Invocation::local())).unwrap()).unwrap();
        let items = reply.as_array().unwrap();
        assert_eq!(items.len(), chunk.len());
        for (i, (item, g)) in items.iter().zip(chunk).enumerate() {
            assert_like_shap(&format!("map batch {chunk_no} item {i}"), &item["explanation"], g);
        }
    }
    // Off, or absent: items as before. "true" as text (Step Functions input) is true.
    for (batch_input, explained) in
        [(json!({}), false), (json!({"explain": false}), false), (json!({"explain": "true"}), true)]
    {
        let event = distributed_map_event(golden_items(&golden[..1]), batch_input.clone());
        let reply = serde_json::to_value(rt.block_on(app.handle_json(&event, &Invocation::local())).unwrap()).unwrap();
        assert_eq!(reply[0].get("explanation").is_some(), explained, "{batch_input}: {reply}");
    }
    let event = distributed_map_event(golden_items(&golden[..1]), json!({"explain": "yes"}));
    let err = rt.block_on(app.handle_json(&event, &Invocation::local())).unwrap_err();
    assert!(err.to_string().contains("'explain' must be true or false"), "{err}");

    let v1 = App::new(version_1_model(), BatchConfig::from_env().unwrap());
    let event = distributed_map_event(golden_items(&golden[..3]), json!({"explain": true}));
    let reply = serde_json::to_value(rt.block_on(v1.handle_json(&event, &Invocation::local())).unwrap()).unwrap();
    for item in reply.as_array().unwrap() {
        assert_eq!(item["status"], "400", "{item}");
        assert!(item["reason"].as_str().unwrap().starts_with("explanations are not available"), "{item}");
        assert!(item.get("explanation").is_none());
    }
}

fn sqs_event(bodies: &[String]) -> String {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({"messageId": format!("explain-{i}"), "receiptHandle": "r", "body": b, "attributes": {},
                   "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"})
        })
        .collect();
    json!({"Records": records}).to_string()
}

async fn results(s3: &aws_sdk_s3::Client, bucket: &str, message: usize) -> Vec<Value> {
    let key = scorer::adapters::sqs::results_key("scored/", &format!("explain-{message}"));
    let got = s3.get_object().bucket(bucket).key(&key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    let text = String::from_utf8(got.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn sqs_observations_with_explain_get_shap_contributions_in_their_results_objects() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-explain-sqs");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let config = BatchConfig::new("incoming/".into(), "scored/".into(), Some(bucket.clone()), None).unwrap();
    let app = App::new(Model::embedded().unwrap(), config.clone()).with_s3_client(s3.clone());
    let golden = golden();
    // Arrays of observations, each asking for its explanation.
    let bodies: Vec<String> = golden
        .chunks(1000)
        .map(|c| format!("[{}]", c.iter().map(|g| body(g, r#""explain":true,"#)).collect::<Vec<_>>().join(",")))
        .collect();
    let reply =
        serde_json::to_value(app.handle_json(&sqs_event(&bodies), &Invocation::local()).await.unwrap()).unwrap();
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    for (m, chunk) in golden.chunks(1000).enumerate() {
        let lines = results(&s3, &bucket, m).await;
        assert_eq!(lines.len(), chunk.len());
        for (i, (line, g)) in lines.iter().zip(chunk).enumerate() {
            assert_like_shap(&format!("sqs message {m} line {i}"), &line["explanation"], g);
        }
    }

    // Without the flag, no explanation; a bad flag or an invalid id is a 400 line naming the field.
    let g = &golden[0];
    let bodies =
        [body(g, r#""id":"lab-1","#), body(g, r#""id":"lab-2","explain":"yes","#), body(g, r#""id":{"a":1},"#)];
    let reply =
        serde_json::to_value(app.handle_json(&sqs_event(&bodies), &Invocation::local()).await.unwrap()).unwrap();
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    let plain = &results(&s3, &bucket, 0).await[0];
    assert_eq!((plain["status"].clone(), plain.get("explanation")), (json!("200"), None), "{plain}");
    let bad_flag = &results(&s3, &bucket, 1).await[0];
    assert_eq!(bad_flag["status"], "400");
    assert_eq!(bad_flag["id"], "lab-2");
    assert_eq!(bad_flag["errors"][0]["field"], "explain", "{bad_flag}");
    assert_eq!(bad_flag["errors"][0]["code"], "invalid_explain", "{bad_flag}");
    let bad_id = &results(&s3, &bucket, 2).await[0];
    assert_eq!(bad_id["status"], "400");
    assert_eq!(bad_id["errors"], json!([{"field": "id", "code": "invalid_id", "message": bad_id["reason"]}]));

    // A version 1 model: each observation asking for an explanation is a 400 line.
    let v1 = App::new(version_1_model(), config).with_s3_client(s3.clone());
    let bodies = [body(g, r#""explain":true,"#), body(g, "")];
    let reply = serde_json::to_value(v1.handle_json(&sqs_event(&bodies), &Invocation::local()).await.unwrap()).unwrap();
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    let line = &results(&s3, &bucket, 0).await[0];
    assert_eq!(line["status"], "400");
    assert_eq!(line["errors"][0]["code"], "explanations_unavailable", "{line}");
    assert_eq!(results(&s3, &bucket, 1).await[0]["status"], "200");
}

#[tokio::test]
async fn explain_true_on_lambda_gives_s3_files_the_columns_score_explain_writes() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-explain-s3");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let sample = root().join("samples/bad-rows.csv");
    let body = aws_sdk_s3::primitives::ByteStream::from(std::fs::read(&sample).unwrap());
    s3.put_object().bucket(&bucket).key("incoming/x.csv").body(body).send().await.unwrap();

    let api = crate::runtime_api::RuntimeApi::start().await;
    let mut env = crate::helpers::aws_env(&endpoint);
    env.push(("EXPLAIN", "true".into()));
    let _f = crate::helpers::start_lambda(&api, &env);
    let answer = api.invoke(&crate::helpers::s3_event(&[(&bucket, "incoming/x.csv")])).await.response();
    assert_eq!(answer["files"][0]["status"], "scored", "{answer}");
    let got = s3.get_object().bucket(&bucket).key("scored/x.csv").send().await.unwrap();
    let scored = got.body.collect().await.unwrap().into_bytes().to_vec();
    let local = scorer().arg("score").arg(&sample).args(["-o", "-", "--quiet", "--explain"]).output().unwrap();
    assert!(local.status.success());
    assert_eq!(String::from_utf8_lossy(&scored), String::from_utf8_lossy(&local.stdout));
    assert!(String::from_utf8_lossy(&scored).lines().next().unwrap().ends_with(",contribution_worstConcavePoints"));
}

#[tokio::test]
async fn an_explain_setting_other_than_true_or_false_stops_the_function_at_start_up() {
    let api = crate::runtime_api::RuntimeApi::start().await;
    let out = scorer().envs(api.lambda_env()).env("EXPLAIN", "yes").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EXPLAIN must be true or false"), "{out:?}");
}
