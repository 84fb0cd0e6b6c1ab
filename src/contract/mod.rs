//! The contract every path shares: the shapes of the answers (one
//! observation's answer, a file's summary, a result notice) and the facts of
//! one invocation. Adapters build their answers from these; they depend on
//! this module and on [`crate::core`], never on `handler.rs`.
//!
//! Where a new answer field goes:
//!
//! * about one observation (an explanation, a per-feature note):
//!   [`answer::Answer`], computed once by [`answer::Answer::of`], then the
//!   wire shapes that carry it: `function_url`'s bodies and `sqs::ResultLine`
//!   (each keeps its own field order, which clients already read); as a CSV
//!   or Distributed Map column, [`crate::core::csv_pipeline::RESULT_COLUMNS`];
//! * about the invocation (the request id, echoed in answers):
//!   [`invocation::Invocation`];
//! * about a file or a batch of rows (a drift report): [`file::FileReport`]
//!   (the S3 summary and answer, Batch Operations' result string) and
//!   [`notice::ResultNotice`] (what the result queue announces).
//!
//! The status every answer carries is [`crate::core::status::Status`]: the
//! CSV pipeline, in the core, writes it into every row.

pub mod answer;
pub mod file;
pub mod http;
pub mod invocation;
pub mod notice;
pub mod oip;
pub mod openapi;
