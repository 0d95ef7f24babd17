//! Which windows a record belongs to, and how window starts are stored.

use weir_spec::WindowSpec;
use weir_types::Timestamp;

/// How a window operator groups a key's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assigner {
    /// Tumbling (`slide == size`) or sliding windows of event time.
    Time { size: i64, slide: i64, offset: i64 },
    /// Each record opens `[ts, ts + gap)`; windows that touch or overlap merge.
    Session { gap: i64 },
    /// Every `slide` records of a key, the last `size` (tumbling when
    /// equal). Window `E` (a multiple of `slide`) holds the records numbered
    /// `E - size + 1 ..= E` and fires with record `E`.
    Count { size: u64, slide: u64 },
    /// One window per key, `[MIN, MAX)`.
    Global,
}

impl Assigner {
    pub(crate) fn new(spec: &WindowSpec) -> Self {
        let ms = |d: std::time::Duration| d.as_millis() as i64;
        let offset = ms(spec.offset);
        match (&spec.tumbling, &spec.sliding, &spec.session, spec.count) {
            (Some(size), ..) => Assigner::Time { size: ms(*size), slide: ms(*size), offset },
            (None, Some(s), ..) => Assigner::Time { size: ms(s.size), slide: ms(s.slide), offset },
            (None, None, Some(s), _) => Assigner::Session { gap: ms(s.gap) },
            (None, None, None, Some(c)) => Assigner::Count { size: c.size, slide: c.slide },
            (None, None, None, None) => Assigner::Global,
        }
    }
}

/// The time windows `[start, end)` that `ts` belongs to, newest first:
/// `start = ts - floor_mod(ts - offset, slide)`, `end = start + size`.
/// Computed without overflow; at the edges of the timestamp range the
/// bounds saturate, so a window never ends before it starts (a window that
/// would reach past the largest timestamp ends there).
pub(crate) fn windows(
    ts: Timestamp,
    size: i64,
    slide: i64,
    offset: i64,
) -> impl Iterator<Item = (Timestamp, Timestamp)> {
    let (ts, size, slide) = (i128::from(ts), i128::from(size), i128::from(slide));
    let last = ts - (ts - i128::from(offset)).rem_euclid(slide);
    let clamp = |t: i128| t.clamp(i128::from(Timestamp::MIN), i128::from(Timestamp::MAX)) as Timestamp;
    (0..)
        .map(move |k| last - k * slide)
        .take_while(move |start| *start > ts - size)
        .map(move |start| (clamp(start), clamp(start + size)))
}

/// The count windows record number `seq` (from 1) belongs to, oldest
/// first: the multiples `E` of `slide` with `seq <= E < seq + size`.
pub(crate) fn count_windows(seq: u64, size: u64, slide: u64) -> impl Iterator<Item = u64> {
    let first = seq.div_ceil(slide) * slide;
    (0..).map(move |k| first + k * slide).take_while(move |end| *end < seq + size)
}

/// Window starts as map keys that sort like the numbers.
pub(crate) fn start_key(start: Timestamp) -> [u8; 8] {
    ((start as u64) ^ (1 << 63)).to_be_bytes()
}

/// The start a map key stands for.
pub(crate) fn start_of(key: &[u8]) -> Option<Timestamp> {
    Some((u64::from_be_bytes(key.get(..8)?.try_into().ok()?) ^ (1 << 63)) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(ts: Timestamp, size: i64, slide: i64, offset: i64) -> Vec<Timestamp> {
        windows(ts, size, slide, offset)
            .map(|(start, end)| {
                assert_eq!(end - start, size);
                start
            })
            .collect()
    }

    #[test]
    fn windows_align_like_flink_even_for_negative_timestamps() {
        assert_eq!(all(4999, 5000, 5000, 0), vec![0]);
        assert_eq!(all(5000, 5000, 5000, 0), vec![5000]);
        assert_eq!(all(-1, 5000, 5000, 0), vec![-5000]);
        assert_eq!(all(900, 5000, 5000, 1000), vec![-4000]);
        assert_eq!(all(7000, 10_000, 3000, 0), vec![6000, 3000, 0], "[-3000, 7000) ends before 7000");
        assert_eq!(all(-7000, 10_000, 3000, 0), vec![-9000, -12_000, -15_000]);
    }

    #[test]
    fn windows_at_the_edges_of_time_saturate_and_never_end_before_they_start() {
        let of = |ts, size, slide, offset| windows(ts, size, slide, offset).collect::<Vec<_>>();
        let (min, max) = (Timestamp::MIN, Timestamp::MAX);
        // min mod 1000 is 192 (floored): the window would start before min.
        assert_eq!(of(min, 1000, 1000, 0), vec![(min, min + 808)]);
        assert_eq!(of(max - 1, 1000, 1000, 0), vec![(max - 807, max)]);
        assert_eq!(of(min, 1000, 1000, 999), vec![(min, min + 807)]);
        for (start, end) in of(max - 1, 10_000, 3000, 0).into_iter().chain(of(min + 5, 10_000, 3000, 7)) {
            assert!(start < end, "[{start}, {end})");
        }
    }

    #[test]
    fn count_windows_are_sliding_windows_over_record_numbers() {
        let of = |seq, size, slide| count_windows(seq, size, slide).collect::<Vec<_>>();
        assert_eq!(of(1, 3, 3), vec![3]);
        assert_eq!(of(3, 3, 3), vec![3]);
        assert_eq!(of(4, 3, 3), vec![6]);
        // countWindow(4, 2): every 2 records, the last 4 (the first firing
        // has only 2, as in Flink).
        assert_eq!(of(1, 4, 2), vec![2, 4]);
        assert_eq!(of(2, 4, 2), vec![2, 4]);
        assert_eq!(of(3, 4, 2), vec![4, 6]);
        // countWindow(2, 3): records 1, 4, 7... are in no window.
        assert_eq!(of(1, 2, 3), Vec::<u64>::new());
        assert_eq!(of(2, 2, 3), vec![3]);
    }

    #[test]
    fn starts_sort_as_bytes() {
        let mut starts = [-5000i64, 0, 5000, i64::MIN, -1];
        let mut keys: Vec<[u8; 8]> = starts.iter().map(|s| start_key(*s)).collect();
        keys.sort();
        starts.sort();
        assert_eq!(keys.iter().map(|k| start_of(k).unwrap()).collect::<Vec<_>>(), starts);
    }
}
