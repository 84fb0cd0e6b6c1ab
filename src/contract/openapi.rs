//! The OpenAPI document for a model. openapi.yaml (written by hand, converted
//! to JSON by build.rs) is the template: everything in it that does not depend
//! on the model stays as written; [`document`] rewrites every part that names
//! the model's features, classes, name or version, from a [`ModelContract`].
//! For the shipped model the result equals the template exactly (a test says
//! so), so openapi.yaml stays the readable contract of that model.
//!
//! What is rewritten, wherever it is in the document (nothing here knows the
//! document's layout but the feature count of `ModelMetadata.features`):
//!
//! * schemas: a `properties` map or a `required` / `enum` list naming the
//!   template's features gets the model's, in model order (the template's
//!   other entries, such as `id`, stay where they were); a feature's property
//!   schema is the template's for that name, else the template's first
//!   feature's, and a description that was the dataset name is the model's;
//! * examples: an object keyed by features (an observation, contributions)
//!   gets the model's features, keeping the template's value for a feature of
//!   the same name, else a placeholder (an observation: the middle of the
//!   training range, four significant digits; a contribution: 0); the
//!   metadata example's feature list is the model's; an error item naming a
//!   template feature names the feature at its position in the model, or is
//!   dropped when the model has fewer features, and a `reason` that joined the
//!   items' messages is joined again;
//! * text anywhere: the template's feature list joined by ", " (the
//!   missing-values reason), a quoted template feature (`'worstArea'`, by
//!   position) and the training range written next to it, "five
//!   measurements", the class names as whole words, and a string equal to the
//!   template's model name or version. A list item still quoting a template
//!   feature the model lacks (a warning) is dropped.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::core::model::Model;

/// openapi.yaml as JSON, converted by build.rs (the binary carries no YAML
/// parser): the template [`document`] rewrites.
pub const TEMPLATE_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// What the HTTP contract needs to know of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContract {
    pub name: String,
    /// `<name>-<first 12 hex digits of the export's sha256>`.
    pub version: String,
    /// In model order.
    pub features: Vec<FeatureContract>,
    /// The names of label 0 and label 1.
    pub classes: [String; 2],
}

/// One feature of a [`ModelContract`].
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureContract {
    /// The JSON key (`meanConcavePoints`).
    pub api_name: String,
    /// The column in the training data (`mean concave points`).
    pub dataset_name: String,
    /// The training range.
    pub min: f64,
    pub max: f64,
}

/// The contract of a loaded model, as its export gives it.
pub fn contract_of(model: &Model) -> ModelContract {
    let info = model.info();
    ModelContract {
        name: info.name.clone(),
        version: info.version.clone(),
        features: model
            .features()
            .iter()
            .zip(&info.ranges)
            .map(|(f, &(min, max))| FeatureContract {
                api_name: f.api_name.clone(),
                dataset_name: f.dataset_name.clone(),
                min,
                max,
            })
            .collect(),
        classes: [model.class_name(0).to_owned(), model.class_name(1).to_owned()],
    }
}

/// The document for `model`, built once on first use (`GET /openapi.json`),
/// never at start-up: a cold start pays nothing for it.
#[derive(Debug, Default)]
pub struct LazyDocument(OnceLock<String>);

impl LazyDocument {
    /// The document as JSON text. `model` must be the same on every call (the
    /// application state holds one model and one `LazyDocument`).
    pub fn get(&self, model: &Model) -> &str {
        self.0.get_or_init(|| document(&contract_of(model)).to_string())
    }

    /// Whether a request has asked for the document yet.
    pub fn is_built(&self) -> bool {
        self.0.get().is_some()
    }
}

