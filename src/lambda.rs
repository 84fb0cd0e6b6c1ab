//! Running as an AWS Lambda function: the runtime loop hands each event to
//! [`App::handle`].

use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use tracing::Instrument;

use crate::contract::invocation::Invocation;
use crate::handler::{App, Event, InvocationError};
use crate::telemetry;
use lambda_runtime::{service_fn, LambdaEvent};

/// Variables the Lambda runtime client requires; checked up front so a
/// misconfigured environment gets a message instead of a panic.
const REQUIRED_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

pub async fn run(app: App) -> anyhow::Result<()> {
    let missing: Vec<&str> = REQUIRED_ENV.iter().copied().filter(|v| std::env::var_os(v).is_none()).collect();
    if !missing.is_empty() {
        anyhow::bail!("cannot run as a Lambda function: missing environment variables {}", missing.join(", "));
    }
    telemetry::enable_metrics(Box::new(std::io::stdout()));
    // The first event's record needs the metrics thread: it starts while the
    // runtime waits for that event (this task runs once the runtime's
    // request is in flight), neither before it nor on the way to the answer.
    tokio::spawn(async { telemetry::start_metrics_thread() });
    let app = Arc::new(app);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Incoming>| {
        let app = Arc::clone(&app);
        async move {
            let payload = event.payload.0?;
            let invocation = Invocation {
                request_id: event.context.request_id.clone(),
                // A deadline already past is not a real one (emulators send a duration):
                // ignore it rather than refuse every file.
                deadline: Some(event.context.deadline()).filter(|d| *d > std::time::SystemTime::now()),
                cold_start: telemetry::take_cold_start(),
                from_worker: false,
            };
            let span = tracing::info_span!(
                "invocation",
                request_id = %invocation.request_id,
                cold_start = invocation.cold_start,
                model_version = %app.model().info().version
            );
            let answer = app.handle(payload, &invocation).instrument(span).await;
            // The invocation's metrics and logs are out before its answer:
            // Lambda may freeze the process as soon as it has the answer.
            telemetry::flush().await;
            answer
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime stopped: {e}"))
}

/// The event as the runtime hands it over. Reading it never fails there: the
/// runtime would log (at error, whatever the level) and answer serde's
/// message, which quotes the value it could not read (a measurement, an id).
/// A misshapen event becomes our own error instead, which quotes nothing.
pub struct Incoming(Result<Event, InvocationError>);

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Incoming(Event::deserialize(deserializer).map_err(|_| {
            InvocationError::Unrecognised("the event does not have the shape of any event this function handles".into())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misshapen_event_is_our_error_and_quotes_nothing() {
        for event in [
            r#"{"requestContext":{"http":{"method":"POST"}},"body":1234.5678901}"#,
            r#"{"Items":"VALUE-MARKER"}"#,
            r#"{"isBase64Encoded":"VALUE-MARKER"}"#,
        ] {
            let Incoming(read) = serde_json::from_str(event).expect("reading an event never fails");
            let message = read.expect_err("a misshapen event").to_string();
            assert!(!message.contains("MARKER") && !message.contains("1234"), "{message}");
        }
        let Incoming(read) = serde_json::from_str(r#"{"Items":[{"a":"1"}]}"#).unwrap();
        assert!(read.is_ok());
    }
}
