//! The core: parsing, validation, prediction, explanation and the CSV
//! pipeline. No AWS, and no I/O but the `Read` and `Write` it is handed.

pub mod challenger;
pub mod columns;
pub mod csv_pipeline;
pub mod csv_reader;
pub mod csv_text;
pub mod drift;
pub mod explain;
pub mod features;
pub mod model;
pub mod model_diff;
pub mod observation;
pub mod observation_json;
pub mod scoring;
pub mod status;
pub mod text;
