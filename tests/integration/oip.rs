//! The Open Inference Protocol (issue 23) through the Function URL event path
//! (`App::handle_json`, as the Lambda runtime calls it) and `scorer serve`:
//! every golden row as one `[N, F]` tensor, JSON and binary, per-feature
//! tensors, the explanation output, malformed requests, another export.
//! tritonclient drives the same routes from tests/oip_tritonclient.py.

use base64::Engine as _;
use scorer::config::BatchConfig;
use scorer::contract::invocation::Invocation;
use scorer::core::model::Model;
use scorer::handler::App;
use serde_json::{json, Value};

use crate::goldens::{assert_like_shap, assert_like_sklearn, Export, GoldenRow};
use crate::helpers::{function_url_event, start_serve_with};

const INFER: &str = "/v2/models/breast-cancer-gbc/infer";

fn app(model: Model) -> App {
    App::new(model, BatchConfig::from_env().unwrap())
}

/// A Function URL reply: status, headers, and the body's bytes (base64 decoded when so marked).
struct Reply {
    status: i64,
    headers: Value,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn call(app: &App, event: &Value) -> Reply {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let reply = rt.block_on(app.handle_json(&event.to_string(), &Invocation::local())).expect("a Function URL answer");
    let reply = serde_json::to_value(reply).unwrap();
    let status = reply["statusCode"].as_i64().unwrap();
    assert!(status < 500, "{reply}");
    let body = reply["body"].as_str().unwrap();
    let body = if reply["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    } else {
        body.as_bytes().to_vec()
    };
    Reply { status, headers: reply["headers"].clone(), body }
}

fn infer_event(path: &str, body: &[u8], header_length: Option<usize>) -> Value {
    let mut e = function_url_event("POST", path, None);
    // As a Function URL passes a body without a text Content-Type: base64.
    e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    e["isBase64Encoded"] = json!(true);
    if let Some(n) = header_length {
        e["headers"]["inference-header-content-length"] = json!(n.to_string());
    }
    e
}

fn matrix_request(rows: &[GoldenRow], extra: Value) -> Value {
    let f = rows[0].values.len();
    let data: Vec<f64> = rows.iter().flat_map(|g| g.values.iter().copied()).collect();
    let mut request = json!({
        "id": "batch-1",
        "inputs": [{"name": "input-0", "shape": [rows.len(), f], "datatype": "FP64", "data": data}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}, {"name": "explanation"}],
    });
    request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    request
}

/// The outputs of an answer (JSON, or JSON then binary tensors) as numbers by name.
fn outputs(reply: &Reply) -> (Value, Vec<(String, Vec<f64>)>) {
    let (json_part, mut binary) = match reply.headers.get("inference-header-content-length") {
        Some(n) => {
            assert_eq!(reply.headers["content-type"], "application/octet-stream");
            let n: usize = n.as_str().unwrap().parse().unwrap();
            (&reply.body[..n], &reply.body[n..])
        }
        None => {
            assert_eq!(reply.headers["content-type"], "application/json");
            (&reply.body[..], &[][..])
        }
    };
    let answer: Value = serde_json::from_slice(json_part).unwrap();
    let mut out = Vec::new();
    for o in answer["outputs"].as_array().unwrap() {
        let name = o["name"].as_str().unwrap().to_owned();
        let values: Vec<f64> = match o["parameters"]["binary_data_size"].as_u64() {
            Some(size) => {
                let (bytes, rest) = binary.split_at(size as usize);
                binary = rest;
                bytes
                    .chunks(8)
                    .map(|c| {
                        let b: [u8; 8] = c.try_into().unwrap();
                        if o["datatype"] == "INT64" {
                            i64::from_le_bytes(b) as f64
                        } else {
                            f64::from_le_bytes(b)
                        }
                    })
                    .collect()
            }
            None => o["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect(),
        };
        out.push((name, values));
    }
    assert!(binary.is_empty(), "bytes left after the outputs");
    (answer, out)
}

fn output<'a>(outputs: &'a [(String, Vec<f64>)], name: &str) -> &'a [f64] {
    &outputs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no output {name}")).1
}

