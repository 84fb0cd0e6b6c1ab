//! The command line: `serve`, `invoke`, `score`, `explain`, `worker`,
//! `model`, `openapi`, and (with AWS_LAMBDA_RUNTIME_API set and no command)
//! the Lambda runtime. Each command is one module.

mod explain;
mod invoke;
mod model;
mod openapi;
mod score;
mod serve;
pub mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::core::challenger::FeatureMap;
use crate::handler::App;

#[derive(Parser, Debug)]
#[command(
    name = "scorer",
    version,
    about = "Scores breast-tumour measurements as malignant (1) or benign (0) with a gradient-boosted tree model.",
    long_about = "Scores breast-tumour measurements as malignant (1) or benign (0) with a gradient-boosted tree model.\n\n\
On AWS Lambda (AWS_LAMBDA_RUNTIME_API set, no command) it handles Function URL requests, S3 notifications,\n\
SQS batches, Step Functions Distributed Map batches and S3 Batch Operations tasks.\n\
Locally, pick a command below. The shipped model is built in; MODEL_PATH=FILE loads another export.\n\
CHALLENGER_MODEL_PATH=FILE scores every observation with that export too, in shadow: answers never change;\n\
summaries (score --report) say how it compared.\n\
Logs go to stderr (LOG_LEVEL=trace|debug|info|warn|error, applied to scorer only; dependencies stay at warn); they never contain measurements or ids.",
    after_help = "Example:\n  scorer serve &\n  curl -s localhost:9000 -d '{\"meanConcavePoints\":0.1,\"worstRadius\":25,\"worstTexture\":30,\"worstArea\":2000,\"worstConcavePoints\":0.25}'"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the Function URL contract over HTTP on 127.0.0.1 (POST / predicts, GET / describes the model).
    Serve(serve::Args),
    /// Run one Lambda event file (any kind in events/) through the handler and print the response.
    Invoke(invoke::Args),
    /// Score a CSV file (or stdin) row by row; rejected rows stay in the output with status 400.
    Score(score::Args),
    /// Explain one observation (JSON): its prediction and how each value moved it, as a text waterfall.
    Explain(explain::Args),
    /// Poll an SQS queue and handle its messages like the Lambda function (for ECS, Kubernetes, a laptop).
    Worker(worker::Args),
    /// Work with model exports: `model diff OLD.json NEW.json` checks a new export against the old before it ships.
    Model(model::Args),
    /// Print the HTTP contract (OpenAPI 3.1) for the loaded model as YAML: what GET /openapi.json serves.
    Openapi(openapi::Args),
}

pub fn main() -> ExitCode {
    let code = run();
    // Metrics and logs handed to their writer threads are written before the process ends.
    crate::telemetry::flush_before_exit();
    code
}

fn run() -> ExitCode {
    let lambda_env = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    // On Lambda the binary runs with no arguments: decided from the
    // environment, the cold start skips building clap's command tree (every
    // command's arguments and help) for a parse that could only find none.
    if lambda_env && std::env::args_os().len() == 1 {
        crate::telemetry::init(true);
        return run_lambda();
    }
    let cli = Cli::parse();
    let lambda = cli.command.is_none() && lambda_env;
    // JSON logs where a log service reads them: Lambda, and the worker unless on a terminal.
    let worker = matches!(cli.command, Some(Command::Worker(_)));
    crate::telemetry::init(lambda || (worker && !std::io::IsTerminal::is_terminal(&std::io::stderr())));
    let Some(command) = cli.command else {
        if lambda {
            return run_lambda();
        }
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let result = match command {
        Command::Serve(args) => serve::run(args),
        Command::Invoke(args) => invoke::run(args),
        Command::Score(args) => score::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Worker(args) => worker::run(args),
        Command::Model(args) => model::run(args),
        Command::Openapi(args) => openapi::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_lambda() -> ExitCode {
    // One thread: Lambda gives one vCPU per 1,769 MB, and start-up stays short.
    let result = load_app().and_then(|app| {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(crate::lambda::run(app))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "start-up failed");
            ExitCode::FAILURE
        }
    }
}

/// Loads the model (MODEL_PATH or the embedded one: [`crate::model_file`])
/// and the challenger (CHALLENGER_MODEL_PATH, if set), and builds the app.
fn load_app() -> anyhow::Result<App> {
    let model = crate::model_file::load_model()?;
    let info = model.info();
    tracing::info!(model_version = %info.version, model_sha256 = %info.sha256, trees = info.tree_count, "model loaded");
    let challenger = crate::model_file::load_challenger()?;
    if let Some(c) = &challenger {
        let info = c.info();
        tracing::info!(challenger_version = %info.version, challenger_sha256 = %info.sha256, trees = info.tree_count, "challenger loaded: it scores every observation in shadow");
        if FeatureMap::new(&model, c) == FeatureMap::NotComparable {
            tracing::warn!(
                challenger_version = %info.version,
                "the challenger has a feature the model's contract does not: every scored row counts as notComparable"
            );
        }
    }
    let batch = crate::config::BatchConfig::from_env()?;
    Ok(App::new(model, batch).with_challenger(challenger))
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
