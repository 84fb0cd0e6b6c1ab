//! Running as an AWS Lambda function: the runtime loop hands each event, as
//! raw JSON, to [`App::handle_event`].

use std::sync::Arc;

use tracing::Instrument;

use crate::handler::{App, Event, Invocation};
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
    let app = Arc::new(app);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let app = Arc::clone(&app);
        async move {
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
            app.handle(event.payload, &invocation).instrument(span).await
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime stopped: {e}"))
}
