//! Prefetched map states are stored as one packed value per key: they are
//! small and always read whole, so a point lookup beats iterating rows (and
//! the tombstones of removed entries) in an ordered store. Large maps, read
//! through the `state` import, keep one row per entry.
//!
//! Layout: entries in map-key order, each `len(k) k len(v) v` with `u32`
//! little-endian lengths.

use weir_state::{Items, StateError};

use crate::{PluginError, Result};

fn corrupt() -> StateError {
    StateError::Corrupt("truncated packed map".into())
}

/// Calls `f` for each (key, value) of a packed map.
pub(crate) fn for_each<'a>(mut bytes: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) -> weir_state::Result<()> {
    let next = |bytes: &mut &'a [u8]| -> weir_state::Result<&'a [u8]> {
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

/// Unpacks into items (key, value, ...) and returns how many it appended.
pub(crate) fn unpack_into(bytes: &[u8], out: &mut Items) -> weir_state::Result<u32> {
    let mut n = 0;
    for_each(bytes, |k, v| {
        out.push(k);
        out.push(v);
        n += 2;
    })?;
    Ok(n)
}

/// Entries sorted by key, later duplicates winning.
pub(crate) fn pack(entries: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut out = Vec::with_capacity(entries.iter().map(|(k, v)| k.len() + v.len() + 8).sum());
    for (k, v) in entries.iter() {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Packs `count` items (key, value, ...) into `out` when the keys are
/// strictly ascending; returns `false` (leaving `out` unspecified) when they
/// are not, so the caller sorts.
pub(crate) fn pack_sorted_into<'a>(
    count: u32,
    item: impl Fn(u32) -> Result<&'a [u8]>,
    out: &mut Vec<u8>,
) -> Result<bool> {
    out.clear();
    if !count.is_multiple_of(2) {
        return Err(PluginError::Contract(format!("a map update has {count} items, not key-value pairs")));
    }
    let mut previous: Option<&[u8]> = None;
    for i in (0..count).step_by(2) {
        let (k, v) = (item(i)?, item(i + 1)?);
        if previous.is_some_and(|p| p >= k) {
            return Ok(false);
        }
        previous = Some(k);
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    Ok(true)
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
        assert!(unpack_into(&packed[..packed.len() - 1], &mut items).is_err());
    }

    #[test]
    fn sorted_pairs_pack_like_pack_and_unsorted_ones_are_refused() {
        let pairs: [&[u8]; 4] = [b"a", b"2", b"b", b"3"];
        let mut out = Vec::new();
        assert!(pack_sorted_into(4, |i| Ok(pairs[i as usize]), &mut out).unwrap());
        let mut entries = vec![(b"a".to_vec(), b"2".to_vec()), (b"b".to_vec(), b"3".to_vec())];
        assert_eq!(out, pack(&mut entries));
        let unsorted: [&[u8]; 4] = [b"b", b"3", b"a", b"2"];
        assert!(!pack_sorted_into(4, |i| Ok(unsorted[i as usize]), &mut out).unwrap());
        let duplicate: [&[u8]; 4] = [b"a", b"3", b"a", b"2"];
        assert!(!pack_sorted_into(4, |i| Ok(duplicate[i as usize]), &mut out).unwrap());
        assert!(pack_sorted_into(3, |i| Ok(pairs[i as usize]), &mut out).is_err());
    }
}
