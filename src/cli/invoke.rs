//! `scorer invoke EVENT.json`: one event through the same handler Lambda uses.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::contract::invocation::Invocation;
use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The event file (JSON), or '-' for stdin. Samples are in events/.
    event: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = if args.event.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read the event from stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.event).with_context(|| format!("cannot read {}", args.event.display()))?
    };
    let app = super::load_app()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reply = runtime.block_on(app.handle_json(&text, &Invocation::local()));
    match reply {
        Ok(reply) => {
            println!("{}", serde_json::to_string_pretty(&reply)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
