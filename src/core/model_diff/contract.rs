//! The contract of two exports side by side: which old feature is which new
//! one ([`FeatureMap`]), and every difference a client or an operator should
//! hear of ([`Change`]), each saying whether it breaks clients.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::core::columns::{feature_by_name, normalized};
use crate::core::model::Model;

/// How an old feature was found among the new model's. The passes run in
/// this order, each over the features the earlier ones left unmatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Match {
    /// The same API name, byte for byte.
    SameApiName,
    /// The old API name names the new feature by the column-name rule
    /// (`worstArea` and `WorstArea`, or the new dataset name `worst area`):
    /// what clients send still reaches it.
    ApiNameByRule,
    /// Renamed: the old dataset name names the new feature by the
    /// column-name rule, the old API name does not.
    DatasetName,
    /// Renamed: nothing of the old names matches, but the feature is at the
    /// same position and has exactly the same training range (min and max),
    /// and the new feature at that position matched nothing either.
    PositionAndRange,
}

impl Match {
    /// Clients sending the old API name no longer reach the feature.
    pub fn is_rename(self) -> bool {
        matches!(self, Match::DatasetName | Match::PositionAndRange)
    }
}

/// One pass of [`FeatureMap::new`]: the new feature an old one names, if any.
type Finder<'a> = dyn Fn(usize) -> Option<usize> + 'a;

/// Which old feature is which new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureMap {
    /// For each old feature (in the old model's order), its new counterpart and how it was found.
    pub old_to_new: Vec<Option<(usize, Match)>>,
    /// For each new feature, its old counterpart.
    pub new_to_old: Vec<Option<usize>>,
}

impl FeatureMap {
    /// Matches features by the passes of [`Match`], in order.
    pub fn new(old: &Model, new: &Model) -> Self {
        let (of, nf) = (old.features(), new.features());
        let mut map = FeatureMap { old_to_new: vec![None; of.len()], new_to_old: vec![None; nf.len()] };
        let passes: [(Match, &Finder); 4] = [
            (Match::SameApiName, &|i| nf.by_api_name(of.api_name(i))),
            (Match::ApiNameByRule, &|i| feature_by_name(nf, of.api_name(i))),
            (Match::DatasetName, &|i| feature_by_name(nf, &of.get(i).dataset_name)),
            (Match::PositionAndRange, &|i| (i < nf.len() && old.info().ranges[i] == new.info().ranges[i]).then_some(i)),
        ];
        for (how, find) in passes {
            for i in 0..of.len() {
                if map.old_to_new[i].is_some() {
                    continue;
                }
                if let Some(j) = find(i).filter(|&j| map.new_to_old[j].is_none()) {
                    map.old_to_new[i] = Some((j, how));
                    map.new_to_old[j] = Some(i);
                }
            }
        }
        map
    }
}

/// How a renamed feature was recognised (the JSON's `rule`).
pub type RenameRule = Match;

/// One difference between the two exports. [`Change::breaks_clients`] says
/// which ones break clients; `Display` is the sentence the report prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Change {
    /// A new feature: clients must send it.
    FeatureAdded {
        feature: String,
        dataset_name: String,
        position: usize,
    },
    /// The feature is still there, under an API name clients do not send yet.
    FeatureRenamed {
        old: String,
        new: String,
        rule: RenameRule,
        dataset_name: String,
        range: [f64; 2],
    },
    /// A feature the new model does not read; clients still sending it are fine.
    FeatureRemoved {
        feature: String,
        dataset_name: String,
        position: usize,
    },
    /// The features both models read, in another order (by their new API names).
    FeaturesReordered {
        old_order: Vec<String>,
        new_order: Vec<String>,
    },
    /// Another spelling of the API name that the old one still names by the column-name rule.
    ApiNameRespelled {
        old: String,
        new: String,
    },
    /// A kept feature's dataset name (what CSV headers may use) changed;
    /// `old_still_matches`: the old one still names it by the column-name
    /// rule (it is the new API name's spelling).
    DatasetNameChanged {
        feature: String,
        old: String,
        new: String,
        old_still_matches: bool,
    },
    TrainingRangeChanged {
        feature: String,
        old: [f64; 2],
        new: [f64; 2],
    },
    /// The names of labels 0 and 1 (the answers' `label`).
    ClassNamesChanged {
        old: [String; 2],
        new: [String; 2],
    },
    ExplanationsLost,
    ExplanationsGained,
    TrainingProfileLost,
    TrainingProfileGained,
    NameChanged {
        old: String,
        new: String,
    },
    ModelVersionChanged {
        old: String,
        new: String,
    },
    FormatVersionChanged {
        old: u32,
        new: u32,
    },
    TreesChanged {
        old: usize,
        new: usize,
    },
    MaxDepthChanged {
        old: usize,
        new: usize,
    },
    ParameterChanged {
        parameter: String,
        old: Option<Value>,
        new: Option<Value>,
    },
    MetricChanged {
        metric: String,
        old: Option<Value>,
        new: Option<Value>,
    },
}

