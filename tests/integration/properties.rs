//! Property tests: one validation and one inference path, whatever the door.

use proptest::prelude::*;
use scorer::adapters::sqs::{classify, result_line, Message};
use scorer::core::batch::score_csv;
use scorer::core::model::Model;
use scorer::core::observation::Observation;
use scorer::core::observation_json::parse_observation_json;
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
        let via_json = model.predict(&parse_observation_json(json.as_bytes()).unwrap().observation.unwrap());
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

        let Message::Observations(items) = classify(&json) else { panic!("an observation message") };
        let line = result_line(model, "m", 0, items.into_iter().next().unwrap());
        prop_assert_eq!(line.status, Status::Ok);
        prop_assert_eq!(line.probability, Some(direct.probability));
    }

    #[test]
    fn the_model_never_panics_and_stays_a_probability(values in prop::array::uniform5(any::<f64>())) {
        if let Ok(obs) = Observation::from_values(values) {
            let p = model().predict(&obs);
            prop_assert!((0.0..=1.0).contains(&p.probability));
            prop_assert_eq!(p.label, model().predict_exact(&obs).label);
        }
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
            prop_assert_eq!(record.len(), 11);
            prop_assert!(&record[9] == "200" || &record[9] == "400");
        }
    }
}
