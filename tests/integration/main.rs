//! All integration tests, in one binary (one link instead of many).
//! Test names are sentences; each test starts what it needs.

mod challenger;
mod cli;
mod compiled_form;
mod deadline;
mod docs_links;
mod drift;
mod drift_page;
mod drift_paths;
mod error_codes;
mod excel;
mod explain_paths;
mod explanations;
mod fanout;
mod function_url;
mod goldens;
mod helpers;
mod id_key_pattern;
mod inputs;
mod lambda;
mod layers;
mod model_diff;
mod oip;
mod other_models;
mod parity;
mod privacy;
mod properties;
mod readme_steps;
mod runtime_api;
mod s3;
mod s3_faults;
mod s3_mocks;
mod s3_routes;
mod serve;
mod sqs;
mod sqs_delivery;
