//! `scorer serve`: the Function URL contract over plain HTTP on 127.0.0.1.
//! Each request becomes a Function URL event for the same handler Lambda runs,
//! so local answers are the deployed function's answers.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::adapters::function_url::{self, HttpResponse, MAX_BODY_BYTES};
use crate::contract::invocation::Invocation;
use crate::handler::App;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one; the address is printed on stdout).
    #[arg(long, short, default_value_t = 9000, env = "PORT")]
    port: u16,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let app = Arc::new(super::load_app()?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(app, args.port))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(app: Arc<App>, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!("listening on http://{addr}");
    tracing::info!(%addr, model_version = %app.model().info().version, "serving the Function URL contract");
    let shutdown = super::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(answer(&app, req, peer).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

/// One request, under a span carrying its request id (the Lambda runtime's
/// `invocation` span does the same there), so every log line names it.
async fn answer(app: &App, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let invocation = Invocation::local();
    let span = tracing::info_span!("request", request_id = %invocation.request_id);
    answer_in(app, req, peer, &invocation).instrument(span).await
}

async fn answer_in(
    app: &App,
    req: Request<Incoming>,
    peer: SocketAddr,
    invocation: &Invocation,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let request_id = invocation.request_id.as_str();
    let oip = crate::adapters::oip::is_oip_path(parts.uri.path());
    let limit = if oip { crate::contract::oip::request::MAX_BODY_BYTES } else { MAX_BODY_BYTES };
    let response = match read_body(body, limit).await {
        Body::Complete(bytes) => {
            // The event a Function URL would send, through the handler's Function URL route.
            let event = to_event(&parts, bytes, peer, request_id);
            app.handle_function_url_event(&event, invocation)
        }
        Body::TooLarge => {
            tracing::info!(status = 413, "request body too large");
            if oip {
                crate::adapters::oip::payload_too_large(request_id)
            } else {
                function_url::payload_too_large(request_id)
            }
        }
        Body::Broken => {
            function_url::bad_request(function_url::UNREADABLE_BODY, "the request body could not be read", request_id)
        }
    };
    to_http(response)
}

/// The event a Function URL would send for this request (payload format 2.0).
fn to_event(parts: &http::request::Parts, body: Bytes, peer: SocketAddr, request_id: &str) -> LambdaFunctionUrlRequest {
    let mut event = LambdaFunctionUrlRequest::default();
    event.version = Some("2.0".into());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(parts.uri.query().unwrap_or("").to_owned());
    event.headers = parts.headers.clone();
    (event.body, event.is_base64_encoded) = match std::str::from_utf8(&body) {
        Ok(text) => (Some(text.to_owned()), false),
        Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(&body)), true),
    };
    let ctx = &mut event.request_context;
    ctx.request_id = Some(request_id.to_owned());
    ctx.time_epoch =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    ctx.http.method = Some(parts.method.as_str().to_owned());
    ctx.http.path = Some(parts.uri.path().to_owned());
    ctx.http.protocol = Some(format!("{:?}", parts.version));
    ctx.http.source_ip = Some(peer.ip().to_string());
    ctx.http.user_agent = parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    event
}

enum Body {
    Complete(Bytes),
    TooLarge,
    Broken,
}

/// Reads at most `limit` bytes (the route's body limit). A larger body is read
/// on and discarded (up to a cap) so the client, which may still be sending,
/// receives the 413.
async fn read_body(mut body: Incoming, limit: usize) -> Body {
    const DRAIN_CAP: usize = 16 * 1024 * 1024;
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Body::Broken };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                kept.extend_from_slice(&data);
            } else if seen > DRAIN_CAP {
                return Body::TooLarge;
            }
        }
    }
    if seen > limit {
        Body::TooLarge
    } else {
        Body::Complete(Bytes::from(kept))
    }
}

fn to_http(response: HttpResponse) -> Response<Full<Bytes>> {
    let status = http::StatusCode::from_u16(response.status_code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = Response::new(Full::new(Bytes::new()));
    *out.status_mut() = status;
    for (name, value) in response.headers() {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            out.headers_mut().insert(name, value);
        }
    }
    let body = if response.body_base64 {
        // Binary tensors (the Open Inference Protocol): base64 in the Function URL answer, bytes on the wire.
        base64::engine::general_purpose::STANDARD.decode(&response.body).unwrap_or_default()
    } else {
        response.body.into_bytes()
    };
    *out.body_mut() = Full::new(Bytes::from(body));
    out
}
