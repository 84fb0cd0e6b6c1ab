//! Thin translators between event shapes and the core.

pub mod aws;
pub mod function_url;
pub mod s3;
pub mod s3_batch;
pub mod s3_batch_operations;
pub mod s3_event;
pub mod sqs;
pub mod step_functions;
