//! A JSON object body -> [`Observation`], without building a `serde_json::Value`
//! and without allocating for keys. Used by the Function URL and the queue
//! messages; values go through [`Observation::from_inputs`] like CSV cells.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::columns::{feature_by_name, names_reserved, put_value};
use super::features::Features;
use super::observation::{missing_inputs, FieldInput, Observation, Rejection};

/// Longest `id` we carry: ids are echoed, not stored forever.
pub const MAX_ID_CHARS: usize = 256;

/// A body that is a JSON object: its observation (or why not) and its `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub id: Option<String>,
    pub observation: Result<Observation, Rejection>,
}

/// Why a body is not an observation object at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Holds the model's API names, joined with ", ".
    #[error("'body' is empty; it must be a JSON object with values for: {0}")]
    Empty(String),
    /// serde_json's own message can quote the input, so only the position is kept.
    #[error("'body' is not valid JSON ({what} at line {line}, column {column})")]
    NotJson { what: &'static str, line: usize, column: usize },
    #[error("'body' must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    /// RFC 8259: JSON exchanged between systems must be UTF-8. Told apart
    /// from other bad JSON so the answer can say what to change.
    #[error("'body' is not UTF-8 (it looks like UTF-16 or UTF-32): send JSON encoded as UTF-8")]
    NotUtf8,
    #[error("'id' must be a string or an integer of at most 256 characters")]
    InvalidId,
    /// Two keys name `id` by the column-name rule (`id` and `Id`): which one is meant is unclear.
    #[error("'id' is given more than once (keys such as id, Id and ID all name it)")]
    DuplicateId,
}

impl BodyError {
    /// The code of an input that is not an observation object at all (also
    /// the Distributed Map's and the queue's, for items and lines).
    pub const NOT_AN_OBJECT: &'static str = "not_an_object";

    pub fn code(&self) -> &'static str {
        match self {
            BodyError::Empty(_) => "empty_body",
            BodyError::NotJson { .. } => "not_json",
            BodyError::NotAnObject(_) => Self::NOT_AN_OBJECT,
            BodyError::NotUtf8 => "not_utf8",
            BodyError::InvalidId => "invalid_id",
            BodyError::DuplicateId => "duplicate",
        }
    }
}

/// Parses one JSON observation object. A UTF-8 byte-order mark before it is
/// ignored (RFC 8259 allows a parser to; some Windows clients send one).
/// Keys name features by the column-name rule; two keys naming one feature
/// are a `duplicate` field error.
pub fn parse_observation_json(features: &Features, body: &[u8]) -> Result<Submission, BodyError> {
    let body = without_json_bom(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty(features.api_names_joined().to_owned()));
    }
    if looks_wide(body) {
        return Err(BodyError::NotUtf8);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = de.deserialize_any(BodyVisitor(features)).and_then(|b| de.end().map(|()| b));
    match parsed {
        Ok(Body::Object { observation, id }) => {
            let id = id?;
            Ok(Submission { id, observation })
        }
        Ok(Body::Other(kind)) => Err(BodyError::NotAnObject(kind)),
        Err(e) => Err(json_error(&e)),
    }
}

/// A UTF-16 or UTF-32 text (with or without its mark): a mark, or a zero
/// byte among the first two (JSON's first character is ASCII, and a raw
/// zero byte is never valid UTF-8 JSON), as RFC 4627 section 3 tells them apart.
fn looks_wide(body: &[u8]) -> bool {
    body.starts_with(b"\xff\xfe") || body.starts_with(b"\xfe\xff") || body.iter().take(2).any(|&b| b == 0)
}

/// A JSON text without the UTF-8 byte-order mark it may begin with: the one
/// rule for every path that reads JSON bodies (HTTP, SQS).
pub fn without_json_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body)
}

/// A position-only description of a serde_json error (its text may echo input).
pub fn json_error(e: &serde_json::Error) -> BodyError {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        serde_json::error::Category::Syntax if e.to_string().starts_with("number out of range") => {
            "number out of range"
        }
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Io => "read error",
    };
    BodyError::NotJson { what, line: e.line(), column: e.column() }
}