fn assert_like_goldens(what: &str, rows: &[GoldenRow], outputs: &[(String, Vec<f64>)], base: f64) {
    let (labels, proba, explanation) =
        (output(outputs, "predict"), output(outputs, "predict_proba"), output(outputs, "explanation"));
    let f = rows[0].values.len();
    assert_eq!((labels.len(), proba.len(), explanation.len()), (rows.len(), 2 * rows.len(), f * rows.len()));
    for (i, g) in rows.iter().enumerate() {
        assert_like_sklearn(what, labels[i] as u8, proba[2 * i + 1], g);
        assert_eq!(proba[2 * i], 1.0 - proba[2 * i + 1], "{what}: predict_proba is [1 - p, p]");
        assert_like_shap(what, base, &explanation[i * f..(i + 1) * f], g);
    }
}

fn dataset_rows(export: &Export) -> Vec<GoldenRow> {
    export.golden_rows().into_iter().filter(|g| g.set == "dataset").collect()
}

#[test]
fn every_dataset_row_as_one_tensor_answers_like_sklearn_and_shap_and_bit_for_bit_like_post_root() {
    let export = Export::shipped();
    let rows = dataset_rows(&export);
    assert_eq!(rows.len(), 569);
    let app = app(Model::embedded().unwrap());
    let request = serde_json::to_vec(&matrix_request(&rows, json!({}))).unwrap();
    let reply = call(&app, &infer_event(INFER, &request, None));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let (answer, json_outputs) = outputs(&reply);
    assert_eq!(answer["id"], "batch-1");
    assert_eq!(answer["model_name"], "breast-cancer-gbc");
    assert_eq!(answer["model_version"], app.model().info().version.as_str());
    assert_eq!(answer["outputs"][1]["shape"], json!([569, 2]));
    assert_eq!(answer["outputs"][2]["shape"], json!([569, 5]));
    let base = answer["outputs"][2]["parameters"]["base_value"].as_f64().unwrap();
    assert_like_goldens("OIP JSON", &rows, &json_outputs, base);

    // The seed route gives the very same numbers for each row.
    let names = export.api_names();
    let (proba, explanation) = (output(&json_outputs, "predict_proba"), output(&json_outputs, "explanation"));
    for (i, g) in rows.iter().enumerate() {
        let body: serde_json::Map<String, Value> =
            names.iter().cloned().zip(g.values.iter().map(|v| json!(v))).collect();
        let mut event = function_url_event("POST", "/", Some(&Value::Object(body).to_string()));
        event["rawQueryString"] = json!("explain=true");
        let seed = call(&app, &event).json();
        assert_eq!(seed["probability"].as_f64().unwrap().to_bits(), proba[2 * i + 1].to_bits(), "row {i}");
        for (j, name) in names.iter().enumerate() {
            let phi = seed["explanation"]["contributions"][name].as_f64().unwrap();
            assert_eq!(phi.to_bits(), explanation[i * names.len() + j].to_bits(), "row {i} {name}");
        }
        assert_eq!(seed["explanation"]["baseValue"].as_f64().unwrap().to_bits(), base.to_bits());
    }

    // Binary tensors in and out (tritonclient's default) give the same bits.
    let data: Vec<u8> = rows.iter().flat_map(|g| g.values.iter().flat_map(|v| v.to_le_bytes())).collect();
    let header = json!({
        "id": "batch-1",
        "inputs": [{"name": "input-0", "shape": [569, 5], "datatype": "FP64", "parameters": {"binary_data_size": data.len()}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": true}}, {"name": "predict_proba", "parameters": {"binary_data": true}}, {"name": "explanation"}],
    });
    let mut body = serde_json::to_vec(&header).unwrap();
    let header_length = body.len();
    body.extend_from_slice(&data);
    let reply = call(&app, &infer_event(INFER, &body, Some(header_length)));
    assert_eq!(reply.status, 200);
    let (_, binary_outputs) = outputs(&reply);
    assert_eq!(binary_outputs, json_outputs);

    // One tensor per feature, as MLServer's pandas codec sends them, in another order and naming.
    let mut inputs: Vec<Value> = export
        .dataset_names()
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let column: Vec<f64> = rows.iter().map(|g| g.values[j]).collect();
            json!({"name": name, "shape": [569, 1], "datatype": "FP64", "data": column})
        })
        .collect();
    inputs.reverse();
    let request = json!({"id": "batch-1", "parameters": {"content_type": "pd"}, "inputs": inputs,
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}, {"name": "explanation"}]});
    let reply = call(&app, &infer_event(INFER, &serde_json::to_vec(&request).unwrap(), None));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(outputs(&reply).1, json_outputs);
}

