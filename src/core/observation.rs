//! `Observation`: the model's measurements, parsed once from untrusted input.
//!
//! Every entry point (Function URL JSON, CSV cells, queue messages) turns its
//! raw values into [`FieldInput`]s and calls [`Observation::from_inputs`]; the
//! rules about what is a valid measurement live here and nowhere else. Error
//! messages name the field and the rule, never the value (medical data).

use std::fmt;

use super::features::{Features, MAX_FEATURES};

/// A cell with nothing in it: empty, or white space only. Such a cell is a
/// missing value on every path that reads cells (CSV rows, Distributed Map
/// items), never "not a number".
pub fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// A raw value for one feature, as an adapter found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldInput<'a> {
    /// The key or cell is absent.
    Missing,
    /// JSON `null`.
    Null,
    /// A JSON number.
    Number(f64),
    /// Text that should hold a number (a CSV cell, a Distributed Map value); a
    /// blank one ([`is_blank`]) is missing.
    Text(&'a str),
    /// Text from a file whose decimal separator may be a comma (a
    /// `;`-separated file): see [`parse_decimal_comma_text`].
    DecimalCommaText(&'a str),
    /// A CSV cell's bytes, read as [`FieldInput::Text`] is (the same rule,
    /// [`parse_number_bytes`]) without a UTF-8 check first: a number is
    /// ASCII, so only a cell that is no number is looked at as text.
    Cell(&'a [u8]),
    /// A JSON value of another type: "a string", "a boolean", "an array", "an object".
    WrongType(&'static str),
    /// The key appeared more than once in one JSON object.
    Duplicate,
}

/// Why one field was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Null,
    WrongType(&'static str),
    NotANumber,
    NotFinite,
    Negative,
    TooLarge,
    Duplicate,
    /// Both `.` and `,`, or several `,`, in a decimal-comma file: thousands
    /// separators, which cannot be told from a decimal separator for sure.
    AmbiguousNumber,
}

impl Problem {
    /// A short machine-readable code for the `errors` array and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Problem::Missing => "missing",
            Problem::Null => "null",
            Problem::WrongType(_) => "not_a_number",
            Problem::NotANumber => "not_a_number",
            Problem::NotFinite => "not_finite",
            Problem::Negative => "negative",
            Problem::TooLarge => "too_large",
            Problem::Duplicate => "duplicate",
            Problem::AmbiguousNumber => "ambiguous_number",
        }
    }
}

/// One rejected field, by the feature's index in the model's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    pub feature: usize,
    pub problem: Problem,
}

impl FieldError {
    /// The feature's API name.
    pub fn field<'f>(&self, features: &'f Features) -> &'f str {
        features.api_name(self.feature)
    }

    /// The sentence naming the field and the rule (never the value).
    pub fn message<'a>(&'a self, features: &'a Features) -> FieldMessage<'a> {
        FieldMessage { error: self, name: self.field(features) }
    }
}

/// [`FieldError::message`]: a sentence naming the field.
pub struct FieldMessage<'a> {
    error: &'a FieldError,
    name: &'a str,
}

impl fmt::Display for FieldMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name;
        match self.error.problem {
            Problem::Missing => write!(f, "'{name}' is missing"),
            Problem::Null => write!(f, "'{name}' is null; it must be a number"),
            Problem::WrongType(kind) => write!(f, "'{name}' must be a number, not {kind}"),
            Problem::NotANumber => write!(f, "'{name}' is not a number"),
            Problem::NotFinite => write!(f, "'{name}' must be a finite number (not NaN or infinity)"),
            Problem::Negative => write!(f, "'{name}' must not be negative"),
            Problem::TooLarge => write!(f, "'{name}' is too large (it must fit in a 32-bit float, at most 3.4e38)"),
            Problem::Duplicate => write!(f, "'{name}' is given more than once"),
            Problem::AmbiguousNumber => write!(
                f,
                "'{name}' has a thousands separator ('.' and ',' together, several ',', or '.' before groups of \
                 three digits), which is ambiguous: write it without one, e.g. 1234,5"
            ),
        }
    }
}

/// Every field error of one input (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    errors: Vec<FieldError>,
}