// One per body, on the stack: boxing the inline inputs would allocate per request.
#[allow(clippy::large_enum_variant)]
enum Body {
    /// Validated where the inputs were read: the inline inputs (three times the
    /// observation's size) are never moved.
    Object {
        observation: Result<Observation, Rejection>,
        id: Result<Option<String>, BodyError>,
    },
    Other(&'static str),
}

struct BodyVisitor<'f>(&'f Features);

impl<'de> Visitor<'de> for BodyVisitor<'_> {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut inputs = missing_inputs(self.0.len());
        let mut id = Ok(None);
        let mut id_seen = false;
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            match key {
                Key::Feature(i) => {
                    let v = map.next_value_seed(ValueSeed)?;
                    put_value(&mut inputs, i, v);
                }
                Key::Id => {
                    let v = map.next_value_seed(IdSeed)?;
                    id = if id_seen { Err(BodyError::DuplicateId) } else { v };
                    id_seen = true;
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Body::Object { observation: Observation::from_inputs(&inputs), id })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Body::Other("an array"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Body, E> {
        Ok(Body::Other("a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Body, E> {
        Ok(Body::Other("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Body, E> {
        Ok(Body::Other("null"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Body, E> {
        Ok(Body::Other("a number"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Body, E> {
        Ok(Body::Other("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Body, E> {
        Ok(Body::Other("a number"))
    }
}

enum Key {
    Feature(usize),
    Id,
    Other,
}

struct KeySeed<'f>(&'f Features);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        // Exact camelCase keys first (the contract, the hot path); the
        // column-name rule only for a key that missed, `id` included (no
        // feature may be named so).
        Ok(if let Some(f) = self.0.by_api_name(key) {
            Key::Feature(f)
        } else if key == "id" || names_reserved(key, "id") {
            Key::Id
        } else {
            feature_by_name(self.0, key).map_or(Key::Other, Key::Feature)
        })
    }
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = FieldInput<'static>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = FieldInput<'static>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(FieldInput::Number(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(FieldInput::Number(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(FieldInput::Number(v as f64))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(FieldInput::WrongType("a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(FieldInput::WrongType("a boolean"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FieldInput::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FieldInput::WrongType("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(FieldInput::WrongType("an object"))
    }
}

struct IdSeed;

impl<'de> DeserializeSeed<'de> for IdSeed {
    type Value = Result<Option<String>, BodyError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdSeed {
    type Value = Result<Option<String>, BodyError>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(if v.chars().count() <= MAX_ID_CHARS { Ok(Some(v.to_owned())) } else { Err(BodyError::InvalidId) })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Ok(Some(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Ok(Some(v.to_string())))
    }
    /// `"id": null` is no id (the contract's `Id` is a string or an integer).
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(BodyError::InvalidId))
    }
    /// A number with no fractional part is an integer, as JSON Schema counts
    /// (`1.0`, `1e3`), echoed as the integer; an integer beyond 64 bits
    /// (which serde_json reads as a float) is not an id. -2^63 itself is
    /// refused here: integers just below it (-2^63 - 1 ...) arrive rounded
    /// to it (written as an integer, -2^63 is read by `visit_i64`).
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        const MIN: f64 = i64::MIN as f64; // -2^63, exact
        const END: f64 = 18_446_744_073_709_551_616.0; // 2^64
        Ok(match v {
            _ if v.fract() != 0.0 || v <= MIN || v >= END => Err(BodyError::InvalidId),
            _ if v < 0.0 => Ok(Some((v as i64).to_string())),
            _ => Ok(Some((v as u64).to_string())),
        })
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(BodyError::InvalidId))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(BodyError::InvalidId))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err(BodyError::InvalidId))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::features::testing::shipped;
    use crate::core::observation::Problem;

    fn parse(body: &[u8]) -> Result<Submission, BodyError> {
        parse_observation_json(&shipped(), body)
    }

    const VALID: &str =
        r#"{"meanConcavePoints":0.1,"worstRadius":20,"worstTexture":25.5,"worstArea":1200,"worstConcavePoints":0.2}"#;

    #[test]
    fn parses_a_valid_object_in_any_key_order_ignoring_unknown_keys() {
        let s = parse(VALID.as_bytes()).unwrap();
        assert_eq!(s.observation.unwrap().values(), [0.1, 20.0, 25.5, 1200.0, 0.2]);
        let shuffled = r#"{"x":{"a":[1,2]},"worstConcavePoints":0.2,"worstArea":1200,"id":"s-1","worstTexture":25.5,"worstRadius":20,"meanConcavePoints":0.1}"#;
        let s = parse(shuffled.as_bytes()).unwrap();
        assert_eq!(s.id.as_deref(), Some("s-1"));
        assert_eq!(s.observation.unwrap().values(), [0.1, 20.0, 25.5, 1200.0, 0.2]);
    }

    #[test]
    fn escaped_keys_are_recognised() {
        let body = VALID.replace("worstArea", r"worst\u0041rea");
        assert!(parse(body.as_bytes()).unwrap().observation.is_ok());
    }

    #[test]
    fn field_problems_become_a_rejection() {
        let cases = [
            (r#""0.1""#, Problem::WrongType("a string")),
            (r#""NaN""#, Problem::WrongType("a string")),
            ("true", Problem::WrongType("a boolean")),
            ("[1]", Problem::WrongType("an array")),
            ("{}", Problem::WrongType("an object")),
            ("null", Problem::Null),
            ("-1", Problem::Negative),
            ("-0.5", Problem::Negative),
            ("1e39", Problem::TooLarge),
        ];
        for (value, problem) in cases {
            let body = VALID.replace("1200", value);
            let r = parse(body.as_bytes()).unwrap().observation.unwrap_err();
            assert_eq!(r.errors()[0].problem, problem, "{value}");
            assert_eq!(r.errors()[0].field(&shipped()), "worstArea");
        }
        let missing = parse(br#"{"worstArea":1}"#).unwrap().observation.unwrap_err();
        assert_eq!(missing.errors().len(), 4);
        assert_eq!(
            missing.reason(&shipped()),
            "'body' must contain values for: meanConcavePoints, worstRadius, worstTexture, worstConcavePoints"
        );
        let dup = VALID.replace("}", r#","worstArea":3}"#);
        let r = parse(dup.as_bytes()).unwrap().observation.unwrap_err();
        assert_eq!(r.errors()[0].problem, Problem::Duplicate);
    }

    #[test]
    fn bodies_that_are_not_objects_are_named() {
        let empty = parse(b"").unwrap_err();
        assert_eq!(empty, BodyError::Empty(shipped().api_names_joined().to_owned()));
        assert_eq!(
            empty.to_string(),
            "'body' is empty; it must be a JSON object with values for: meanConcavePoints, worstRadius, worstTexture, \
             worstArea, worstConcavePoints"
        );
        assert!(matches!(parse(b" \n"), Err(BodyError::Empty(_))));
        assert_eq!(parse(b"[1,2]"), Err(BodyError::NotAnObject("an array")));
        assert_eq!(parse(b"\"x\""), Err(BodyError::NotAnObject("a string")));
        assert_eq!(parse(b"null"), Err(BodyError::NotAnObject("null")));
        assert_eq!(parse(b"12"), Err(BodyError::NotAnObject("a number")));
        for bad in [&b"{"[..], b"{\"a\":}", b"{} x", b"NaN", b"{\"worstArea\": NaN}", b"\xfe", b"{\"worstArea\":1e400}"]
        {
            assert!(matches!(parse(bad), Err(BodyError::NotJson { .. })), "{bad:?}");
        }
        let e = parse(br#"{"worstArea":"secret-value"#).unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn a_utf16_or_utf32_body_with_or_without_its_mark_is_not_utf8_not_bad_json() {
        let utf16 = |mark: &[u8], be: bool| {
            let mut body = mark.to_vec();
            body.extend(VALID.encode_utf16().flat_map(|u| if be { u.to_be_bytes() } else { u.to_le_bytes() }));
            body
        };
        for body in [utf16(b"\xff\xfe", false), utf16(b"", false), utf16(b"\xfe\xff", true), utf16(b"", true)] {
            assert_eq!(parse(&body), Err(BodyError::NotUtf8), "{:?}", &body[..4]);
        }
        let utf32: Vec<u8> = VALID.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
        assert_eq!(parse(&utf32), Err(BodyError::NotUtf8));
        assert_eq!(BodyError::NotUtf8.code(), "not_utf8");
        assert!(BodyError::NotUtf8.to_string().contains("send JSON encoded as UTF-8"));
    }

    #[test]
    fn the_id_key_follows_the_column_name_rule_and_two_keys_naming_it_are_a_duplicate() {
        for key in ["id", "Id", "ID", " id ", "i_d"] {
            let body = VALID.replace("{", &format!(r#"{{"{key}":"lab-7","#));
            let s = parse(body.as_bytes()).unwrap();
            assert_eq!(s.id.as_deref(), Some("lab-7"), "{key}");
            assert!(s.observation.is_ok(), "{key}");
        }
        let body = VALID.replace("{", r#"{"Id":"lab-7","id":"lab-8","#);
        assert_eq!(parse(body.as_bytes()), Err(BodyError::DuplicateId));
        assert_eq!(BodyError::DuplicateId.code(), "duplicate");
        // Not an id: other words that contain it.
        let body = VALID.replace("{", r#"{"idx":"lab-7","#);
        assert_eq!(parse(body.as_bytes()).unwrap().id, None);
    }

    #[test]
    fn keys_in_pascal_snake_or_dataset_case_and_a_leading_bom_are_accepted() {
        let want = [0.1, 20.0, 25.5, 1200.0, 0.2];
        let bodies = [
            r#"{"MeanConcavePoints":0.1,"WorstRadius":20,"WorstTexture":25.5,"WorstArea":1200,"WorstConcavePoints":0.2}"#
                .to_owned(),
            r#"{"mean_concave_points":0.1,"worst_radius":20,"worst_texture":25.5,"worst_area":1200,"worst_concave_points":0.2}"#
                .to_owned(),
            r#"{"mean concave points":0.1,"worst radius":20,"worst texture":25.5,"worst area (mm2)":1200,"worst concave points":0.2}"#
                .to_owned(),
            format!("\u{feff}{VALID}"),
            format!("\u{feff} \n{VALID}"),
        ];
        for body in &bodies {
            let s = parse(body.as_bytes()).unwrap();
            assert_eq!(s.observation.unwrap().values(), want, "{body}");
        }
        // Only one mark, only at the start.
        assert!(matches!(parse(b"\xef\xbb\xbf"), Err(BodyError::Empty(_))));
        let twice = format!("\u{feff}\u{feff}{VALID}");
        assert!(matches!(parse(twice.as_bytes()), Err(BodyError::NotJson { .. })));
    }

    #[test]
    fn two_keys_naming_one_feature_are_a_duplicate_naming_the_field() {
        for extra in [r#""worst_area":3"#, r#""WorstArea":3"#, r#""worst area":3"#] {
            let body = VALID.replace("}", &format!(",{extra}}}"));
            let r = parse(body.as_bytes()).unwrap().observation.unwrap_err();
            assert_eq!(r.errors().len(), 1, "{extra}");
            assert_eq!((r.errors()[0].field(&shipped()), r.errors()[0].problem.code()), ("worstArea", "duplicate"));
        }
    }

    #[test]
    fn ids_are_strings_or_integers() {
        let with_id = |id: &str| VALID.replace("{", &format!("{{\"id\":{id},"));
        assert_eq!(parse(with_id("42").as_bytes()).unwrap().id.as_deref(), Some("42"));
        assert_eq!(
            parse(with_id("-9223372036854775808").as_bytes()).unwrap().id.as_deref(),
            Some("-9223372036854775808")
        );
        assert_eq!(
            parse(with_id("18446744073709551615").as_bytes()).unwrap().id.as_deref(),
            Some("18446744073709551615")
        );
        for (id, echoed) in [
            ("-31699152056.0", "-31699152056"),
            ("1e3", "1000"),
            ("-0.0", "0"),
            ("1.8446744073709550e19", "18446744073709549568"),
        ] {
            assert_eq!(parse(with_id(id).as_bytes()).unwrap().id.as_deref(), Some(echoed), "{id}");
        }
        for bad in [
            "null",
            "18446744073709551616",
            "1.8446744073709552e19",
            "-9223372036854775809",
            "-9223372036854776832",
            "-9.3e18",
            "1.5",
            "1e-3",
            "true",
            "[]",
            "{}",
            &format!("\"{}\"", "x".repeat(300)),
        ] {
            assert_eq!(parse(with_id(bad).as_bytes()), Err(BodyError::InvalidId), "{bad}");
        }
    }
}
