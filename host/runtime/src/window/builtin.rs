//! The built-in aggregates (`count`, `sum`, `min`, `max`, `avg` over a JSON
//! pointer): accumulators of 32 bytes and results in JSON.

use weir_spec::AggregateSpec;

/// A built-in aggregate's running state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Acc {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Acc {
    pub(crate) const EMPTY: Acc = Acc { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };

    pub(crate) fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub(crate) fn merge(&mut self, other: &Acc) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        [self.count.to_le_bytes(), self.sum.to_le_bytes(), self.min.to_le_bytes(), self.max.to_le_bytes()].concat()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Acc> {
        let word = |i: usize| -> Option<[u8; 8]> { bytes.get(i * 8..i * 8 + 8)?.try_into().ok() };
        Some(Acc {
            count: u64::from_le_bytes(word(0)?),
            sum: f64::from_le_bytes(word(1)?),
            min: f64::from_le_bytes(word(2)?),
            max: f64::from_le_bytes(word(3)?),
        })
    }

    /// The aggregate's result field: its name and JSON value.
    pub(crate) fn result(&self, aggregate: &AggregateSpec) -> (&'static str, serde_json::Value) {
        match aggregate {
            AggregateSpec::Count => ("count", serde_json::json!(self.count)),
            AggregateSpec::Sum(_) => ("sum", serde_json::json!(self.sum)),
            AggregateSpec::Min(_) => ("min", serde_json::json!(self.min)),
            AggregateSpec::Max(_) => ("max", serde_json::json!(self.max)),
            AggregateSpec::Avg(_) => ("avg", serde_json::json!(self.sum / self.count as f64)),
        }
    }
}

/// The number the aggregate reads from a record (1 for `count`).
pub(crate) fn value_of(aggregate: &AggregateSpec, value: &[u8]) -> Result<f64, String> {
    let pointer = match aggregate {
        AggregateSpec::Count => return Ok(1.0),
        AggregateSpec::Sum(p) | AggregateSpec::Min(p) | AggregateSpec::Max(p) | AggregateSpec::Avg(p) => p,
    };
    number_at(value, pointer).map_err(|e| {
        let shown = String::from_utf8_lossy(&value[..value.len().min(200)]).into_owned();
        format!("a record has no number at {pointer} ({e}): {shown}")
    })
}

/// The number at a JSON pointer. A pointer to a top-level field (`/v`) is
/// read without building the whole document; deeper ones parse it.
fn number_at(value: &[u8], pointer: &str) -> Result<f64, String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Field<'p>(&'p str);

    impl<'de> Visitor<'de> for Field<'_> {
        type Value = Option<f64>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<f64>, A::Error> {
            let mut found = None;
            while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if name == self.0 && found.is_none() {
                    found = map.next_value::<Option<f64>>()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    let field = pointer.strip_prefix('/').filter(|f| !f.contains(['/', '~']));
    let found = match field {
        Some(field) => serde_json::Deserializer::from_slice(value)
            .deserialize_map(Field(field))
            .map_err(|e| format!("invalid JSON: {e}"))?,
        None => serde_json::from_slice::<serde_json::Value>(value)
            .map_err(|e| format!("invalid JSON: {e}"))?
            .pointer(pointer)
            .and_then(serde_json::Value::as_f64),
    };
    found.ok_or_else(|| "not a number".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_at_pointers() {
        let v = br#"{"id":"a","t":{"x":[1,2]},"temperature":21.5,"n":null}"#;
        assert_eq!(number_at(v, "/temperature"), Ok(21.5));
        assert_eq!(number_at(v, "/t/x/1"), Ok(2.0));
        assert_eq!(number_at(v, "/n"), Err("not a number".into()));
        assert_eq!(
            number_at(v, "/id"),
            Err("invalid JSON: invalid type: string \"a\", expected f64 at line 1 column 9".into())
        );
        assert!(number_at(b"[1]", "/0").is_err());
    }

    #[test]
    fn accumulators_round_trip_and_merge() {
        let mut a = Acc::EMPTY;
        a.add(2.0);
        a.add(4.0);
        let mut b = Acc::EMPTY;
        b.add(-1.0);
        b.merge(&Acc::decode(&a.encode()).unwrap());
        assert_eq!(b, Acc { count: 3, sum: 5.0, min: -1.0, max: 4.0 });
        assert_eq!(b.result(&AggregateSpec::Avg("/v".into())), ("avg", serde_json::json!(5.0 / 3.0)));
        assert_eq!(Acc::decode(&[0; 31]), None);
    }
}
