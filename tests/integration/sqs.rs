//! Queue messages: the real binary as a Lambda fed each SQS sample, and the
//! worker against moto's SQS (S3 -> SQS notifications, a poison message and
//! its dead-letter queue, SIGTERM mid-batch).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use scorer::adapters::sqs::results_key;
use serde_json::{json, Value};

use crate::helpers::{
    aws_env, moto_endpoint, root, s3_client, sample_event, scorer, sqs_client, start_lambda, unique_bucket, wait_exit,
    Running,
};
use crate::runtime_api::RuntimeApi;

async fn new_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = unique_bucket("scorer-sqs");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

async fn new_queue(sqs: &aws_sdk_sqs::Client, name: &str, attributes: &[(QueueAttributeName, String)]) -> String {
    let mut create = sqs.create_queue().queue_name(unique_bucket(name));
    for (k, v) in attributes {
        create = create.attributes(k.clone(), v);
    }
    create.send().await.unwrap().queue_url.unwrap()
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attrs =
        sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await.unwrap();
    attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone()
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    let attrs =
        sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send().await.unwrap();
    let a = attrs.attributes.unwrap();
    let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
    (n(QueueAttributeName::ApproximateNumberOfMessages), n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

async fn get_text(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    let got = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    Some(String::from_utf8(got.body.collect().await.unwrap().into_bytes().to_vec()).unwrap())
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("every results line is complete JSON")).collect()
}

fn failures(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

fn message_ids(event: &Value) -> Vec<String> {
    event["Records"].as_array().unwrap().iter().map(|r| r["messageId"].as_str().unwrap().to_owned()).collect()
}

/// The results of these messages, in order: one object per message.
async fn results_of(s3: &aws_sdk_s3::Client, bucket: &str, ids: &[&str]) -> Vec<Value> {
    let mut all = Vec::new();
    for id in ids {
        let key = results_key("scored/", id);
        all.extend(lines(&get_text(s3, bucket, &key).await.unwrap_or_else(|| panic!("results object {key}"))));
    }
    all
}

#[tokio::test]
async fn every_sqs_sample_gives_its_results_and_exactly_the_right_failures() {
    let endpoint = moto_endpoint();
    let (s3, sqs) = (s3_client(&endpoint), sqs_client(&endpoint));
    let bucket = new_bucket(&s3).await;
    let wdbc = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
    s3.put_object().bucket(&bucket).key("incoming/wdbc.csv").body(ByteStream::from(wdbc)).send().await.unwrap();
    let notices = new_queue(&sqs, "results", &[]).await;
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    env.push(("RESULT_QUEUE_URL", notices.clone()));
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &env);

    // One observation.
    let event = sample_event("sqs-observation.json", &bucket);
    let ids = message_ids(&event);
    let label = crate::goldens::shipped_golden_label_of_body(event["Records"][0]["body"].as_str().unwrap());
    assert_eq!(failures(&api.invoke(&event).await.response()), Vec::<String>::new());
    let r = results_of(&s3, &bucket, &[&ids[0]]).await;
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0]["id"].clone(), r[0]["status"].clone(), r[0]["prediction"].clone()),
        (json!("lab-0001"), json!("200"), json!(label))
    );
    assert_eq!(r[0]["messageId"], ids[0].as_str());
    let notice = sqs.receive_message().queue_url(&notices).wait_time_seconds(1).send().await.unwrap();
    let notice: Value = serde_json::from_str(notice.messages()[0].body().unwrap()).unwrap();
    assert_eq!(notice["output"]["key"], results_key("scored/", &ids[0]));
    assert_eq!(notice["messageId"], ids[0].as_str());
    assert!(notice["noticeId"].as_str().is_some_and(|n| n.len() == 32), "{notice}");
    assert_eq!((notice["kind"].clone(), notice["scored"].clone()), (json!("observations"), json!(1)));

    // An array with ids: three results, in order; one outside the training range.
    let event = sample_event("sqs-observations-array.json", &bucket);
    let ids = message_ids(&event);
    assert!(failures(&api.invoke(&event).await.response()).is_empty());
    let r = results_of(&s3, &bucket, &[&ids[0]]).await;
    let got: Vec<(&str, u64)> = r.iter().map(|l| (l["id"].as_str().unwrap(), l["index"].as_u64().unwrap())).collect();
    assert_eq!(got, [("lab-0001", 0), ("lab-0002", 1), ("lab-0004", 2)]);
    assert_eq!(r[2]["warnings"].as_array().unwrap().len(), 1);

    // Valid and invalid observations: invalid ones are 400 results, not retries.
    let event = sample_event("sqs-mixed-valid-invalid.json", &bucket);
    let ids = message_ids(&event);
    assert!(failures(&api.invoke(&event).await.response()).is_empty());
    let r = results_of(&s3, &bucket, &[&ids[0], &ids[1], &ids[2]]).await;
    let status: Vec<&str> = r.iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["200", "400", "200", "400"]);
    let errors: Vec<&str> = r[1]["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(errors, ["negative", "not_a_number", "missing"]);

    // S3 notification inside SQS, and EventBridge: the batch pipeline, unchanged.
    for sample in ["sqs-s3-notification.json", "sqs-eventbridge-s3.json"] {
        let _ = s3.delete_object().bucket(&bucket).key("scored/wdbc.csv").send().await;
        assert!(failures(&api.invoke(&sample_event(sample, &bucket)).await.response()).is_empty(), "{sample}");
        let scored =
            get_text(&s3, &bucket, "scored/wdbc.csv").await.unwrap_or_else(|| panic!("{sample}: scored/wdbc.csv"));
        assert_eq!(scored.lines().count(), 570, "{sample}");
    }

    // s3:TestEvent: acknowledged, nothing else.
    assert!(failures(&api.invoke(&sample_event("sqs-s3-test-event.json", &bucket)).await.response()).is_empty());

    // Garbage: exactly the two unintelligible messages are retried.
    let event = sample_event("sqs-garbage.json", &bucket);
    let ids = message_ids(&event);
    assert_eq!(failures(&api.invoke(&event).await.response()), [ids[0].clone(), ids[1].clone()]);
    assert_eq!(results_of(&s3, &bucket, &[&ids[2]]).await.len(), 1);
}

