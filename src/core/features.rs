//! The model's features, as its export names them: the contract every path
//! follows. Nothing in the crate names a feature; each route gets the list
//! from the loaded model ([`crate::core::model::Model::features`]).
//!
//! Per-row work holds per-feature values inline, in arrays of
//! [`MAX_FEATURES`] (no heap allocation per row); an export with more
//! features is refused at load.

use arrayvec::ArrayVec;

/// The most features a model may have. The breast-cancer data has 30
/// candidate measurements; 32 leaves room and keeps per-row arrays small
/// (an observation is 256 bytes of values).
pub const MAX_FEATURES: usize = 32;

/// Per-feature values of one row, inline.
pub type PerFeature<T> = ArrayVec<T, MAX_FEATURES>;

/// One input feature: the key clients send and its name in the training data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// The JSON key, CSV header and metrics dimension value (`meanConcavePoints`).
    pub api_name: String,
    /// The training data's column name (`mean concave points`).
    pub dataset_name: String,
}

/// The model's features in its order, and what is derived from their names once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    list: Vec<Feature>,
    /// API names in order, joined with ", ".
    names_joined: String,
}

/// The seed service's message when values are missing, up to the names:
/// clients match on it, so it stays the reason's prefix.
pub const MISSING_VALUES_PREFIX: &str = "'body' must contain values for: ";

impl Features {
    /// Checks what the column-name rule needs to tell the features apart;
    /// the message names the rule broken.
    pub fn new(list: Vec<Feature>) -> Result<Self, String> {
        if list.is_empty() || list.len() > MAX_FEATURES {
            return Err(format!("it has {} features; a model has 1 to {MAX_FEATURES}", list.len()));
        }
        for (i, f) in list.iter().enumerate() {
            if f.api_name.is_empty() || !f.api_name.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "feature {i}'s API name {:?} must be ASCII letters and digits (camelCase)",
                    f.api_name
                ));
            }
            for name in [&f.api_name, &f.dataset_name] {
                super::columns::normalized(name)
                    .ok_or_else(|| format!("feature {i}'s name {name:?} is empty or too long to match"))?;
                if super::columns::RESERVED_KEYS.iter().any(|r| super::columns::names_reserved(name, r)) {
                    return Err(format!("feature {i}'s name {name:?} is a key the contract reserves (id, explain)"));
                }
            }
        }
        for (i, a) in list.iter().enumerate() {
            for b in &list[..i] {
                for x in [&a.api_name, &a.dataset_name] {
                    for y in [&b.api_name, &b.dataset_name] {
                        if super::columns::normalized(x) == super::columns::normalized(y) {
                            return Err(format!(
                                "features {:?} and {:?} have names the column-name rule cannot tell apart",
                                b.api_name, a.api_name
                            ));
                        }
                    }
                }
            }
        }
        let names: Vec<&str> = list.iter().map(|f| f.api_name.as_str()).collect();
        let names_joined = names.join(", ");
        Ok(Features { list, names_joined })
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, i: usize) -> &Feature {
        &self.list[i]
    }

    /// Feature `i`'s API name.
    pub fn api_name(&self, i: usize) -> &str {
        &self.list[i].api_name
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Feature> {
        self.list.iter()
    }

    /// API names in model order.
    pub fn api_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.list.iter().map(|f| f.api_name.as_str())
    }

    /// Finds a feature by its exact API name: the JSON fast path, tried
    /// before the column-name rule ([`super::columns::feature_by_name`]).
    pub fn by_api_name(&self, key: &str) -> Option<usize> {
        self.list.iter().position(|f| f.api_name == key)
    }

    /// Every API name in order, joined with ", ".
    pub fn api_names_joined(&self) -> &str {
        &self.names_joined
    }

    /// The seed's message when a value is absent:
    /// `'body' must contain values for: <every API name, in order>`.
    /// The reason when values are absent: the seed's message, naming only
    /// the `missing` features (by index, in the model's order).
    pub fn missing_values_reason(&self, missing: impl IntoIterator<Item = usize>) -> String {
        let mut reason = String::from(MISSING_VALUES_PREFIX);
        for (i, f) in missing.into_iter().enumerate() {
            if i > 0 {
                reason.push_str(", ");
            }
            reason.push_str(self.api_name(f));
        }
        reason
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// The shipped model's five features (tests of the rules that do not
    /// depend on which model is loaded use them as an example).
    pub fn shipped() -> Features {
        let f = |api: &str, dataset: &str| Feature { api_name: api.into(), dataset_name: dataset.into() };
        Features::new(vec![
            f("meanConcavePoints", "mean concave points"),
            f("worstRadius", "worst radius"),
            f("worstTexture", "worst texture"),
            f("worstArea", "worst area"),
            f("worstConcavePoints", "worst concave points"),
        ])
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(api: &str, dataset: &str) -> Feature {
        Feature { api_name: api.into(), dataset_name: dataset.into() }
    }

    #[test]
    fn the_seed_message_lists_the_models_features() {
        assert_eq!(
            testing::shipped().missing_values_reason(0..5),
            "'body' must contain values for: meanConcavePoints, worstRadius, worstTexture, worstArea, worstConcavePoints"
        );
        assert_eq!(
            testing::shipped().missing_values_reason([3, 4]),
            "'body' must contain values for: worstArea, worstConcavePoints"
        );
        let two = Features::new(vec![f("age", "age"), f("cellSizeUm", "Cell Size (um)")]).unwrap();
        assert_eq!(two.missing_values_reason([1]), "'body' must contain values for: cellSizeUm");
    }

    #[test]
    fn features_the_column_rule_cannot_tell_apart_or_too_many_are_refused() {
        let cases: [(Vec<Feature>, &str); 7] = [
            (vec![], "1 to 32"),
            ((0..33).map(|i| f(&format!("f{i}"), &format!("f {i}"))).collect(), "1 to 32"),
            (vec![f("worstArea", "worst area"), f("WorstArea", "x")], "cannot tell apart"),
            (vec![f("worstArea", "worst area"), f("area", "Worst-Area")], "cannot tell apart"),
            (vec![f("id", "identifier")], "reserves"),
            (vec![f("a", "Explain")], "reserves"),
            (vec![f("mean radius", "mean radius")], "ASCII letters and digits"),
        ];
        for (list, want) in cases {
            let err = Features::new(list).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let long = "x".repeat(65);
        assert!(Features::new(vec![f("a", &long)]).unwrap_err().contains("too long"));
        assert_eq!(Features::new((0..32).map(|i| f(&format!("f{i}"), &format!("g {i}"))).collect()).unwrap().len(), 32);
    }
}