impl Rejection {
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The code of the first rejected field (`missing`, `negative`, ...):
    /// the one code a rejected row is counted under in summaries, drift
    /// statistics, logs and metrics.
    pub fn code(&self) -> &'static str {
        // Never empty: a Rejection is built only with an error.
        self.errors.first().map_or("invalid", |e| e.problem.code())
    }

    /// The contract's `reason`: the seed message naming the absent values
    /// when any is absent, otherwise each field's problem.
    pub fn reason(&self, features: &Features) -> String {
        let absent = |e: &&FieldError| matches!(e.problem, Problem::Missing | Problem::Null);
        if self.errors.iter().any(|e| absent(&e)) {
            return features.missing_values_reason(self.errors.iter().filter(absent).map(|e| e.feature));
        }
        let mut out = String::from("'body' has invalid values: ");
        self.write_field_messages(features, &mut out);
        out
    }

    /// Every field's message, joined with "; " (CSV `reason` column).
    pub fn write_field_messages(&self, features: &Features, out: &mut String) {
        use fmt::Write;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            let _ = write!(out, "{}", e.message(features));
        }
    }
}

/// Valid measurements, one per feature of the model that asked for them:
/// finite, non-negative, representable as float32. Holding one is the proof;
/// nothing downstream re-checks. Inline: no heap allocation per row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    values: [f64; MAX_FEATURES],
    len: u8,
}

