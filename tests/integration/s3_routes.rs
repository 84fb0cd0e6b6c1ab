//! A deleted object through the SQS route against moto (the direct and Batch
//! Operations routes are in `s3.rs` and `fanout.rs`): a `missing` summary,
//! and the message is not retried.

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

use crate::helpers::{aws_env, moto_endpoint, s3_client, s3_event, start_lambda, unique_bucket};
use crate::runtime_api::RuntimeApi;

#[tokio::test]
async fn a_deleted_object_announced_through_sqs_gets_a_missing_summary_and_is_not_retried() {
    let endpoint = moto_endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_bucket("scorer-routes");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    // Created, announced, then deleted before the message is handled.
    s3.put_object()
        .bucket(&bucket)
        .key("incoming/gone.csv")
        .body(ByteStream::from_static(b"a\n"))
        .send()
        .await
        .unwrap();
    s3.delete_object().bucket(&bucket).key("incoming/gone.csv").send().await.unwrap();

    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &aws_env(&endpoint));
    let body = s3_event(&[(&bucket, "incoming/gone.csv")]).to_string();
    let event = json!({"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": body, "attributes": {},
                                    "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lab"}]});
    let answer = api.invoke(&event).await.response();
    assert_eq!(answer["batchItemFailures"], json!([]), "nothing to retry: {answer}");

    let summary = s3.get_object().bucket(&bucket).key("scored/gone.csv.summary.json").send().await;
    let summary: Value =
        serde_json::from_slice(&summary.expect("a summary").body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(
        (summary["status"].as_str(), summary["reason"].as_str()),
        (Some("missing"), Some("the object no longer exists"))
    );
    assert!(s3.head_object().bucket(&bucket).key("scored/gone.csv").send().await.is_err(), "no output");
}