#[tokio::test]
async fn when_s3_is_unavailable_every_message_of_the_batch_is_retried() {
    let endpoint = moto_endpoint();
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", "no-such-bucket-anywhere".into()));
    let api = RuntimeApi::start().await;
    let _f = start_lambda(&api, &env);
    let event = sample_event("sqs-garbage.json", "no-such-bucket-anywhere");
    assert_eq!(failures(&api.invoke(&event).await.response()), message_ids(&event));
    let event = sample_event("sqs-s3-notification.json", "no-such-bucket-anywhere");
    assert_eq!(failures(&api.invoke(&event).await.response()), message_ids(&event));
}

fn start_worker(env: &[(&str, String)], queue: &str, extra: &[&str]) -> Running {
    let mut cmd = scorer();
    cmd.args(["worker", "--queue-url", queue]).args(extra).stdout(Stdio::null());
    cmd.stderr(if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() });
    for (k, v) in env {
        cmd.env(k, v);
    }
    Running { child: cmd.spawn().expect("start the worker") }
}

#[tokio::test]
async fn the_worker_scores_csv_files_announced_by_s3_notifications_and_drains_the_queue() {
    let endpoint = moto_endpoint();
    let (s3, sqs) = (s3_client(&endpoint), sqs_client(&endpoint));
    let bucket = new_bucket(&s3).await;
    let queue = new_queue(&sqs, "uploads", &[]).await;
    let arn = queue_arn(&sqs, &queue).await;
    let filter = aws_sdk_s3::types::NotificationConfigurationFilter::builder()
        .key(
            aws_sdk_s3::types::S3KeyFilter::builder()
                .filter_rules(aws_sdk_s3::types::FilterRule::builder().name("prefix".into()).value("incoming/").build())
                .filter_rules(aws_sdk_s3::types::FilterRule::builder().name("suffix".into()).value(".csv").build())
                .build(),
        )
        .build();
    let config = aws_sdk_s3::types::NotificationConfiguration::builder()
        .queue_configurations(
            aws_sdk_s3::types::QueueConfiguration::builder()
                .queue_arn(arn)
                .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                .filter(filter)
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration().bucket(&bucket).notification_configuration(config).send().await.unwrap();
    let wdbc = std::fs::read(root().join("samples/wdbc.csv")).unwrap();
    s3.put_object().bucket(&bucket).key("incoming/lab 3/wdbc é.csv").body(ByteStream::from(wdbc)).send().await.unwrap();

    let mut worker = start_worker(&aws_env(&endpoint), &queue, &["--wait-seconds", "1", "--max-empty-receives", "2"]);
    assert!(wait_exit(&mut worker, Duration::from_secs(60)).await.success());
    let scored = get_text(&s3, &bucket, "scored/lab 3/wdbc é.csv").await.expect("the scored file");
    assert_eq!(scored.lines().count(), 570);
    assert_eq!(queue_depth(&sqs, &queue).await, (0, 0), "the queue is drained");
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dead_letter_queue_and_valid_ones_are_handled_once() {
    let endpoint = moto_endpoint();
    let (s3, sqs) = (s3_client(&endpoint), sqs_client(&endpoint));
    let bucket = new_bucket(&s3).await;
    let dlq = new_queue(&sqs, "dlq", &[]).await;
    let redrive = json!({"deadLetterTargetArn": queue_arn(&sqs, &dlq).await, "maxReceiveCount": "2"}).to_string();
    let queue = new_queue(
        &sqs,
        "lab",
        &[(QueueAttributeName::RedrivePolicy, redrive), (QueueAttributeName::VisibilityTimeout, "1".into())],
    )
    .await;
    let body = |id: &str| {
        json!({"id": id, "meanConcavePoints": 0.05, "worstRadius": 15.0, "worstTexture": 20.0, "worstArea": 700.0, "worstConcavePoints": 0.1})
            .to_string()
    };
    for id in ["v1", "v2", "v3"] {
        sqs.send_message().queue_url(&queue).message_body(body(id)).send().await.unwrap();
    }
    sqs.send_message().queue_url(&queue).message_body("%%% not a lab message %%%").send().await.unwrap();

    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    let mut worker = start_worker(
        &env,
        &queue,
        &["--wait-seconds", "1", "--visibility-timeout", "1", "--max-messages", "1", "--max-empty-receives", "4"],
    );
    assert!(wait_exit(&mut worker, Duration::from_secs(90)).await.success());

    let dead = sqs.receive_message().queue_url(&dlq).max_number_of_messages(10).send().await.unwrap();
    let dead: Vec<&str> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(dead, ["%%% not a lab message %%%"]);
    assert_eq!(queue_depth(&sqs, &queue).await, (0, 0));

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("scored/sqs/").send().await.unwrap();
    for object in listed.contents() {
        for line in lines(&get_text(&s3, &bucket, object.key().unwrap()).await.unwrap()) {
            *seen.entry(line["id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    assert_eq!(seen, BTreeMap::from([("v1".into(), 1), ("v2".into(), 1), ("v3".into(), 1)]));
}

#[tokio::test]
async fn sigterm_mid_batch_finishes_what_is_in_flight_and_loses_nothing() {
    let endpoint = moto_endpoint();
    let (s3, sqs) = (s3_client(&endpoint), sqs_client(&endpoint));
    let bucket = new_bucket(&s3).await;
    let queue = new_queue(&sqs, "term", &[(QueueAttributeName::VisibilityTimeout, "2".into())]).await;
    let total = 40;
    for i in 0..total {
        let body = json!({"id": format!("t{i}"), "meanConcavePoints": 0.05, "worstRadius": 15.0, "worstTexture": 20.0,
                          "worstArea": 700.0, "worstConcavePoints": 0.1});
        sqs.send_message().queue_url(&queue).message_body(body.to_string()).send().await.unwrap();
    }
    let mut env = aws_env(&endpoint);
    env.push(("OUTPUT_BUCKET", bucket.clone()));
    // Its logs (stderr) tell when a batch is handled: the test stops it after
    // the second, not after some wall-clock time.
    let mut cmd = crate::helpers::scorer();
    cmd.args(["worker", "--queue-url", &queue])
        .args(["--wait-seconds", "1", "--max-messages", "2", "--concurrency", "1", "--visibility-timeout", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut worker = Running { child: cmd.spawn().expect("start the worker") };
    let stderr = worker.child.stderr.take().unwrap();
    let (handled_tx, mut handled) = tokio::sync::mpsc::unbounded_channel::<()>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("SQS batch handled") && handled_tx.send(()).is_err() {
                break;
            }
        }
    });
    for _ in 0..2 {
        let next = tokio::time::timeout(Duration::from_secs(30), handled.recv()).await;
        assert!(matches!(next, Ok(Some(()))), "the worker handled a batch");
    }
    let pid = worker.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = wait_exit(&mut worker, Duration::from_secs(30)).await;
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");

    // Every message is either in a complete results object, or still queued.
    // (Results objects are under sqs/; the batches' drift summaries beside them.)
    let mut scored = std::collections::BTreeSet::new();
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("scored/sqs/").send().await.unwrap();
    for object in listed.contents() {
        for line in lines(&get_text(&s3, &bucket, object.key().unwrap()).await.unwrap()) {
            scored.insert(line["id"].as_str().unwrap().to_owned());
        }
    }
    // A receive cut short by the shutdown may have hidden messages for one
    // visibility timeout (2 s): they come back, they are not lost. Receive
    // (long polling) until every message is accounted for, within a bound.
    let mut queued = std::collections::BTreeSet::new();
    let started = Instant::now();
    while scored.union(&queued).count() < total && started.elapsed() < Duration::from_secs(30) {
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in got.messages() {
            let v: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            queued.insert(v["id"].as_str().unwrap().to_owned());
            sqs.delete_message().queue_url(&queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    // Two batches of two were handled before the signal; 36 messages cannot
    // all have been handled in the moment it took to send it.
    assert!(scored.len() >= 4 && scored.len() < total, "stopped mid-stream: {} scored", scored.len());
    let all: std::collections::BTreeSet<String> = scored.union(&queued).cloned().collect();
    assert_eq!(all.len(), total, "nothing lost: {} scored + {} queued", scored.len(), queued.len());
    assert!(scored.intersection(&queued).next().is_none(), "a scored message was left in the queue");
}
