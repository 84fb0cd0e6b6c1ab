//! scorer: one validation path and one inference path for a breast-tumour
//! classifier, behind thin adapters for AWS Lambda events and a local CLI.
//!
//! * [`core`] knows nothing of AWS: [`core::observation`] parses untrusted
//!   input, [`core::model`] predicts exactly like sklearn, [`core::csv_pipeline`]
//!   scores CSV streams.
//! * [`contract`] holds what every path's answers share (one observation's
//!   answer, a file's summary, a result notice) and the facts of one
//!   invocation.
//! * [`adapters`] translate events (Function URL, S3, SQS, ...) to and from
//!   the core; they depend on [`contract`] and [`core`] only.
//! * [`handler`] routes any Lambda event to its adapter; [`lambda`] and
//!   [`cli`] run it on AWS or locally, with the model [`model_file`] loads.

pub mod adapters;
pub mod cli;
pub mod config;
pub mod contract;
pub mod core;
pub mod handler;
pub mod lambda;
pub mod model_file;
pub mod telemetry;
