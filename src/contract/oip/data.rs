//! An infer request's `data`: a JSON array, flat or nested one level (a row
//! per inner array), read into cells in row-major order without building a
//! `serde_json::Value` per number.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One value of a JSON `data` array, flattened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cell {
    Number(f64),
    Null,
    WrongType(&'static str),
}

/// `data`, nested arrays flattened in row-major order. Reading it never
/// fails on a value's type: a string or boolean is a cell the one
/// validation path rejects, by feature and row.
#[derive(Debug, Default)]
pub(super) struct Data(pub(super) Vec<Cell>);

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Data;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data, A::Error> {
                let mut cells = Vec::new();
                while seq.next_element_seed(Flatten { cells: &mut cells, nested: false })?.is_some() {}
                Ok(Data(cells))
            }
        }
        d.deserialize_seq(Top)
    }
}

/// One item of `data`: a value, or (once) an array of values (a row).
struct Flatten<'a> {
    cells: &'a mut Vec<Cell>,
    /// Inside a row already: a further array is a wrong value, not a level.
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number or an array of numbers")
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.cells.push(Cell::Number(v));
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.cells.push(Cell::Null);
        Ok(())
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.cells.push(Cell::WrongType("a boolean"));
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.cells.push(Cell::WrongType("a string"));
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.cells.push(Cell::WrongType("an object"));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.nested {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            self.cells.push(Cell::WrongType("an array"));
            return Ok(());
        }
        while seq.next_element_seed(Flatten { cells: &mut *self.cells, nested: true })?.is_some() {}
        Ok(())
    }
}
