//! Where the model comes from: the edge that reads `MODEL_PATH` (and
//! `CHALLENGER_MODEL_PATH`) and the disk, so that `core::model` only ever
//! parses bytes. Every command and the Lambda runtime load the model through
//! [`load_model`], and the challenger, if any, through [`load_challenger`].

use std::path::{Path, PathBuf};

use crate::core::model::{compiled_path_for, Model, ModelError};

/// The environment variable naming another export to load instead of the
/// embedded model.
pub const MODEL_PATH: &str = "MODEL_PATH";

/// The environment variable naming a challenger: an export that scores every
/// observation in shadow (docs/model.md, "Challenger in shadow"). Unset or
/// empty: no challenger.
pub const CHALLENGER_MODEL_PATH: &str = "CHALLENGER_MODEL_PATH";

/// Why a model could not be loaded, worded for whoever set `variable`
/// (`MODEL_PATH` or `CHALLENGER_MODEL_PATH`).
#[derive(Debug, thiserror::Error)]
pub enum ModelLoadError {
    #[error("cannot read the model file {} (set by {variable}): {error}", path.display())]
    Read { variable: &'static str, path: PathBuf, error: std::io::Error },
    #[error(
        "the model file {} (set by {variable}) cannot be used: {error}; \
         models/README.md describes the export format, and {}",
        path.display(),
        way_back(variable)
    )]
    Export { variable: &'static str, path: PathBuf, error: ModelError },
    #[error(
        "the compiled form {} of the model file {} (set by {variable}) cannot be used: {error}; \
         run `scorer model compile {}` to write it again, or delete it to load the export itself",
        path.display(),
        export.display(),
        export.display()
    )]
    Compiled { variable: &'static str, path: PathBuf, export: PathBuf, error: ModelError },
    #[error("the embedded model cannot be used (a broken build): {0}")]
    Embedded(ModelError),
}

/// What leaving `variable` unset does.
fn way_back(variable: &str) -> String {
    if variable == CHALLENGER_MODEL_PATH {
        format!("{variable} unset or empty runs without a challenger")
    } else {
        format!("{variable} unset loads the embedded model")
    }
}

/// The export `MODEL_PATH` names when it is set and not empty, else the
/// model embedded in the binary.
pub fn load_model() -> Result<Model, ModelLoadError> {
    match std::env::var_os(MODEL_PATH) {
        Some(path) if !path.is_empty() => load_model_file(Path::new(&path)),
        _ => Model::embedded().map_err(ModelLoadError::Embedded),
    }
}

/// The challenger `CHALLENGER_MODEL_PATH` names when it is set and not
/// empty; `None` otherwise. A file that does not load is an error (start-up
/// stops), as for `MODEL_PATH`.
pub fn load_challenger() -> Result<Option<Model>, ModelLoadError> {
    match std::env::var_os(CHALLENGER_MODEL_PATH) {
        Some(path) if !path.is_empty() => load_file(CHALLENGER_MODEL_PATH, Path::new(&path)).map(Some),
        _ => Ok(None),
    }
}

/// The export at `path` (as `MODEL_PATH` names it).
pub fn load_model_file(path: &Path) -> Result<Model, ModelLoadError> {
    load_file(MODEL_PATH, path)
}

/// The export at `path`, set by `variable`: from its compiled form
/// (`<path>.compiled`, [`compiled_path_for`]) when there is one, which must
/// have been compiled from exactly this export; else parsed and compiled.
fn load_file(variable: &'static str, path: &Path) -> Result<Model, ModelLoadError> {
    let bytes = read(variable, path)?;
    let compiled_path = compiled_path_for(path);
    match std::fs::read(&compiled_path) {
        Ok(compiled) => Model::from_export_and_compiled(&bytes, &compiled).map_err(|error| ModelLoadError::Compiled {
            variable,
            path: compiled_path,
            export: path.to_owned(),
            error,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => parse(variable, path, &bytes),
        Err(error) => Err(ModelLoadError::Read { variable, path: compiled_path, error }),
    }
}

fn read(variable: &'static str, path: &Path) -> Result<Vec<u8>, ModelLoadError> {
    std::fs::read(path).map_err(|error| ModelLoadError::Read { variable, path: path.to_owned(), error })
}

fn parse(variable: &'static str, path: &Path, bytes: &[u8]) -> Result<Model, ModelLoadError> {
    Model::from_json_bytes(bytes).map_err(|error| ModelLoadError::Export { variable, path: path.to_owned(), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_the_path_and_the_variable() {
        let err = load_model_file(Path::new("/nonexistent/model.json")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/model.json") && err.contains("MODEL_PATH"), "{err}");
    }

    #[test]
    fn a_broken_export_names_the_file_the_rule_and_the_way_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        std::fs::write(&path, r#"{"format":"scorer-gbdt","format_version":99}"#).unwrap();
        let err = load_model_file(&path).unwrap_err().to_string();
        for word in ["model.json", "MODEL_PATH", "not a valid model export", "models/README.md"] {
            assert!(err.contains(word), "{err:?} should mention {word:?}");
        }
    }

    #[test]
    fn a_challenger_that_does_not_load_names_its_variable_and_the_way_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("challenger.json");
        std::fs::write(&path, "{}").unwrap();
        let err = load_file(CHALLENGER_MODEL_PATH, &path).unwrap_err().to_string();
        for word in ["challenger.json", "(set by CHALLENGER_MODEL_PATH)", "unset or empty runs without a challenger"] {
            assert!(err.contains(word), "{err:?} should mention {word:?}");
        }
        let err = load_file(CHALLENGER_MODEL_PATH, &dir.path().join("absent.json")).unwrap_err().to_string();
        assert!(err.contains("absent.json") && err.contains("CHALLENGER_MODEL_PATH"), "{err}");
    }

    #[test]
    fn the_embedded_model_loads_from_its_bytes() {
        let m =
            load_model_file(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models/breast-cancer-gbc.json"))).unwrap();
        assert_eq!(m.info().sha256, Model::embedded().unwrap().info().sha256);
    }
}