/// The OpenAPI document for `model`: the template with every model-dependent
/// part rewritten (see the module's documentation).
pub fn document(model: &ModelContract) -> Value {
    // build.rs wrote this text with serde_json: it parses.
    let mut doc: Value = serde_json::from_str(TEMPLATE_JSON).expect("build.rs writes the template as JSON");
    let template = Template::read(&doc);
    let rewrite = Rewrite::new(&template, model);
    rewrite.value(&mut doc, None, false);
    let features =
        doc.pointer_mut("/components/schemas/ModelMetadata/properties/features").and_then(Value::as_object_mut);
    if let Some(schema) = features {
        for bound in ["minItems", "maxItems"] {
            if schema.get(bound).and_then(Value::as_u64) == Some(template.features.len() as u64) {
                schema.insert(bound.to_owned(), model.features.len().into());
            }
        }
    }
    doc
}

/// What the template says of the model it was written for.
struct Template {
    /// `components.schemas.Observation.required`: the features, in order.
    features: Vec<String>,
    /// Per feature, from the metadata example: dataset name and training range.
    dataset_names: Vec<Option<String>>,
    ranges: Vec<Option<(f64, f64)>>,
    /// From the metadata example.
    name: Option<String>,
    version: Option<String>,
    /// `ModelMetadata.classes`: the names of label 0 and 1.
    classes: Vec<String>,
}

impl Template {
    fn read(doc: &Value) -> Self {
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
        };
        let features = strings(doc.pointer("/components/schemas/Observation/required"));
        let model = doc.pointer("/paths/~1/get/responses/200/content/application~1json/examples/metadata/value/model");
        let listed = model.and_then(|m| m.get("features")).and_then(Value::as_array);
        let listed_feature = |name: &str| listed.into_iter().flatten().find(|f| f["name"] == name);
        let dataset_names = features
            .iter()
            .map(|f| listed_feature(f).and_then(|f| f["datasetName"].as_str()).map(str::to_owned))
            .collect();
        let ranges = features
            .iter()
            .map(|f| listed_feature(f).and_then(|f| Some((f["trainingMin"].as_f64()?, f["trainingMax"].as_f64()?))))
            .collect();
        let text = |key: &str| model.and_then(|m| m.get(key)).and_then(Value::as_str).map(str::to_owned);
        let classes = doc
            .pointer("/components/schemas/ModelMetadata/properties/classes/prefixItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|pair| pair.pointer("/prefixItems/1/enum/0").and_then(Value::as_str).map(str::to_owned))
            .collect();
        Template { features, dataset_names, ranges, name: text("name"), version: text("version"), classes }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f == name)
    }
}

/// How a feature-keyed object's values are made for the model's features.
#[derive(Clone, Copy)]
enum Keyed {
    /// Schema `properties`: the template's schema for the name, else its first feature's.
    Schemas,
    /// Example contributions: the template's value, else 0.
    Contributions,
    /// An example observation: the template's value, else the middle of the range.
    Values,
}

/// Replacements: (from, to).
type Pairs = Vec<(String, String)>;

struct Rewrite<'a> {
    template: &'a Template,
    model: &'a ModelContract,
    /// Replacements made in every string, in one pass (longest match first).
    tokens: Pairs,
    /// Per template feature: its quoted name, and the replacements made in a
    /// string that holds it (the name and its range); `None` when the model
    /// has no feature at that position.
    quoted: Vec<(String, Option<Pairs>)>,
    /// Whole-word replacements (the class names).
    words: Pairs,
    /// Strings replaced when equal to the template's model version or name.
    exact: Pairs,
}