impl Change {
    /// A client that worked with the old export can fail with the new one:
    /// a feature added or renamed (a key it does not send is now needed), a
    /// dataset name changed so that a CSV header naming it so no longer matches,
    /// class names changed (the answers' `label`), explanations lost
    /// (`explain` requests are refused).
    pub fn breaks_clients(&self) -> bool {
        matches!(
            self,
            Change::FeatureAdded { .. }
                | Change::FeatureRenamed { .. }
                | Change::DatasetNameChanged { old_still_matches: false, .. }
                | Change::ClassNamesChanged { .. }
                | Change::ExplanationsLost
        )
    }
}

/// A training range as the report writes it.
fn range(r: &[f64; 2]) -> String {
    format!("{} to {}", r[0], r[1])
}

/// A JSON value in a sentence (`absent` when there is none).
fn value(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "absent".to_owned(), Value::to_string)
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::FeatureAdded { feature, dataset_name, .. } => {
                write!(f, "feature added: {feature} ({dataset_name:?}); clients must send it")
            }
            Change::FeatureRenamed { old, new, rule, dataset_name, range: r } => {
                let why = match rule {
                    Match::DatasetName => format!("the same dataset name {dataset_name:?}"),
                    _ => format!("the same position and training range ({}), other names", range(r)),
                };
                write!(f, "feature renamed: {old} -> {new} ({why}); clients sending {old} must send {new}")
            }
            Change::FeatureRemoved { feature, dataset_name, .. } => write!(
                f,
                "feature removed: {feature} ({dataset_name:?}); clients still sending it are fine (extra keys and \
                 columns are ignored)"
            ),
            Change::FeaturesReordered { old_order, new_order } => write!(
                f,
                "features reordered: {} -> {}; nothing breaks (keys and columns are found by name), but what is \
                 written in model order (contribution_<apiName> columns, explanations) follows the new order",
                old_order.join(", "),
                new_order.join(", ")
            ),
            Change::ApiNameRespelled { old, new } => write!(
                f,
                "API name respelled: {old} -> {new}; clients sending {old} still reach it (the column-name rule)"
            ),
            Change::DatasetNameChanged { feature, old, new, old_still_matches: false } => write!(
                f,
                "dataset name of {feature} changed: {old:?} -> {new:?}; CSV files whose header names it {old:?} \
                 no longer reach it"
            ),
            Change::DatasetNameChanged { feature, old, new, old_still_matches: true } => write!(
                f,
                "dataset name of {feature} changed: {old:?} -> {new:?}; headers naming it {old:?} still reach it \
                 (the column-name rule matches the API name)"
            ),
            Change::TrainingRangeChanged { feature, old, new } => write!(
                f,
                "training range of {feature}: {} -> {}; out-of-range warnings follow the new range",
                range(old),
                range(new)
            ),
            Change::ClassNamesChanged { old, new } => write!(
                f,
                "class names (labels 0, 1): {}, {} -> {}, {}; answers' label changes (prediction 0/1 does not)",
                old[0], old[1], new[0], new[1]
            ),
            Change::ExplanationsLost => f.write_str(
                "explanations lost: the new export cannot explain (format version 1); explain requests are refused",
            ),
            Change::ExplanationsGained => f.write_str("explanations gained: the new export can explain"),
            Change::TrainingProfileLost => {
                f.write_str("training profile lost (format version 1): drift reports have no PSI and no alert")
            }
            Change::TrainingProfileGained => f.write_str("training profile gained: drift reports get PSI and alerts"),
            Change::NameChanged { old, new } => write!(f, "model name: {old} -> {new}"),
            Change::ModelVersionChanged { old, new } => write!(f, "modelVersion: {old} -> {new}"),
            Change::FormatVersionChanged { old, new } => write!(f, "format version: {old} -> {new}"),
            Change::TreesChanged { old, new } => write!(f, "trees: {old} -> {new}"),
            Change::MaxDepthChanged { old, new } => write!(f, "deepest tree: {old} -> {new} splits"),
            Change::ParameterChanged { parameter, old, new } => {
                write!(f, "parameter {parameter}: {} -> {}", value(old), value(new))
            }
            Change::MetricChanged { metric, old, new } => {
                write!(f, "metric {metric}: {} -> {}", value(old), value(new))
            }
        }
    }
}

