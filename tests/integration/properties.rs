//! Property tests: one validation and one inference path, whatever the door.

use proptest::prelude::*;
use scorer::adapters::sqs::{classify, result_line, Message};
use scorer::core::csv_pipeline::score_csv;
use scorer::core::model::Model;
use scorer::core::observation::Observation;
use scorer::core::observation_json::parse_observation_json;
use scorer::core::scoring::{Scorer, Wants};
use scorer::core::status::Status;
use std::sync::OnceLock;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::embedded().unwrap())
}

/// Valid measurements: finite, non-negative, within float32, at many scales.
fn valid_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..1.0f64,
        0.0..5000.0f64,
        (0.0..1.0f64, -30i32..38).prop_map(|(m, e)| m * 10f64.powi(e)),
        Just(0.0),
        Just(f32::MAX as f64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn json_csv_and_sqs_paths_give_the_same_prediction(values in prop::array::uniform5(valid_value())) {
        let model = model();
        let direct = model.predict(&Observation::from_values(values).unwrap());

        let json = serde_json::json!({
            "meanConcavePoints": values[0], "worstRadius": values[1], "worstTexture": values[2],
            "worstArea": values[3], "worstConcavePoints": values[4],
        }).to_string();
        let via_json = model.predict(&parse_observation_json(model.features(), json.as_bytes()).unwrap().observation.unwrap());
        prop_assert_eq!(via_json, direct);

        let mut csv = b"worst area,meanConcavePoints,worstRadius,worstTexture,worstConcavePoints\n".to_vec();
        let cell = |v: f64| ryu::Buffer::new().format(v).to_owned();
        csv.extend(format!("{},{},{},{},{}\n", cell(values[3]), cell(values[0]), cell(values[1]), cell(values[2]), cell(values[4])).bytes());
        let mut out = Vec::new();
        score_csv(model, &csv[..], &mut out, |_| {}).unwrap();
        let mut reader = csv::Reader::from_reader(&out[..]);
        let row = reader.records().next().unwrap().unwrap();
        let label = direct.label.to_string();
        prop_assert_eq!(&row[5], label.as_str());
        prop_assert_eq!(row[6].parse::<f64>().unwrap(), direct.probability);
        prop_assert_eq!(&row[7], "200");

        let Message::Observations(items) = classify(model.features(), &json) else { panic!("an observation message") };
        let mut scorer = Scorer::new(model, Wants::default()).unwrap();
        let line = result_line(&mut scorer, "m", 0, items.into_iter().next().unwrap());
        prop_assert_eq!(line.status, Status::Ok);
        prop_assert_eq!(line.probability, Some(direct.probability));
    }

}

/// What sklearn refuses after its float32 cast: 2^128 - 2^103 and above round to infinity.
const FLOAT32_OVERFLOW: f64 = 3.4028235677973366e38;

/// A value the model can meet for `feature`, all of them valid: any finite
/// non-negative float32 (drawn by bit pattern, so every magnitude is as
/// likely), float64 values between two float32 neighbours (the cast decides),
/// the training range, and each of the feature's split thresholds (the
/// model's bin edges) with its float32 neighbours, where a comparison goes
/// one way or the other.
fn reachable_value(feature: usize) -> impl Strategy<Value = f64> {
    let thresholds = model().bin_edges(feature).to_vec();
    let (lo, hi) = model().info().ranges[feature];
    let largest_accepted = f64::from_bits(FLOAT32_OVERFLOW.to_bits() - 1);
    prop_oneof![
        // Below +infinity's bit pattern: every finite non-negative float32, subnormals included.
        (0u32..0x7f80_0000).prop_map(|bits| f64::from(f32::from_bits(bits))),
        (0u32..0x7f7f_ffff, 0.0..1.0f64).prop_map(|(bits, t)| {
            let (a, b) = (f64::from(f32::from_bits(bits)), f64::from(f32::from_bits(bits + 1)));
            a + (b - a) * t
        }),
        lo..=hi,
        (prop::sample::select(thresholds), -2i32..=2, any::<bool>()).prop_map(|(threshold, ulps, as_f64)| {
            if as_f64 && ulps == 0 {
                return threshold;
            }
            let mut x = threshold as f32;
            for _ in 0..ulps.unsigned_abs() {
                x = if ulps > 0 { x.next_up() } else { x.next_down() };
            }
            f64::from(x).max(0.0)
        }),
        Just(0.0),
        Just(-0.0),
        Just(largest_accepted),
    ]
}

