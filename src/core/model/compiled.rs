//! The compiled form: a model as loading its export leaves it (trees, step
//! functions, explanation tables, training profile), in a compact binary
//! that a cold start decodes instead of parsing and compiling the JSON export
//! again. Measured on the shipped model (benches/startup_phases.rs,
//! docs/testing.md): see "Cold start" there.
//!
//! The JSON export stays the source of truth: a compiled form records the
//! sha256 of the export it was compiled from, and loads only beside that
//! export ([`Model::from_compiled_bytes`]). It is written by a build that
//! checked the export (`scorer model compile`), so loading it checks only
//! that it is whole and belongs: its own sha256 over the payload, the
//! export's, the format version and this build's version.
//!
//! Layout: `MAGIC`, the format version (u32 LE), the export's sha256, the
//! payload's sha256, then the payload (postcard: integers as varints, floats
//! as their 8 bytes, so every table is bit-identical to the compiled one).
//! postcard rather than bincode (no longer maintained) or rkyv (zero-copy,
//! but our types would need its archived mirrors): on the shipped model the
//! decode is a fraction of the remaining start-up (docs/testing.md).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::features::{Feature, Features};
use super::compile::{Compiled, Explainer};
use super::tree::Tree;
use super::{Model, ModelError, Parts, TrainingProfile};

const MAGIC: &[u8; 16] = b"scorer-compiled\n";

/// Bump when anything serialized here changes shape; a compiled form of
/// another version is refused (compile it again).
pub const COMPILED_FORMAT_VERSION: u32 = 1;

const HEADER_LEN: usize = MAGIC.len() + 4 + 32 + 32;

/// Where a compiled form of the export at `export` is looked for:
/// `<export>.compiled` (`model.json` → `model.json.compiled`).
pub fn compiled_path_for(export: &Path) -> PathBuf {
    let mut name = export.as_os_str().to_owned();
    name.push(".compiled");
    PathBuf::from(name)
}

/// The payload. `parameters` and `metrics` are free-form JSON in the export;
/// they travel as JSON text (postcard reads no self-describing values).
#[derive(Serialize, Deserialize)]
struct Form {
    /// This build's version: a payload of another build is refused even
    /// when the format version was not bumped.
    build: String,
    name: String,
    sklearn_version: String,
    format_version: u32,
    ranges: Vec<(f64, f64)>,
    parameters: String,
    metrics: String,
    features: Vec<(String, String)>,
    class_names: [String; 2],
    init: f64,
    trees: Vec<Tree>,
    compiled: Compiled,
    explainer: Option<Explainer>,
    profile: Option<TrainingProfile>,
}

fn refused(msg: impl Into<String>) -> ModelError {
    ModelError::Compiled(msg.into())
}

impl Model {
    /// The compiled form of this model (what [`Model::from_compiled_bytes`] reads).
    pub fn to_compiled_bytes(&self) -> Vec<u8> {
        let info = &self.info;
        let form = Form {
            build: env!("CARGO_PKG_VERSION").to_owned(),
            name: info.name.clone(),
            sklearn_version: info.sklearn_version.clone(),
            format_version: info.format_version,
            ranges: info.ranges.clone(),
            parameters: info.parameters.to_string(),
            metrics: info.metrics.to_string(),
            features: self.features.iter().map(|f| (f.api_name.clone(), f.dataset_name.clone())).collect(),
            class_names: self.class_names.clone(),
            init: self.init,
            trees: self.trees.clone(),
            compiled: self.compiled.clone(),
            explainer: self.explainer.clone(),
            profile: self.profile.clone(),
        };
        let payload = postcard::to_allocvec(&form).expect("a model serializes (no map keys, no unsized values)");
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&COMPILED_FORMAT_VERSION.to_le_bytes());
        let export_sha: [u8; 32] = hex::decode(&info.sha256)
            .ok()
            .and_then(|v| v.try_into().ok())
            .expect("the sha256 is 64 hex digits (this module and from_json_bytes write it)");
        out.extend_from_slice(&export_sha);
        out.extend_from_slice(&Sha256::digest(&payload));
        out.extend_from_slice(&payload);
        out
    }

    /// The model from its export's bytes and the compiled form beside it: the
    /// form must have been compiled from exactly this export (same sha256).
    pub fn from_export_and_compiled(export: &[u8], compiled: &[u8]) -> Result<Self, ModelError> {
        Self::from_compiled_bytes(compiled, &Sha256::digest(export).into())
    }

    /// A compiled form, refused unless it is whole, of this format version
    /// and build, and compiled from the export whose sha256 is `export_sha256`.
    pub fn from_compiled_bytes(bytes: &[u8], export_sha256: &[u8; 32]) -> Result<Self, ModelError> {
        Self::decode_compiled(bytes, export_sha256, true)
    }

    /// The compiled form embedded in the binary: build.rs embeds it only
    /// after checking its payload's sha256, so a cold start does not digest
    /// the payload again (140 KB; about a tenth of a millisecond).
    pub(super) fn from_embedded_compiled(bytes: &[u8], export_sha256: &[u8; 32]) -> Result<Self, ModelError> {
        Self::decode_compiled(bytes, export_sha256, false)
    }

    fn decode_compiled(bytes: &[u8], export_sha256: &[u8; 32], check_payload: bool) -> Result<Self, ModelError> {
        if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(refused("it does not start like one (a truncated or foreign file)"));
        }
        let (version, rest) = bytes[MAGIC.len()..].split_at(4);
        let version = u32::from_le_bytes(version.try_into().expect("4 bytes"));
        if version != COMPILED_FORMAT_VERSION {
            return Err(refused(format!(
                "it is format version {version}; this build reads version {COMPILED_FORMAT_VERSION} (compile it again)"
            )));
        }
        let (recorded, rest) = rest.split_at(32);
        if recorded != export_sha256 {
            return Err(refused(format!(
                "it was compiled from another export (sha256 {}), not this one (sha256 {}): stale (compile it again)",
                hex::encode(recorded),
                hex::encode(export_sha256)
            )));
        }
        let (payload_sha, payload) = rest.split_at(32);
        if check_payload && Sha256::digest(payload).as_slice() != payload_sha {
            return Err(refused("its contents do not match its checksum (a damaged file)"));
        }
        let form: Form =
            postcard::from_bytes(payload).map_err(|e| refused(format!("its contents cannot be read: {e}")))?;
        if form.build != env!("CARGO_PKG_VERSION") {
            return Err(refused(format!(
                "it was written by scorer {}; this is scorer {} (compile it again)",
                form.build,
                env!("CARGO_PKG_VERSION")
            )));
        }
        let json =
            |text: &str| serde_json::from_str(text).map_err(|e| refused(format!("its contents cannot be read: {e}")));
        let list = form.features.into_iter().map(|(api_name, dataset_name)| Feature { api_name, dataset_name });
        Ok(Self::assemble(Parts {
            sha256: *export_sha256,
            name: form.name,
            sklearn_version: form.sklearn_version,
            format_version: form.format_version,
            ranges: form.ranges,
            parameters: json(&form.parameters)?,
            metrics: json(&form.metrics)?,
            features: Features::new(list.collect()).map_err(refused)?,
            class_names: form.class_names,
            init: form.init,
            trees: form.trees,
            compiled: form.compiled,
            explainer: form.explainer,
            profile: form.profile,
        }))
    }
}
