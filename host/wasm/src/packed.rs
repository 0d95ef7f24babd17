//! Packing a map a guest sends whole (see [`weir_state::packed`] for the
//! encoding): sorted pairs are packed as they come, without a copy per entry.

use weir_state::packed::push_entry;
pub(crate) use weir_state::packed::{for_each, pack, unpack_into};

use crate::{PluginError, Result};

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
        push_entry(out, k, v);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

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