#[test]
fn metadata_health_and_the_default_outputs_follow_the_protocol() {
    let app = app(Model::embedded().unwrap());
    let version = app.model().info().version.clone();
    let get = |path: &str| call(&app, &function_url_event("GET", path, None));
    for path in ["/v2/health/live", "/v2/health/ready", "/v2/models/breast-cancer-gbc/ready"] {
        assert_eq!(get(path).status, 200, "{path}");
    }
    assert_eq!(get("/v2").json()["extensions"], json!(["binary_tensor_data"]));
    for path in ["/v2/models/breast-cancer-gbc".to_owned(), format!("/v2/models/breast-cancer-gbc/versions/{version}")]
    {
        let m = get(&path).json();
        assert_eq!(m["name"], "breast-cancer-gbc");
        assert_eq!(m["versions"], json!([version]));
        let inputs: Vec<&str> = m["inputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(inputs, Export::shipped().api_names());
        let outputs: Vec<&str> = m["outputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(outputs, ["predict", "predict_proba", "explanation"]);
    }
    // No outputs named: predict and predict_proba; binary_data_output makes both binary.
    let request =
        r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","data":[0.1471,25.38,17.33,2019.0,0.2654]}]}"#;
    let reply = call(&app, &infer_event(INFER, request.as_bytes(), None));
    let answer = reply.json();
    let names: Vec<&str> = answer["outputs"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["predict", "predict_proba"]);
    assert!(answer.get("id").is_none());
    let request = request.replace(r#"}]}"#, r#"}],"parameters":{"binary_data_output":true}}"#);
    let reply = call(&app, &infer_event(INFER, request.as_bytes(), None));
    assert!(reply.headers.get("inference-header-content-length").is_some());
    let (_, got) = outputs(&reply);
    assert_eq!(output(&got, "predict"), [1.0]);
    // A range warning names the feature, never the value.
    let far = r#"{"inputs":[{"name":"x","shape":[2,5],"datatype":"FP64","data":[[0.1471,25.38,17.33,2019.0,0.2654],[0.1471,25.38,17.33,2019.0,0.9876]]}]}"#;
    let answer = call(&app, &infer_event(INFER, far.as_bytes(), None)).json();
    assert_eq!(answer["parameters"]["range_warnings"], "row 1 (worstConcavePoints)");
}

#[test]
fn malformed_requests_get_the_protocols_error_body_and_never_a_5xx() {
    let app = app(Model::embedded().unwrap());
    let row = "[0.1471,25.38,17.33,2019.0,0.2654]";
    let tensor = |shape: &str, datatype: &str, data: &str| {
        format!(r#"{{"inputs":[{{"name":"x","shape":{shape},"datatype":"{datatype}","data":{data}}}]}}"#)
    };
    let big = format!("[{}]", vec![row; 10_001].join(","));
    // (what, body, Inference-Header-Content-Length as bytes past the body's end, status, message)
    let cases: Vec<(&str, String, Option<usize>, i64, &str)> = vec![
        ("wrong shape", tensor("[1,4]", "FP64", "[1,2,3,4]"), None, 400, "'shape' must be [N, 5]"),
        ("wrong datatype", tensor("[1,5]", "BYTES", row), None, 400, "FP64 or FP32"),
        ("data length", tensor("[2,5]", "FP64", row), None, 400, "'data' has 5 values but 'shape' [2, 5] holds 10"),
        (
            "negative",
            tensor("[1,5]", "FP64", "[0.1471,-25.38,17.33,2019.0,0.2654]"),
            None,
            400,
            "row 0: 'worstRadius' must not be negative",
        ),
        ("N over the bound", tensor("[10001,5]", "FP64", &big), None, 400, "at most 10000 rows"),
        ("not JSON", "{\"inputs\":".into(), None, 400, "not valid JSON"),
        ("header length past the body", tensor("[1,5]", "FP64", row), Some(1), 400, "Inference-Header-Content-Length"),
        (
            "missing binary bytes",
            r#"{"inputs":[{"name":"x","shape":[1,5],"datatype":"FP64","parameters":{"binary_data_size":40}}]}"#.into(),
            Some(0),
            400,
            "binary data",
        ),
    ];
    for (what, body, header_length, status, message) in cases {
        // The header length as so many bytes past the body's end.
        let header_length = header_length.map(|past| body.len() + past);
        let reply = call(&app, &infer_event(INFER, body.as_bytes(), header_length));
        assert_eq!(reply.status, status, "{what}");
        let answer = reply.json();
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("{what}: {answer}"));
        assert_eq!(answer.as_object().unwrap().len(), 1, "{what}: only 'error'");
        assert!(error.contains(message), "{what}: {error}");
        assert!(!error.contains("25.38") && !error.contains("2019"), "{what}: no value in {error}");
    }
    let version = app.model().info().version.clone();
    for (method, path, status) in [
        ("POST", "/v2/models/other/infer", 404),
        ("POST", "/v2/models/breast-cancer-gbc/versions/other/infer", 404),
        ("GET", "/v2/models/other", 404),
        ("GET", "/v2/models/other/ready", 404),
        ("GET", "/v2/nothing", 404),
        ("GET", &format!("/v2/models/breast-cancer-gbc/versions/{version}/infer"), 405),
        ("DELETE", "/v2/health/live", 405),
    ] {
        let reply = call(&app, &function_url_event(method, path, Some(&tensor("[1,5]", "FP64", row))));
        assert_eq!(reply.status, status, "{method} {path}");
        assert!(reply.json()["error"].is_string(), "{method} {path}");
    }
}

#[test]
fn serve_answers_the_protocol_and_the_seven_feature_export_its_own_without_a_rebuild() {
    let export = Export::example("breast-cancer-seven");
    let (_server, url) = start_serve_with(&[("MODEL_PATH", export.path.as_os_str())]);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let name = &export.name;
    let mut r = agent.get(&format!("{url}/v2/models/{name}")).call().unwrap();
    let m: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let inputs: Vec<String> =
        m["inputs"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().into()).collect();
    assert_eq!(inputs, export.api_names());
    assert_eq!(m["outputs"][2]["shape"], json!([-1, 7]));

    let rows = dataset_rows(&export);
    let request = serde_json::to_vec(&matrix_request(&rows, json!({}))).unwrap();
    // No Content-Type, as tritonclient sends it.
    let mut r = agent.post(&format!("{url}/v2/models/{name}/infer")).send(&request[..]).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.body_mut().read_to_vec().unwrap();
    let reply = Reply { status: 200, headers: json!({"content-type": "application/json"}), body };
    let (answer, got) = outputs(&reply);
    let base = answer["outputs"][2]["parameters"]["base_value"].as_f64().unwrap();
    assert_like_goldens("seven-feature export through serve", &rows, &got, base);

    // A body larger than the seed's 16 KiB and a 413 past the bound.
    assert!(request.len() > 16 * 1024);
    let huge = vec![b' '; 6 * 1024 * 1024 + 1];
    let mut r = agent.post(&format!("{url}/v2/models/{name}/infer")).send(&huge[..]).unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let answer: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(answer["error"].is_string(), "{answer}");
}

/// Runs tests/oip_tritonclient.py (the real `tritonclient[http]`, installed by
/// tests/run.sh) against `host_port` serving `export`.
async fn tritonclient(host_port: &str, export: &Export) {
    let python = crate::helpers::root().join("target/test-tools/tritonclient/bin/python");
    assert!(
        python.exists(),
        "{} is missing: tests/run.sh installs tritonclient (tool_venv tritonclient)",
        python.display()
    );
    let mut command = std::process::Command::new(python);
    command.arg(crate::helpers::root().join("tests/oip_tritonclient.py")).args([
        host_port.as_ref(),
        export.path.as_os_str(),
        export.golden_dir.as_os_str(),
    ]);
    // The Function URL front runs on this runtime: wait for the client off it.
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "tritonclient against {host_port} ({}): {stdout}\n{stderr}", export.name);
    eprintln!("{}: {}", export.name, stdout.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_gets_sklearns_and_shaps_answers_from_serve_for_both_exports() {
    for export in [Export::shipped(), Export::example("breast-cancer-seven")] {
        let (_server, url) = start_serve_with(&[("MODEL_PATH", export.path.as_os_str())]);
        tritonclient(url.strip_prefix("http://").unwrap(), &export).await;
    }
}

/// A Function URL in front of the real binary running as a Lambda function:
/// each HTTP request becomes a payload 2.0 event (the body base64-encoded,
/// as a Function URL passes a body without a text Content-Type, and the
/// header names lower-cased) through the Runtime API, and the function's
/// answer becomes the HTTP response (`isBase64Encoded` decoded).
async fn function_url_front(api: std::sync::Arc<crate::runtime_api::RuntimeApi>) -> std::net::SocketAddr {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let api = std::sync::Arc::clone(&api);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let api = std::sync::Arc::clone(&api);
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let mut event = function_url_event(parts.method.as_str(), parts.uri.path(), None);
                        event["rawQueryString"] = json!(parts.uri.query().unwrap_or(""));
                        event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&body));
                        event["isBase64Encoded"] = json!(true);
                        let headers: serde_json::Map<String, Value> = parts
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), json!(v.to_str().unwrap_or(""))))
                            .collect();
                        event["headers"] = Value::Object(headers);
                        let reply = api.invoke(&event).await.response();
                        let text = reply["body"].as_str().unwrap_or("");
                        let bytes = if reply["isBase64Encoded"] == true {
                            base64::engine::general_purpose::STANDARD.decode(text).unwrap()
                        } else {
                            text.as_bytes().to_vec()
                        };
                        let mut response = hyper::Response::new(Full::new(bytes::Bytes::from(bytes)));
                        *response.status_mut() =
                            hyper::StatusCode::from_u16(reply["statusCode"].as_u64().unwrap() as u16).unwrap();
                        for (k, v) in reply["headers"].as_object().unwrap() {
                            response.headers_mut().insert(
                                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                hyper::header::HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
                            );
                        }
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_gets_sklearns_and_shaps_answers_from_the_lambda_function_url_route() {
    let api = std::sync::Arc::new(crate::runtime_api::RuntimeApi::start().await);
    let addr = function_url_front(std::sync::Arc::clone(&api)).await;
    for export in [Export::shipped(), Export::example("breast-cancer-seven")] {
        let _function = crate::helpers::start_lambda(&api, &[("MODEL_PATH", export.path.display().to_string())]);
        tritonclient(&addr.to_string(), &export).await;
    }
}
