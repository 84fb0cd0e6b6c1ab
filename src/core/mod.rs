//! The core: parsing, validation and prediction. No AWS, no I/O.

pub mod batch;
pub mod csv_reader;
pub mod drift;
pub mod explain;
pub mod model;
pub mod observation;
pub mod observation_json;