fn reachable_observation() -> impl Strategy<Value = [f64; 5]> {
    [reachable_value(0), reachable_value(1), reachable_value(2), reachable_value(3), reachable_value(4)]
}

/// A value that must be rejected, and the code it must be rejected with.
fn invalid_value() -> impl Strategy<Value = (f64, &'static str)> {
    prop_oneof![
        Just((f64::NAN, "not_finite")),
        Just((-f64::NAN, "not_finite")),
        Just((f64::INFINITY, "not_finite")),
        Just((f64::NEG_INFINITY, "not_finite")),
        // Every finite negative float64 (-0.0 is a valid zero).
        (1u64..0x7ff0_0000_0000_0000).prop_map(|bits| (-f64::from_bits(bits), "negative")),
        (FLOAT32_OVERFLOW.to_bits()..=f64::MAX.to_bits()).prop_map(|bits| (f64::from_bits(bits), "too_large")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Every generated observation reaches the model (none is rejected first).
    #[test]
    fn the_model_never_panics_and_agrees_with_the_tree_walk_on_every_value_it_can_meet(values in reachable_observation()) {
        let obs = Observation::from_values(values);
        prop_assert!(obs.is_ok(), "{:?} was rejected: {:?}", values, obs);
        let obs = obs.unwrap();
        let p = model().predict(&obs);
        prop_assert!((0.0..=1.0).contains(&p.probability));
        let exact = model().predict_exact(&obs);
        prop_assert_eq!(p.label, exact.label);
        prop_assert!((p.probability - exact.probability).abs() <= 1e-12, "{} vs {}", p.probability, exact.probability);
        prop_assert_eq!(model().predict_with_bins(&obs).0, p);
    }

    /// One to five values made invalid: each is named, with its rule, and no other.
    #[test]
    fn every_invalid_value_is_rejected_naming_its_field_and_rule(
        valid in reachable_observation(),
        positions in prop::sample::subsequence((0..5).collect::<Vec<usize>>(), 1..=5),
        bad in prop::array::uniform5(invalid_value()),
    ) {
        let mut values = valid;
        for &p in &positions {
            values[p] = bad[p].0;
        }
        let rejection = Observation::from_values(values);
        prop_assert!(rejection.is_err(), "{:?} was accepted", values);
        let named: Vec<(usize, &str)> =
            rejection.unwrap_err().errors().iter().map(|e| (e.feature, e.problem.code())).collect();
        let expected: Vec<(usize, &str)> = positions.iter().map(|&p| (p, bad[p].1)).collect();
        prop_assert_eq!(named, expected);
    }
}

/// Cells of every sort: numbers, text, empty, quotes, commas, newlines, unicode.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        valid_value().prop_map(|v| v.to_string()),
        Just(String::new()),
        Just("-1".to_owned()),
        Just("NaN".to_owned()),
        "[a-z ,\"\n\r\u{e9}\u{2603}]{0,12}",
    ]
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) || cell.is_empty() {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_input_row_appears_exactly_once_in_order(
        rows in prop::collection::vec(prop::collection::vec(cell(), 1..9), 0..40),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut input = format!("id,meanConcavePoints,worstRadius,worstTexture,worstArea,worstConcavePoints,note{eol}");
        for (i, row) in rows.iter().enumerate() {
            let mut cells = vec![format!("r{i}")];
            cells.extend(row.iter().map(|c| quote(c)));
            input.push_str(&cells.join(","));
            input.push_str(eol);
        }
        let mut out = Vec::new();
        let counts = score_csv(model(), input.as_bytes(), &mut out, |_| {}).unwrap();
        let read: Vec<csv::StringRecord> = csv::Reader::from_reader(&out[..]).records().map(Result::unwrap).collect();
        prop_assert_eq!(read.len(), rows.len());
        prop_assert_eq!(counts.rows as usize, rows.len());
        prop_assert_eq!(counts.scored + counts.rejected, counts.rows);
        for (i, record) in read.iter().enumerate() {
            let id = format!("r{i}");
            prop_assert_eq!(&record[0], id.as_str());
            prop_assert_eq!(record.len(), 12);
            prop_assert!(&record[9] == "200" || &record[9] == "400");
        }
    }
}
