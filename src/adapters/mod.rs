//! Thin translators between event shapes and the core. Each depends on
//! [`crate::contract`] and [`crate::core`] (and the AWS SDK), never on
//! `handler.rs`; what the batch routes need from the function's state comes
//! in a [`Context`].

use std::sync::Arc;

use crate::config::BatchConfig;
use crate::core::model::Model;

pub mod aws;
pub mod function_url;
pub mod result_queue;
pub mod s3;
pub mod s3_batch;
pub mod s3_batch_operations;
pub mod s3_event;
pub mod sqs;
pub mod step_functions;

/// What the batch routes (S3 notifications, SQS, S3 Batch Operations) need
/// from the function's state, built once per process by `handler::App`.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub model: &'a Arc<Model>,
    pub config: &'a BatchConfig,
    pub clients: &'a aws::Clients,
}