/// Every difference between `old` and `new`, contract first (what breaks
/// clients, then what does not), then facts about the export.
pub fn compare_contract(old: &Model, new: &Model, map: &FeatureMap) -> Vec<Change> {
    let (of, nf) = (old.features(), new.features());
    let (oi, ni) = (old.info(), new.info());
    let pair = |r: (f64, f64)| [r.0, r.1];
    let mut changes = Vec::new();

    for (j, f) in nf.iter().enumerate().filter(|(j, _)| map.new_to_old[*j].is_none()) {
        changes.push(Change::FeatureAdded {
            feature: f.api_name.clone(),
            dataset_name: f.dataset_name.clone(),
            position: j,
        });
    }
    for (i, &(j, how)) in map.old_to_new.iter().enumerate().filter_map(|(i, m)| Some((i, m.as_ref()?))) {
        if how.is_rename() {
            changes.push(Change::FeatureRenamed {
                old: of.api_name(i).to_owned(),
                new: nf.api_name(j).to_owned(),
                rule: how,
                dataset_name: of.get(i).dataset_name.clone(),
                range: pair(oi.ranges[i]),
            });
        }
    }
    for (i, f) in of.iter().enumerate().filter(|(i, _)| map.old_to_new[*i].is_none()) {
        changes.push(Change::FeatureRemoved {
            feature: f.api_name.clone(),
            dataset_name: f.dataset_name.clone(),
            position: i,
        });
    }
    // Kept features (renamed ones included) by their new API names, in the
    // old order and in the new order.
    let old_order: Vec<usize> = map.old_to_new.iter().filter_map(|m| m.map(|(j, _)| j)).collect();
    let new_order: Vec<usize> = (0..nf.len()).filter(|&j| map.new_to_old[j].is_some()).collect();
    if old_order != new_order {
        let names = |order: &[usize]| order.iter().map(|&j| nf.api_name(j).to_owned()).collect();
        changes.push(Change::FeaturesReordered { old_order: names(&old_order), new_order: names(&new_order) });
    }
    for (i, &(j, how)) in map.old_to_new.iter().enumerate().filter_map(|(i, m)| Some((i, m.as_ref()?))) {
        let (o, n) = (of.get(i), nf.get(j));
        if how == Match::ApiNameByRule {
            changes.push(Change::ApiNameRespelled { old: o.api_name.clone(), new: n.api_name.clone() });
        }
        // Only for features clients still reach (a rename says it already),
        // and only when the rule tells the two names apart.
        if !how.is_rename() && normalized(&o.dataset_name) != normalized(&n.dataset_name) {
            changes.push(Change::DatasetNameChanged {
                feature: n.api_name.clone(),
                old: o.dataset_name.clone(),
                new: n.dataset_name.clone(),
                old_still_matches: feature_by_name(nf, &o.dataset_name) == Some(j),
            });
        }
        if oi.ranges[i] != ni.ranges[j] {
            changes.push(Change::TrainingRangeChanged {
                feature: n.api_name.clone(),
                old: pair(oi.ranges[i]),
                new: pair(ni.ranges[j]),
            });
        }
    }
    let classes = |m: &Model| [m.class_name(0).to_owned(), m.class_name(1).to_owned()];
    if classes(old) != classes(new) {
        changes.push(Change::ClassNamesChanged { old: classes(old), new: classes(new) });
    }
    match (old.can_explain(), new.can_explain()) {
        (true, false) => changes.push(Change::ExplanationsLost),
        (false, true) => changes.push(Change::ExplanationsGained),
        _ => {}
    }
    match (old.training_profile().is_some(), new.training_profile().is_some()) {
        (true, false) => changes.push(Change::TrainingProfileLost),
        (false, true) => changes.push(Change::TrainingProfileGained),
        _ => {}
    }
    if oi.name != ni.name {
        changes.push(Change::NameChanged { old: oi.name.clone(), new: ni.name.clone() });
    }
    if oi.version != ni.version {
        changes.push(Change::ModelVersionChanged { old: oi.version.clone(), new: ni.version.clone() });
    }
    if oi.format_version != ni.format_version {
        changes.push(Change::FormatVersionChanged { old: oi.format_version, new: ni.format_version });
    }
    if oi.tree_count != ni.tree_count {
        changes.push(Change::TreesChanged { old: oi.tree_count, new: ni.tree_count });
    }
    if oi.max_depth != ni.max_depth {
        changes.push(Change::MaxDepthChanged { old: oi.max_depth, new: ni.max_depth });
    }
    for (key, old, new) in object_changes(&oi.parameters, &ni.parameters) {
        changes.push(Change::ParameterChanged { parameter: key, old, new });
    }
    for (key, old, new) in object_changes(&oi.metrics, &ni.metrics) {
        changes.push(Change::MetricChanged { metric: key, old, new });
    }
    changes
}

/// The keys whose values differ between two JSON objects (old keys in their
/// order, then keys only the new one has). A value that is not an object
/// counts as an object without keys.
fn object_changes(old: &Value, new: &Value) -> Vec<(String, Option<Value>, Option<Value>)> {
    let empty = serde_json::Map::new();
    let (old, new) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    let keys = old.keys().chain(new.keys().filter(|k| !old.contains_key(*k)));
    keys.filter_map(|k| {
        let (a, b) = (old.get(k), new.get(k));
        (a != b).then(|| (k.clone(), a.cloned(), b.cloned()))
    })
    .collect()
}
