//! scorer: one validation path and one inference path for a breast-tumour
//! classifier, behind thin adapters for AWS Lambda events and a local CLI.
//!
//! * [`core`] knows nothing of AWS: [`core::observation`] parses untrusted
//!   input, [`core::model`] predicts exactly like sklearn.
//! * [`adapters`] translate events (Function URL, ...) to and from the core.
//! * [`handler`] routes any Lambda event to its adapter; [`lambda`] and
//!   [`cli`] run it on AWS or locally.

pub mod adapters;
pub mod cli;
pub mod config;
pub mod core;
pub mod handler;
pub mod lambda;
pub mod telemetry;
