//! Sizes in specs: `"64MiB"`, `"512 KiB"`, `"1GiB"`, `"100MB"` or a number of
//! bytes.

use serde::{Deserialize, Deserializer, de};

/// Parses a size such as `64MiB` (binary units KiB/MiB/GiB, decimal KB/MB/GB).
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("invalid size {text:?}: expected e.g. \"64MiB\""))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!("invalid size {text:?}: unknown unit {other:?} (use KiB, MiB, GiB, KB, MB or GB)"));
        }
    };
    number.checked_mul(factor).ok_or_else(|| format!("size {text:?} is too large"))
}

/// The serde form of an optional size field.
pub(crate) fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)
        .map_err(|_| de::Error::custom("expected a size such as \"64MiB\" or a number of bytes"))?
    {
        Raw::Bytes(b) => Ok(Some(b)),
        Raw::Text(t) => parse(&t).map(Some).map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("512 KiB"), Ok(512 << 10));
        assert_eq!(parse("2GB"), Ok(2_000_000_000));
        assert_eq!(parse("100"), Ok(100));
        assert_eq!(
            parse("5 mb"),
            Err("invalid size \"5 mb\": unknown unit \"mb\" (use KiB, MiB, GiB, KB, MB or GB)".into())
        );
    }
}
