//! The packed map encoding: a map state stored as one value per key.
//! Prefetched map states are small and always read whole, so a point lookup
//! beats iterating rows (and the tombstones of removed entries) in an
//! ordered store. Large maps keep one row per entry.
//!
//! Layout: entries in map-key order, each `len(k) k len(v) v` with `u32`
//! little-endian lengths.

use crate::{Items, Result, StateError};

fn corrupt() -> StateError {
    StateError::Corrupt("truncated packed map".into())
}

/// Calls `f` for each (key, value) of a packed map.
pub fn for_each<'a>(mut bytes: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) -> Result<()> {
    let next = |bytes: &mut &'a [u8]| -> Result<&'a [u8]> {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(*len) as usize;
        let item = rest.get(..len).ok_or_else(corrupt)?;
        *bytes = &rest[len..];
        Ok(item)
    };
    while !bytes.is_empty() {
        let k = next(&mut bytes)?;
        let v = next(&mut bytes)?;
        f(k, v);
    }
    Ok(())
}

/// A packed map's entries.
pub fn unpack(bytes: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut entries = Vec::new();
    for_each(bytes, |k, v| entries.push((k.to_vec(), v.to_vec())))?;
    Ok(entries)
}

/// Unpacks into items (key, value, ...) and returns how many it appended.
pub fn unpack_into(bytes: &[u8], out: &mut Items) -> Result<u32> {
    let mut n = 0;
    for_each(bytes, |k, v| {
        out.push(k);
        out.push(v);
        n += 2;
    })?;
    Ok(n)
}

/// Appends one entry in the packed layout (callers keep keys ascending).
pub fn push_entry(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Entries sorted by key, later duplicates winning.
pub fn pack(entries: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut out = Vec::with_capacity(entries.iter().map(|(k, v)| k.len() + v.len() + 8).sum());
    for (k, v) in entries.iter() {
        push_entry(&mut out, k, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorted_with_last_write_winning() {
        let mut entries =
            vec![(b"b".to_vec(), b"1".to_vec()), (b"a".to_vec(), b"2".to_vec()), (b"b".to_vec(), b"3".to_vec())];
        let packed = pack(&mut entries);
        let mut items = Items::default();
        assert_eq!(unpack_into(&packed, &mut items).unwrap(), 4);
        assert_eq!(
            (items.get(0), items.get(1), items.get(2), items.get(3)),
            (&b"a"[..], &b"2"[..], &b"b"[..], &b"3"[..])
        );
        assert_eq!(unpack(&packed).unwrap(), vec![(b"a".to_vec(), b"2".to_vec()), (b"b".to_vec(), b"3".to_vec())]);
        assert!(unpack_into(&packed[..packed.len() - 1], &mut items).is_err());
    }
}