impl<'a> Rewrite<'a> {
    fn new(template: &'a Template, model: &'a ModelContract) -> Self {
        let names: Vec<&str> = model.features.iter().map(|f| f.api_name.as_str()).collect();
        let mut tokens = vec![(template.features.join(", "), names.join(", "))];
        tokens.push((
            format!("{} measurements", count_word(template.features.len())),
            format!("{} measurements", count_word(model.features.len())),
        ));
        let quoted = template
            .features
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let quoted = format!("'{name}'");
                let to = model.features.get(i).map(|f| {
                    let mut pairs = vec![(quoted.clone(), format!("'{}'", f.api_name))];
                    if let Some((lo, hi)) = template.ranges[i] {
                        pairs.push((format!("({lo} to {hi})"), format!("({} to {})", f.min, f.max)));
                    }
                    pairs
                });
                (quoted, to)
            })
            .collect();
        let words = template.classes.iter().cloned().zip(model.classes.iter().cloned()).collect();
        let exact = [(&template.version, &model.version), (&template.name, &model.name)]
            .into_iter()
            .filter_map(|(from, to)| Some((from.clone()?, to.clone())))
            .collect();
        tokens.retain(|(from, to)| !from.is_empty() && from != to);
        Rewrite { template, model, tokens, quoted, words, exact }
    }

    fn is_feature(&self, s: &str) -> bool {
        self.template.position(s).is_some()
    }

    /// A template feature with no model feature at its position.
    fn is_lost(&self, name: &str) -> bool {
        self.template.position(name).is_some_and(|i| i >= self.model.features.len())
    }

    /// A string naming a template feature the model lacks (quoted).
    fn names_a_lost_feature(&self, s: &str) -> bool {
        self.quoted.iter().any(|(quoted, to)| to.is_none() && s.contains(quoted.as_str()))
    }

    /// Rewrites `v` in place. `key`: the key `v` is under in its object;
    /// `example`: `v` is (inside) an example's value.
    fn value(&self, v: &mut Value, key: Option<&str>, example: bool) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => self.array(items, key, example),
            Value::Object(map) => self.object(map, key, example),
            _ => {}
        }
    }

    fn text(&self, s: &str) -> String {
        if let Some((_, to)) = self.exact.iter().find(|(from, _)| from == s) {
            return to.clone();
        }
        let mut pairs: Vec<(&str, &str)> = self.tokens.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        for (quoted, to) in &self.quoted {
            if let Some(to) = to.as_ref().filter(|_| s.contains(quoted.as_str())) {
                pairs.extend(to.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            }
        }
        let replaced = replace_all(s, &pairs, |_, _| true);
        let words: Vec<(&str, &str)> = self.words.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        replace_all(&replaced, &words, |before, after| {
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    }

    fn array(&self, items: &mut Vec<Value>, key: Option<&str>, example: bool) {
        // The metadata example's features: the model's, whole.
        let listed = |item: &Value| {
            item.get("trainingMin").is_some() && item["name"].as_str().is_some_and(|n| self.is_feature(n))
        };
        if let Some(like) = items.iter().find(|item| example && listed(item)).cloned() {
            let mut rebuilt = Vec::new();
            let mut done = false;
            for item in std::mem::take(items) {
                if !listed(&item) {
                    rebuilt.push(item);
                } else if !done {
                    rebuilt.extend(self.model.features.iter().map(|f| feature_metadata(&like, f)));
                    done = true;
                }
            }
            *items = rebuilt;
            return;
        }
        // Drop what names a feature the model lacks (warnings, error items).
        items.retain(|item| match item {
            Value::String(s) => !self.names_a_lost_feature(s),
            Value::Object(o) => !o.get("field").and_then(Value::as_str).is_some_and(|f| self.is_lost(f)),
            _ => true,
        });
        // A list of features (`required`, `enum`): the model's, where the template's first was.
        if items.iter().any(|item| item.as_str().is_some_and(|s| self.is_feature(s))) {
            let mut rebuilt = Vec::new();
            let mut done = false;
            for mut item in std::mem::take(items) {
                if item.as_str().is_some_and(|s| self.is_feature(s)) {
                    if !done {
                        rebuilt.extend(self.model.features.iter().map(|f| Value::from(f.api_name.as_str())));
                        done = true;
                    }
                } else {
                    self.value(&mut item, None, example);
                    rebuilt.push(item);
                }
            }
            *items = rebuilt;
            return;
        }
        for item in items.iter_mut() {
            self.value(item, key, example);
        }
    }

    fn object(&self, map: &mut Map<String, Value>, key: Option<&str>, example: bool) {
        if map.keys().any(|k| self.is_feature(k)) {
            let keyed = match key {
                Some("properties") if !example => Keyed::Schemas,
                Some("contributions") if example => Keyed::Contributions,
                _ => Keyed::Values,
            };
            return self.keyed(map, keyed, example);
        }
        // A reason that joins its error items' messages is joined again after them.
        let joined = |map: &Map<String, Value>| -> Option<String> {
            let errors = map.get("errors")?.as_array()?;
            Some(errors.iter().filter_map(|e| e["message"].as_str()).collect::<Vec<_>>().join("; "))
        };
        let prefix = match (map.get("reason").and_then(Value::as_str), joined(map)) {
            (Some(reason), Some(messages)) => reason.strip_suffix(messages.as_str()).map(str::to_owned),
            _ => None,
        };
        // An error item's field: the model's feature at the template feature's position.
        let mut field_done = false;
        if let Some(Value::String(field)) = map.get_mut("field") {
            if let Some(f) = self.template.position(field).and_then(|i| self.model.features.get(i)) {
                *field = f.api_name.clone();
                field_done = true;
            }
        }
        for (k, v) in map.iter_mut() {
            if k == "field" && field_done {
                continue;
            }
            let inside_example = example || (key == Some("examples") || k == "example");
            self.value(v, Some(k), inside_example);
        }
        if let (Some(prefix), Some(messages)) = (prefix, joined(map)) {
            map.insert("reason".to_owned(), Value::from(format!("{prefix}{messages}")));
        }
    }

    /// An object keyed by features: the model's, where the template's first was.
    fn keyed(&self, map: &mut Map<String, Value>, keyed: Keyed, example: bool) {
        let first = map.iter().find(|(k, _)| self.is_feature(k)).map(|(_, v)| v.clone()).unwrap_or(Value::Null);
        let mut old = std::mem::take(map);
        let mut done = false;
        let keys: Vec<String> = old.keys().cloned().collect();
        for k in keys {
            let Some(mut v) = old.remove(&k) else { continue };
            if !self.is_feature(&k) {
                self.value(&mut v, Some(&k), example);
                map.insert(k, v);
                continue;
            }
            if done {
                continue;
            }
            done = true;
            for f in &self.model.features {
                let same = self.template.position(&f.api_name).and_then(|_| {
                    // The template's value for this name, wherever it was in `old` or `map`.
                    if f.api_name == k {
                        Some(v.clone())
                    } else {
                        old.get(&f.api_name).cloned()
                    }
                });
                let value = match keyed {
                    Keyed::Schemas => {
                        let mut schema = same.clone().unwrap_or_else(|| first.clone());
                        self.value(&mut schema, None, false);
                        self.dataset_description(&mut schema, same.is_some().then_some(f.api_name.as_str()), f);
                        schema
                    }
                    Keyed::Contributions => same.unwrap_or_else(|| Value::from(0.0)),
                    Keyed::Values => same.unwrap_or_else(|| Value::from(middle(f.min, f.max))),
                };
                map.insert(f.api_name.clone(), value);
            }
        }
    }

    /// A property schema whose description was its template feature's dataset
    /// name (or, for a feature new to the template, the first feature's) gets `f`'s.
    fn dataset_description(&self, schema: &mut Value, name: Option<&str>, f: &FeatureContract) {
        let i = name.and_then(|n| self.template.position(n)).unwrap_or(0);
        let Some(Some(was)) = self.template.dataset_names.get(i) else { return };
        if let Some(description) = schema.get_mut("description").filter(|d| d.as_str() == Some(was.as_str())) {
            *description = Value::from(f.dataset_name.as_str());
        }
    }
}

/// The metadata example's entry for `f`, shaped like the template's `like`.
fn feature_metadata(like: &Value, f: &FeatureContract) -> Value {
    let mut entry = like.clone();
    if let Some(o) = entry.as_object_mut() {
        o.insert("name".to_owned(), Value::from(f.api_name.as_str()));
        o.insert("datasetName".to_owned(), Value::from(f.dataset_name.as_str()));
        o.insert("trainingMin".to_owned(), Value::from(f.min));
        o.insert("trainingMax".to_owned(), Value::from(f.max));
    }
    entry
}

/// The middle of a training range, to four significant digits: an example value.
fn middle(min: f64, max: f64) -> f64 {
    let m = min / 2.0 + max / 2.0;
    format!("{m:.3e}").parse().unwrap_or(m)
}

/// "five" for 5: how the template counts its features in prose.
fn count_word(n: usize) -> String {
    const WORDS: [&str; 13] =
        ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];
    WORDS.get(n).map_or_else(|| n.to_string(), |w| (*w).to_owned())
}

/// `s` with every occurrence of a `from` replaced by its `to`, scanning once
/// from the left (the longest match wins, and nothing replaced is scanned
/// again, so `a -> b, b -> a` swaps). `fits(before, after)` is asked with
/// the characters around a match before it is replaced.
fn replace_all(s: &str, pairs: &[(&str, &str)], fits: impl Fn(Option<char>, Option<char>) -> bool) -> String {
    if pairs.iter().all(|(from, _)| !s.contains(from)) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let before = s[..i].chars().next_back();
        let found = pairs
            .iter()
            .filter(|(from, _)| !from.is_empty() && rest.starts_with(from))
            .filter(|(from, _)| fits(before, rest[from.len()..].chars().next()))
            .max_by_key(|(from, _)| from.len());
        if let Some((from, to)) = found {
            out.push_str(to);
            i += from.len();
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            i += c.len_utf8().max(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> ModelContract {
        contract_of(&Model::embedded().unwrap())
    }

    /// A format version 3 export's contract, read from the file as the export describes it.
    fn from_export(path: &str) -> ModelContract {
        let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let export: Value = serde_json::from_str(&text).unwrap();
        let name = export["name"].as_str().unwrap().to_owned();
        let class = |label: u64| {
            let classes = export["classes"].as_array().unwrap();
            classes.iter().find(|c| c["label"] == label).unwrap()["name"].as_str().unwrap().to_owned()
        };
        ModelContract {
            version: format!("{name}-0123456789ab"),
            name,
            features: export["features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| FeatureContract {
                    api_name: f["api_name"].as_str().unwrap().to_owned(),
                    dataset_name: f["dataset_name"].as_str().unwrap().to_owned(),
                    min: f["min"].as_f64().unwrap(),
                    max: f["max"].as_f64().unwrap(),
                })
                .collect(),
            classes: [class(0), class(1)],
        }
    }

    fn template() -> Value {
        serde_json::from_str(TEMPLATE_JSON).unwrap()
    }

    #[test]
    fn the_shipped_model_gets_openapi_yaml_exactly() {
        let contract = shipped();
        assert_eq!(contract.features.len(), 5);
        let doc = document(&contract);
        assert_eq!(doc, template());
        // Key order too: the document reads as the file does.
        assert_eq!(doc.to_string(), template().to_string());
    }

    #[test]
    fn the_shipped_export_describes_the_contract_it_is_served_with() {
        // The file's own features, read as a version 3 export would be, give the same document.
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/breast-cancer-gbc.json")).unwrap();
        let export: Value = serde_json::from_str(&text).unwrap();
        let contract = shipped();
        for (f, listed) in contract.features.iter().zip(export["features"].as_array().unwrap()) {
            assert_eq!(
                (f.api_name.as_str(), f.dataset_name.as_str()),
                (listed["name"].as_str().unwrap(), listed["dataset_name"].as_str().unwrap())
            );
            assert_eq!((f.min, f.max), (listed["min"].as_f64().unwrap(), listed["max"].as_f64().unwrap()));
        }
    }

    /// Every string in `v`, keys included.
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                out.push(k.clone());
                strings(x, out);
            }),
            _ => {}
        }
    }

    fn check_other_model(contract: &ModelContract) -> Value {
        let doc = document(contract);
        let text = doc.to_string();
        let shipped = shipped();
        for f in &shipped.features {
            if contract.features.iter().any(|g| g.api_name == f.api_name) {
                continue;
            }
            // Substrings too: no shipped name survives in any text (keys, messages, descriptions).
            assert!(!text.contains(&f.api_name), "{} is still in the document", f.api_name);
            assert!(!text.contains(&f.dataset_name), "{} is still in the document", f.dataset_name);
        }
        for f in &contract.features {
            assert!(text.contains(&format!("\"{}\"", f.api_name)), "{} is not in the document", f.api_name);
        }
        let names: Vec<Value> = contract.features.iter().map(|f| Value::from(f.api_name.as_str())).collect();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Observation"]["required"], Value::from(names.clone()));
        let properties: Vec<&String> = schemas["Observation"]["properties"].as_object().unwrap().keys().collect();
        let mut want: Vec<String> = contract.features.iter().map(|f| f.api_name.clone()).collect();
        want.push("id".to_owned());
        assert_eq!(properties, want.iter().collect::<Vec<_>>());
        for f in &contract.features {
            let p = &schemas["Observation"]["properties"][&f.api_name];
            assert_eq!(p["description"], f.dataset_name.as_str());
            assert_eq!(p["$ref"], "#/components/schemas/Measurement");
        }
        let contributions = &schemas["Explanation"]["properties"]["contributions"];
        assert_eq!(contributions["required"], Value::from(names.clone()));
        assert_eq!(contributions["properties"].as_object().unwrap().len(), names.len());
        assert_eq!(schemas["FeatureMetadata"]["properties"]["name"]["enum"], Value::from(names.clone()));
        let mut fields = names.clone();
        fields.extend(["id".into(), "explain".into(), "body".into()]);
        assert_eq!(schemas["ErrorItem"]["properties"]["field"]["enum"], Value::from(fields));
        let n = contract.features.len();
        assert_eq!(schemas["ModelMetadata"]["properties"]["features"]["minItems"], n);
        assert_eq!(schemas["ModelMetadata"]["properties"]["features"]["maxItems"], n);
        assert_eq!(schemas["PredictionAnswer"]["properties"]["label"]["enum"], serde_json::json!(contract.classes));
        let classes = &schemas["ModelMetadata"]["properties"]["classes"]["prefixItems"];
        assert_eq!(classes[1]["prefixItems"][1]["enum"][0], contract.classes[1].as_str());

        let post = &doc["paths"]["/"]["post"];
        let seed = format!("'body' must contain values for: {}", want[..n].join(", "));
        let missing = &doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["examples"]
            ["missing"]["value"];
        assert_eq!(missing["reason"], seed.as_str());
        assert!(doc["components"]["responses"]["BadRequest"]["description"].as_str().unwrap().contains(&seed));
        let example = &post["requestBody"]["content"]["application/json"]["examples"]["observation"]["value"];
        assert_eq!(example.as_object().unwrap().keys().collect::<Vec<_>>(), want[..n].iter().collect::<Vec<_>>());
        let explained = &post["responses"]["200"]["content"]["application/json"]["examples"]["explained"]["value"];
        assert_eq!(explained["label"], contract.classes[1].as_str());
        assert_eq!(explained["modelVersion"], contract.version.as_str());
        let metadata = &doc["paths"]["/"]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
            ["metadata"]["value"]["model"];
        assert_eq!(metadata["name"], contract.name.as_str());
        assert_eq!(metadata["features"].as_array().unwrap().len(), n);
        assert_eq!(metadata["features"][n - 1]["trainingMax"], contract.features[n - 1].max);
        doc
    }

    #[test]
    fn a_model_with_other_features_gets_them_everywhere() {
        let seven = from_export("models/testdata/breast-cancer-seven.json");
        assert_eq!(seven.features.len(), 7);
        let doc = check_other_model(&seven);
        let text = doc.to_string();
        assert!(text.contains("Predict from the seven measurements"), "{}", doc["paths"]["/"]["post"]["summary"]);
        assert!(!text.contains("breast-cancer-gbc"));
        // A warning names the model's feature at the template's position, with its range.
        let warnings = &doc["paths"]["/"]["post"]["responses"]["200"]["content"]["application/json"]["examples"]
            ["outOfRange"]["value"]["warnings"];
        assert_eq!(
            warnings[0],
            "'meanTexture' is outside the range seen in training (9.71 to 39.28); the prediction is less reliable"
        );
    }

    #[test]
    fn a_model_with_fewer_features_and_other_classes_names_only_its_own() {
        let clinic = from_export("models/testdata/clinic-outcomes-gbc.json");
        assert_eq!((clinic.features.len(), clinic.classes.clone()), (4, ["0".to_owned(), "1".to_owned()]));
        let doc = check_other_model(&clinic);
        let mut all = Vec::new();
        strings(&doc, &mut all);
        for word in ["malignant", "benign", "breast-cancer-gbc", "five"] {
            assert!(!all.iter().any(|s| s.contains(word)), "{word}: {:?}", all.iter().find(|s| s.contains(word)));
        }
        // The error example that named the fifth feature names none; the reason follows its items.
        let invalid = &doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["examples"]
            ["invalidValues"]["value"];
        assert_eq!(
            invalid["reason"],
            "'body' has invalid values: 'cellSizeUm' must be a number, not a string; 'bloodPressure' must not be negative"
        );
        let missing = &doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["examples"]
            ["missing"]["value"];
        // Every value absent: one item per feature of the model (the fifth's dropped).
        assert_eq!(missing["errors"].as_array().unwrap().len(), 4);
        assert_eq!(missing["errors"][3]["field"], "f2ndOpinionScore");
        // The new features' example values lie in their training range.
        let example = &doc["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["examples"]
            ["observation"]["value"];
        for f in &clinic.features {
            let v = example[&f.api_name].as_f64().unwrap();
            assert!(f.min <= v && v <= f.max, "{}: {v}", f.api_name);
        }
    }

    #[test]
    fn a_model_whose_features_are_the_shipped_ones_reordered_is_rewritten_without_mixing_them() {
        let mut swapped = shipped();
        swapped.features.swap(0, 1);
        swapped.classes.swap(0, 1);
        let doc = document(&swapped);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Observation"]["required"][0], "worstRadius");
        assert_eq!(schemas["Observation"]["properties"]["worstRadius"]["description"], "worst radius");
        assert_eq!(
            schemas["PredictionAnswer"]["properties"]["label"]["enum"],
            serde_json::json!(["malignant", "benign"])
        );
        let post = &doc["paths"]["/"]["post"];
        // Values stay with their names; the position-bound examples follow the positions.
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["examples"]["observation"]["value"]["worstRadius"],
            25.38
        );
        let seed = &doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["examples"]["missing"]
            ["value"]["reason"];
        assert_eq!(*seed, "'body' must contain values for: worstRadius, meanConcavePoints, worstTexture, worstArea, worstConcavePoints");
        let invalid = &doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["examples"]
            ["invalidValues"]["value"];
        assert_eq!(invalid["errors"][0]["field"], "worstRadius");
        assert_eq!(
            invalid["reason"],
            "'body' has invalid values: 'worstRadius' must be a number, not a string; 'meanConcavePoints' must not be negative"
        );
    }

    #[test]
    fn the_document_is_built_once() {
        let model = Model::embedded().unwrap();
        let lazy = LazyDocument::default();
        assert!(!lazy.is_built());
        let a: *const str = lazy.get(&model);
        assert!(lazy.is_built());
        let b: *const str = lazy.get(&model);
        assert!(std::ptr::eq(a, b));
        assert_eq!(serde_json::from_str::<Value>(lazy.get(&model)).unwrap(), template());
    }

    #[test]
    fn replace_all_scans_once_and_respects_word_boundaries() {
        let any = |_: Option<char>, _: Option<char>| true;
        assert_eq!(replace_all("a b a", &[("a", "b"), ("b", "a")], any), "b a b");
        assert_eq!(replace_all("'ab' 'a'", &[("'a'", "'x'"), ("'ab'", "'y'")], any), "'y' 'x'");
        let word = |b: Option<char>, a: Option<char>| {
            !b.is_some_and(char::is_alphanumeric) && !a.is_some_and(char::is_alphanumeric)
        };
        assert_eq!(replace_all("malignant (1), malignancy", &[("malignant", "1")], word), "1 (1), malignancy");
        assert_eq!(replace_all("é malignant é", &[("malignant", "x")], word), "é x é");
    }
}
