//! Thin translators between event shapes and the core. Each depends on
//! [`crate::contract`] and [`crate::core`] (and the AWS SDK), never on
//! `handler.rs`; what the batch routes need from the function's state comes
//! in a [`Context`].
//!
//! S3 files: [`s3_notifications`] (ObjectCreated records, direct, through
//! SQS or EventBridge) and [`s3_batch_operations`] (S3 Batch Operations
//! tasks) pick the objects, [`s3_routing`] says where each one's output goes,
//! [`s3_object`] scores one object within the invocation's time,
//! [`s3_upload`] writes what the function writes, [`s3_errors`] tells what
//! S3's refusals mean. [`sqs`] handles queue batches, [`step_functions`]
//! Distributed Map items, [`drift_out`] every batch route's drift and
//! challenger reports.

use std::sync::Arc;

use crate::config::BatchConfig;
use crate::core::model::Model;

pub mod aws;
pub mod drift_out;
pub mod function_url;
pub mod oip;
pub mod result_queue;
pub mod s3_batch_operations;
pub mod s3_errors;
pub mod s3_event;
pub mod s3_notifications;
pub mod s3_object;
pub mod s3_routing;
pub mod s3_upload;
pub mod sqs;
pub mod step_functions;

/// What the batch routes (S3 notifications, SQS, S3 Batch Operations) need
/// from the function's state, built once per process by `handler::App`.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub model: &'a Arc<Model>,
    /// The challenger that scores every observation in shadow, if any.
    pub challenger: Option<&'a Arc<Model>>,
    pub config: &'a BatchConfig,
    pub clients: &'a aws::Clients,
}
