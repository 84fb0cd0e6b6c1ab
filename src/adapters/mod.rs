//! Thin translators between event shapes and the core.

pub mod function_url;