impl Observation {
    /// The one validation path. Collects every field's problem, so callers can
    /// report them all at once. `inputs` has one entry per feature of the
    /// model (at most [`MAX_FEATURES`], which every model meets).
    pub fn from_inputs(inputs: &[FieldInput<'_>]) -> Result<Self, Rejection> {
        assert!(inputs.len() <= MAX_FEATURES, "a model has at most MAX_FEATURES features");
        // Built in place (no per-feature array is moved on the way out).
        let mut observation = Observation { values: [0.0; MAX_FEATURES], len: inputs.len() as u8 };
        let mut errors = Vec::new();
        for ((feature, input), value) in inputs.iter().enumerate().zip(&mut observation.values) {
            match check(*input) {
                Ok(v) => *value = v,
                Err(problem) => errors.push(FieldError { feature, problem }),
            }
        }
        if errors.is_empty() {
            Ok(observation)
        } else {
            Err(Rejection { errors })
        }
    }

    /// Convenience for callers that already hold numbers (tests, benches).
    pub fn from_values(values: impl AsRef<[f64]>) -> Result<Self, Rejection> {
        let inputs: PerFeatureInputs = values.as_ref().iter().map(|&v| FieldInput::Number(v)).collect();
        Self::from_inputs(&inputs)
    }

    /// One value per feature, in the model's order.
    pub fn values(&self) -> &[f64] {
        &self.values[..usize::from(self.len)]
    }

    /// The values at `indices`, in that order: the observation of another
    /// model whose features are these (a challenger's,
    /// [`crate::core::challenger::FeatureMap`]). Every value already met the
    /// rules, so the result holds too. No allocation.
    ///
    /// # Panics
    /// If an index is not one of this observation's features.
    #[inline]
    pub fn select(&self, indices: &[u8]) -> Observation {
        let mut values = [0.0; MAX_FEATURES];
        let own = self.values();
        for (value, &i) in values.iter_mut().zip(indices) {
            *value = own[usize::from(i)];
        }
        Observation { values, len: indices.len().min(MAX_FEATURES) as u8 }
    }
}

/// One row's raw inputs, inline.
pub type PerFeatureInputs<'a> = super::features::PerFeature<FieldInput<'a>>;

/// `n` missing inputs: the start of an object's fields, filled in by key.
pub fn missing_inputs<'a>(n: usize) -> PerFeatureInputs<'a> {
    (0..n).map(|_| FieldInput::Missing).collect()
}

fn check(input: FieldInput<'_>) -> Result<f64, Problem> {
    let value = match input {
        FieldInput::Missing => return Err(Problem::Missing),
        FieldInput::Null => return Err(Problem::Null),
        FieldInput::WrongType(kind) => return Err(Problem::WrongType(kind)),
        FieldInput::Duplicate => return Err(Problem::Duplicate),
        FieldInput::Number(v) => v,
        FieldInput::Text(text) => parse_number_text(text)?,
        FieldInput::Cell(bytes) => parse_number_bytes(bytes)?,
        FieldInput::DecimalCommaText(text) => parse_decimal_comma_text(text)?,
    };
    if !value.is_finite() {
        Err(Problem::NotFinite)
    } else if value < 0.0 {
        Err(Problem::Negative)
    } else if !(value as f32).is_finite() {
        // sklearn casts to float32 (round to nearest, ties to even) and rejects
        // what becomes infinite; so do we. Values a little above f32::MAX
        // still round down to it and are accepted, as sklearn accepts them.
        Err(Problem::TooLarge)
    } else {
        // -0.0 is a valid zero; store +0.0 so outputs never show "-0".
        Ok(value + 0.0)
    }
}

/// Text of a CSV cell: a decimal number, surrounding spaces allowed.
fn parse_number_text(text: &str) -> Result<f64, Problem> {
    parse_number_bytes(text.as_bytes())
}

/// The one rule for a number written as text ([`parse_number_text`]), on
/// bytes: what parses is ASCII, so a cell needs no UTF-8 check unless it
/// fails (the batch path saved ~120 instructions a cell, callgrind).
fn parse_number_bytes(bytes: &[u8]) -> Result<f64, Problem> {
    let t = bytes.trim_ascii();
    // fast-float2: the same correctly rounded result as str::parse, faster
    // (the batch hot path parses five cells a row). Like str::parse it accepts
    // "inf", "NaN", "infinity": name them precisely. Blank text is no number,
    // so asking whether it is blank waits for a failed parse (bytes that are
    // not UTF-8 are not blank).
    match fast_float2::parse::<f64, _>(t) {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(Problem::NotFinite),
        Err(_) if std::str::from_utf8(t).is_ok_and(is_blank) => Err(Problem::Missing),
        Err(_) => Err(Problem::NotANumber),
    }
}

/// Text of a cell in a decimal-comma (`;`-separated) file. Accepted: what
/// [`parse_number_text`] accepts (`0.1471`, `1e3`), and the same with one
/// comma as the decimal separator instead of a point (`0,1471`, `2019,0`,
/// `1,5e3`). Refused as ambiguous: a point and a comma together (`1.234,5`,
/// `1,234.5`) and several commas (`1,234,567`), which are thousands
/// separators. A single comma is always the decimal separator (`1,234` is
/// 1.234). Without a comma, a number grouped by points like thousands
/// (`1.234`, `12.345.678`: one to three digits, not starting with 0, then
/// groups of a point and three digits) is refused too: in a `;` file it is
/// 1234 as often as 1.234, and a silent factor of 1000 is worse than a 400.
/// Other point-only numbers (`0.1471`, `25.38`, `2019.0`) are read as they are.
pub fn parse_decimal_comma_text(text: &str) -> Result<f64, Problem> {
    let t = text.trim_ascii();
    let Some(comma) = t.find(',') else {
        return if grouped_by_points(t) { Err(Problem::AmbiguousNumber) } else { parse_number_text(t) };
    };
    if t.contains('.') || t[comma + 1..].contains(',') {
        return Err(Problem::AmbiguousNumber);
    }
    // A number is short: a longer cell is not one (and needs no copy).
    let mut buf = [0u8; 64];
    let Some(copy) = buf.get_mut(..t.len()) else { return Err(Problem::NotANumber) };
    copy.copy_from_slice(t.as_bytes());
    copy[comma] = b'.';
    // Only ASCII was changed: still UTF-8.
    parse_number_text(std::str::from_utf8(copy).map_err(|_| Problem::NotANumber)?)
}

/// `1.234`, `12.345`, `123.456.789`: what a thousands separator makes of a
/// whole number (the first group 1–3 digits not starting with 0, then `.ddd`
/// groups).
fn grouped_by_points(t: &str) -> bool {
    let mut groups = t.split('.');
    let first = groups.next().unwrap_or_default();
    let mut rest = groups.peekable();
    rest.peek().is_some()
        && (1..=3).contains(&first.len())
        && !first.starts_with('0')
        && first.bytes().all(|b| b.is_ascii_digit())
        && rest.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::features::testing::shipped;
    use proptest::strategy::Strategy as _;

    fn with(i: usize, input: FieldInput<'static>) -> [FieldInput<'static>; 5] {
        let mut inputs = [FieldInput::Number(1.0); 5];
        inputs[i] = input;
        inputs
    }

    fn problem(input: FieldInput<'static>) -> Problem {
        let r = Observation::from_inputs(&with(3, input)).unwrap_err();
        assert_eq!(r.errors().len(), 1);
        assert_eq!(r.errors()[0].field(&shipped()), "worstArea");
        r.errors()[0].problem
    }

    #[test]
    fn accepts_valid_numbers_and_text() {
        let o = Observation::from_inputs(&[
            FieldInput::Number(0.0),
            FieldInput::Text(" 12.5 "),
            FieldInput::Text("1e2"),
            FieldInput::Number(f32::MAX as f64),
            FieldInput::Number(-0.0),
        ])
        .unwrap();
        assert_eq!(o.values(), &[0.0, 12.5, 100.0, f32::MAX as f64, 0.0]);
        assert!(o.values()[4].is_sign_positive());
    }

    #[test]
    fn names_each_problem() {
        assert_eq!(problem(FieldInput::Missing), Problem::Missing);
        assert_eq!(problem(FieldInput::Text("   ")), Problem::Missing);
        assert_eq!(problem(FieldInput::Null), Problem::Null);
        assert_eq!(problem(FieldInput::WrongType("a string")), Problem::WrongType("a string"));
        assert_eq!(problem(FieldInput::Text("abc")), Problem::NotANumber);
        assert_eq!(problem(FieldInput::Text("1,5")), Problem::NotANumber);
        for t in ["NaN", "nan", "inf", "-inf", "Infinity", "1e999"] {
            assert_eq!(problem(FieldInput::Text(t)), Problem::NotFinite, "{t}");
        }
        assert_eq!(problem(FieldInput::Number(f64::NAN)), Problem::NotFinite);
        assert_eq!(problem(FieldInput::Number(f64::INFINITY)), Problem::NotFinite);
        assert_eq!(problem(FieldInput::Number(-1e-300)), Problem::Negative);
        assert_eq!(problem(FieldInput::Text("-3")), Problem::Negative);
        assert_eq!(problem(FieldInput::Number(1e39)), Problem::TooLarge);
        assert_eq!(problem(FieldInput::Duplicate), Problem::Duplicate);
    }

    #[test]
    fn too_large_is_exactly_what_sklearn_refuses_after_its_float32_cast() {
        // Checked with scikit-learn 1.2.1 / numpy 1.24.1 (predict_proba on a
        // fitted GradientBoostingClassifier): it accepts 3.4028235e38 and
        // 3.4028235677973362e38 (both become f32::MAX) and refuses
        // 3.4028235677973366e38 = 2^128 - 2^103, the halfway point to 2^128,
        // which rounds to even: infinity.
        let halfway = 2f64.powi(128) - 2f64.powi(103);
        let largest = f64::from_bits(halfway.to_bits() - 1);
        assert_eq!(largest, 3.4028235677973362e38);
        assert_eq!(halfway, 3.4028235677973366e38);
        for accepted in
            [FieldInput::Number(largest), FieldInput::Text("3.4028235e38"), FieldInput::Text("3.4028235677973362e38")]
        {
            let o = Observation::from_inputs(&with(3, accepted)).unwrap();
            assert_eq!(o.values()[3] as f32, f32::MAX, "{accepted:?}");
        }
        assert_eq!(problem(FieldInput::Number(halfway)), Problem::TooLarge);
        assert_eq!(problem(FieldInput::Text("3.4028235677973366e38")), Problem::TooLarge);
        assert_eq!(problem(FieldInput::Number(f64::MAX)), Problem::TooLarge);
    }

    #[test]
    fn reports_every_field_and_keeps_the_seed_message_for_missing_values() {
        let r = Observation::from_inputs(&[
            FieldInput::Missing,
            FieldInput::Number(-1.0),
            FieldInput::Number(1.0),
            FieldInput::Number(1.0),
            FieldInput::Null,
        ])
        .unwrap_err();
        assert_eq!(r.errors().len(), 3);
        assert_eq!(r.reason(&shipped()), "'body' must contain values for: meanConcavePoints, worstConcavePoints");

        let r = Observation::from_inputs(&with(1, FieldInput::Number(-2.0))).unwrap_err();
        assert_eq!(r.reason(&shipped()), "'body' has invalid values: 'worstRadius' must not be negative");
    }

    /// A CSV cell read from its bytes ([`FieldInput::Cell`]) is what the
    /// same cell read as text was: the value or the problem, whatever the bytes.
    fn cell_and_text(bytes: &[u8]) -> (Result<f64, Problem>, Result<f64, Problem>) {
        let text = std::str::from_utf8(bytes).unwrap_or("\u{fffd}");
        (check(FieldInput::Cell(bytes)), check(FieldInput::Text(text)))
    }

    #[test]
    fn a_cell_read_from_its_bytes_is_the_cell_read_as_text() {
        for bytes in [
            &b"0.1471"[..],
            b" 2019.0 ",
            b"1e3",
            b"-0",
            b"-3",
            b"",
            b"  ",
            b"\t",
            b"\xc2\xa0",
            b"\xe3\x80\x80 ",
            b"abc",
            b"NaN",
            b"inf",
            b"-infinity",
            b"1,5",
            b"3.4028235677973366e38",
            b"\xff",
            b"1\xff",
            b"\xa01",
        ] {
            let (cell, text) = cell_and_text(bytes);
            assert_eq!(cell, text, "{bytes:?}");
        }
        assert_eq!(check(FieldInput::Cell(b"\xc2\xa0")), Err(Problem::Missing), "a blank cell in UTF-8");
        assert_eq!(check(FieldInput::Cell(b"\xa0")), Err(Problem::NotANumber), "not UTF-8: not blank");
    }

    proptest::proptest! {
        #[test]
        fn any_cell_reads_the_same_from_its_bytes_as_from_its_text(
            bytes in proptest::prop_oneof![
                proptest::collection::vec(proptest::prop_oneof![
                    proptest::sample::select(b"0123456789.eE+-, \tnaifNI".to_vec()),
                    proptest::num::u8::ANY,
                ], 0..24),
                proptest::num::f64::ANY.prop_map(|v| format!(" {v:e}").into_bytes()),
                proptest::num::f64::ANY.prop_map(|v| v.to_string().into_bytes()),
            ]
        ) {
            let (cell, text) = cell_and_text(&bytes);
            proptest::prop_assert_eq!(cell, text);
        }
    }

    #[test]
    fn a_blank_cell_is_missing_whatever_its_white_space() {
        for blank in ["", " ", "\t", "\r\n", "\u{a0}", "\u{3000} \u{2009}"] {
            assert!(is_blank(blank), "{blank:?}");
            assert_eq!(problem(FieldInput::Text(blank)), Problem::Missing, "{blank:?}");
        }
        for text in ["0", " 1 ", ".", "\u{fffd}"] {
            assert!(!is_blank(text), "{text:?}");
        }
        // Only a blank cell: a number padded with other white space is not one.
        assert_eq!(problem(FieldInput::Text("\u{a0}1")), Problem::NotANumber);
    }

    #[test]
    fn a_decimal_comma_is_read_and_thousands_separators_are_refused_as_ambiguous() {
        let read = |t| parse_decimal_comma_text(t);
        for (text, want) in [
            ("0,1471", 0.1471),
            (" 2019,0 ", 2019.0),
            ("1,5e3", 1500.0),
            (",5", 0.5),
            ("0.1471", 0.1471),
            ("25", 25.0),
            ("1,234", 1.234),
        ] {
            assert_eq!(read(text), Ok(want), "{text}");
        }
        for text in ["0.234", "25.38", "2019.0", "1234.5", "1.2345", "1.23", ".5"] {
            assert_eq!(read(text), parse_number_text(text), "{text}: a point alone is decimal unless grouped");
            assert!(read(text).is_ok(), "{text}");
        }
        for text in
            ["1.234,5", "1,234.5", "1,234,567", "1.234.567,8", "1,5,", "1.234", "12.345", "2.019", "123.456.789"]
        {
            assert_eq!(read(text), Err(Problem::AmbiguousNumber), "{text}");
        }
        let long = format!("0,{}", "1".repeat(80));
        for text in ["abc", "1;5", "1 234,5", &long] {
            assert_eq!(read(text), Err(Problem::NotANumber), "{text}");
        }
        assert_eq!(read(" "), Err(Problem::Missing));
        assert_eq!(problem(FieldInput::DecimalCommaText("1.234,5")), Problem::AmbiguousNumber);
        assert_eq!(problem(FieldInput::DecimalCommaText("-0,5")), Problem::Negative);
        let r = Observation::from_inputs(&with(3, FieldInput::DecimalCommaText("9.876,5"))).unwrap_err();
        let message = r.errors()[0].message(&shipped()).to_string();
        assert!(message.starts_with("'worstArea' has a thousands separator"), "{message}");
        assert!(!message.contains("9.876") && !message.contains("876"), "{message}");
        // In a comma-separated file a comma is never a decimal separator.
        assert_eq!(problem(FieldInput::Text("1,5")), Problem::NotANumber);
    }

    #[test]
    fn messages_never_echo_the_value() {
        let r = Observation::from_inputs(&with(0, FieldInput::Text("123456.789xyz"))).unwrap_err();
        assert!(!r.reason(&shipped()).contains("123456"));
    }
}
