//! The host's application of a call's state updates — what a guest returns
//! through the packed format — driven with arbitrary updates (proptest):
//! never a panic; either every update applied exactly as a reference model
//! says, or the call refused whole with nothing changed. Over both storage
//! encodings of a map (prefetched: packed; large: one row per entry) and
//! both list paths. `PROPTEST_CASES` sets the number of cases (`make fuzz`
//! runs many more). The window worlds' results (a window processor's values, an
//! aggregator's accumulators) are read by pure functions, fuzzed the same way.

use std::collections::BTreeMap;

use proptest::prelude::*;
use weir_state::{KeyedState, MemoryBackend, StateContent};
use weir_tests::plugin;
use weir_wasm::wit::{self, StateUpdate, UpdateKind};
use weir_wasm::{InitArgs, OperatorInstance, PluginEngine};

/// `state-probe`'s states by handle: a value, a list and a map.
const KINDS: [weir_state::StateKind; 3] =
    [weir_state::StateKind::Value, weir_state::StateKind::List, weir_state::StateKind::Map];

/// What a key holds in each state, as the plugin sees it.
type Model = BTreeMap<(u32, Vec<u8>), StateContent>;

/// A call's items (`None`: a span outside the buffer) and updates.
type Call = (Vec<Option<Vec<u8>>>, Vec<StateUpdate>);

fn instance(large: bool) -> (OperatorInstance, KeyedState) {
    let engine = PluginEngine::new().unwrap();
    let plugin = engine.load_file(&plugin("state-probe")).unwrap();
    let mut op = plugin.instantiate("fuzz-0/1").unwrap();
    let mut state = KeyedState::new(Box::new(MemoryBackend::new(128)), 128, 0..128);
    let config = format!("{{\"large\":{large}}}");
    let args = InitArgs { node_id: "fuzz".into(), config, subtask_index: 0, parallelism: 1, attempt: 0 };
    let info = op.init(&args, &mut state).unwrap();
    assert_eq!(info.states.len(), 3);
    (op, state)
}

fn contents(op: &mut OperatorInstance, state: &mut KeyedState) -> Model {
    let mut model = Model::new();
    for handle in 0..3 {
        for (_, key, content) in op.state_entries(state, handle).unwrap() {
            model.insert((handle, key), content);
        }
    }
    model
}

/// The reference: the updates applied to `model`, or `None` when one of them
/// does not fit (then nothing may change).
fn apply(mut model: Model, items: &[Option<Vec<u8>>], updates: &[StateUpdate]) -> Option<Model> {
    let item = |i: u32| items.get(i as usize).cloned().flatten();
    for u in updates {
        let kind = *KINDS.get(u.state as usize)?;
        let key = item(u.key)?;
        let end = u.first_item.checked_add(u.item_count)? as usize;
        if end > items.len() {
            return None;
        }
        let operands: Vec<Vec<u8>> = (u.first_item..u.first_item + u.item_count).map(item).collect::<Option<_>>()?;
        let slot = (u.state, key);
        let current = model.remove(&slot);
        use weir_state::StateKind as K;
        let next = match (u.kind, kind) {
            (UpdateKind::Clear, _) if operands.is_empty() => None,
            (UpdateKind::Set, K::Value) if operands.len() == 1 => Some(StateContent::Value(operands[0].clone())),
            (UpdateKind::Replace, K::Value) if operands.len() <= 1 => {
                operands.first().map(|v| StateContent::Value(v.clone()))
            }
            (UpdateKind::Replace, K::List) => Some(StateContent::List(operands)),
            (UpdateKind::Append, K::List) => {
                let mut list = match current {
                    Some(StateContent::List(l)) => l,
                    _ => Vec::new(),
                };
                list.extend(operands);
                Some(StateContent::List(list))
            }
            (UpdateKind::Replace | UpdateKind::MapPut, K::Map) if operands.len().is_multiple_of(2) => {
                let mut map: BTreeMap<Vec<u8>, Vec<u8>> = match (u.kind, current) {
                    (UpdateKind::MapPut, Some(StateContent::Map(m))) => m.into_iter().collect(),
                    _ => BTreeMap::new(),
                };
                for pair in operands.chunks(2) {
                    map.insert(pair[0].clone(), pair[1].clone());
                }
                Some(StateContent::Map(map.into_iter().collect()))
            }
            (UpdateKind::MapRemove, K::Map) => {
                let mut map: BTreeMap<Vec<u8>, Vec<u8>> = match current {
                    Some(StateContent::Map(m)) => m.into_iter().collect(),
                    _ => BTreeMap::new(),
                };
                for k in &operands {
                    map.remove(k);
                }
                Some(StateContent::Map(map.into_iter().collect()))
            }
            _ => return None,
        };
        match next {
            Some(StateContent::List(l)) if l.is_empty() => {}
            Some(StateContent::Map(m)) if m.is_empty() => {}
            Some(content) => {
                model.insert(slot, content);
            }
            None => {}
        }
    }
    Some(model)
}

fn kind() -> impl Strategy<Value = UpdateKind> {
    prop_oneof![
        Just(UpdateKind::Set),
        Just(UpdateKind::Append),
        Just(UpdateKind::MapPut),
        Just(UpdateKind::MapRemove),
        Just(UpdateKind::Clear),
        Just(UpdateKind::Replace),
    ]
}

/// Items (a few keys and small values; some spans out of their buffer) and
/// updates over them (mostly in range, some not).
fn call() -> impl Strategy<Value = Call> {
    let item = prop_oneof![
        8 => prop::sample::select(vec![b"a".to_vec(), b"b".to_vec(), b"k".to_vec(), Vec::new()]).prop_map(Some),
        8 => prop::collection::vec(any::<u8>(), 0..6).prop_map(Some),
        1 => Just(None),
    ];
    prop::collection::vec(item, 1..12).prop_flat_map(|items| {
        let n = items.len() as u32;
        let index = prop_oneof![10 => 0..n, 1 => n..n + 3, 1 => Just(u32::MAX)];
        let update = (0u32..4, index.clone(), kind(), index, prop_oneof![10 => 0u32..5, 1 => Just(u32::MAX)]).prop_map(
            |(state, key, kind, first_item, item_count)| StateUpdate {
                state: state.min(2) + u32::from(state == 3) * 7,
                key,
                kind,
                first_item,
                item_count,
            },
        );
        (Just(items), prop::collection::vec(update, 0..8))
    })
}

/// The items in their WIT form: a missing item's span points past the buffer.
fn to_wit(items: &[Option<Vec<u8>>]) -> wit::Items {
    let mut data = Vec::new();
    let mut spans = Vec::new();
    for item in items {
        match item {
            Some(bytes) => {
                spans.extend_from_slice(&[data.len() as u32, bytes.len() as u32]);
                data.extend_from_slice(bytes);
            }
            None => spans.extend_from_slice(&[u32::MAX - 1, 4]),
        }
    }
    wit::Items { data, spans }
}

fn applied_exactly_or_refused_whole(large: bool, cases: &[Call]) {
    let (mut op, mut state) = instance(large);
    for (items, updates) in cases {
        let before = contents(&mut op, &mut state);
        let wit_updates = wit::StateUpdates { items: to_wit(items), updates: updates.clone() };
        let result = op.apply_state_updates(&mut state, &wit_updates);
        let after = contents(&mut op, &mut state);
        match (apply(before.clone(), items, updates), result) {
            (Some(expected), Ok(())) => assert_eq!(after, expected, "{updates:?} over {items:?}"),
            (None, Err(e)) => {
                assert!(matches!(e, weir_wasm::PluginError::Contract(_)), "{e}");
                assert_eq!(after, before, "a refused call changed state: {e}");
            }
            (Some(_), Err(e)) => panic!("refused a call that fits: {e}: {updates:?} over {items:?}"),
            (None, Ok(())) => panic!("accepted a call that does not fit: {updates:?} over {items:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn state_updates_are_applied_exactly_or_refused_whole_prefetched(calls in prop::collection::vec(call(), 1..6)) {
        applied_exactly_or_refused_whole(false, &calls);
    }

    #[test]
    fn state_updates_are_applied_exactly_or_refused_whole_large(calls in prop::collection::vec(call(), 1..6)) {
        applied_exactly_or_refused_whole(true, &calls);
    }
}

#[test]
fn an_odd_map_put_is_refused_on_both_paths_and_nothing_of_its_call_stays() {
    for large in [false, true] {
        let (mut op, mut state) = instance(large);
        let items = vec![Some(b"k".to_vec()), Some(b"x".to_vec()), Some(b"1".to_vec()), Some(b"y".to_vec())];
        let put = |state: u32, first_item: u32, item_count: u32, kind| StateUpdate {
            state,
            key: 0,
            kind,
            first_item,
            item_count,
        };
        // A good value update first, then a map put of three items.
        let updates = vec![put(0, 2, 1, UpdateKind::Set), put(2, 1, 3, UpdateKind::MapPut)];
        let err = op
            .apply_state_updates(&mut state, &wit::StateUpdates { items: to_wit(&items), updates })
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "plugin broke the weir:plugin contract: `map-put` with 3 items does not apply to state handle 2 (a map state)",
            "large: {large}"
        );
        assert!(contents(&mut op, &mut state).is_empty(), "large: {large}");
    }
}

/// An arbitrary record batch as a guest could return it: spans anywhere,
/// keys present or not, timestamps of any count.
fn raw_batch() -> impl Strategy<Value = wit::RecordBatch> {
    let span = prop_oneof![8 => 0u32..40, 1 => Just(u32::MAX), 1 => any::<u32>()];
    (prop::collection::vec(any::<u8>(), 0..32), prop::collection::vec(span, 0..48), 0usize..14)
        .prop_map(|(data, spans, n)| wit::RecordBatch { data, spans, timestamps: (0..n as i64).collect() })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// A returned batch is taken only when every record lies inside its
    /// data; what is taken reads back exactly as the spans say.
    #[test]
    fn a_returned_batch_is_taken_exactly_or_refused(batch in raw_batch()) {
        let spans = batch.spans.clone();
        let data = batch.data.clone();
        let n = batch.timestamps.len();
        match weir_wasm::batch_from_wit(batch) {
            Ok(taken) => {
                prop_assert_eq!(taken.len(), n);
                prop_assert_eq!(spans.len(), 4 * n);
                for (i, r) in taken.iter().enumerate() {
                    let s = &spans[4 * i..4 * i + 4];
                    let at = |o: u32, l: u32| &data[o as usize..(o + l) as usize];
                    prop_assert_eq!(r.value, at(s[2], s[3]));
                    prop_assert_eq!(r.key, (s[1] != u32::MAX).then(|| at(s[0], s[1])));
                    prop_assert_eq!(r.timestamp, i as i64);
                }
            }
            Err(e) => prop_assert!(matches!(e, weir_wasm::PluginError::Contract(_)), "{}", e),
        }
    }

    /// What the host would copy out of a call is counted without a panic,
    /// however the spans overlap (prefix sums: linear in the results), and
    /// never as less than the bytes each record refers to.
    #[test]
    fn what_a_call_comes_to_is_counted_without_a_panic_and_never_less_than_it_refers_to(outputs in raw_batch(), (items, updates) in call()) {
        let effects = wit::Effects {
            outputs: outputs.clone(),
            side_outputs: vec![wit::SideOutput { name: "late".into(), records: outputs.clone() }],
            state_updates: wit::StateUpdates { items: to_wit(&items), updates },
            timer_updates: Vec::new(),
            counters: vec![("c".into(), 1)],
            errors: Vec::new(),
        };
        let bytes = weir_wasm::effects_bytes(&effects);
        let referred: u64 = outputs
            .spans
            .chunks(4)
            .map(|s| s.get(3).copied().unwrap_or(0) as u64 + s.get(1).copied().filter(|&k| k != u32::MAX).unwrap_or(0) as u64)
            .sum();
        // Main and side output, the side output's name, the counter's name.
        let names = (16 + "late".len() + 16 + "c".len()) as u64;
        prop_assert!(bytes >= 2 * referred + names, "{} < {}", bytes, referred);
    }
}

/// Arbitrary items as a guest could return them: spans anywhere, of any count.
fn raw_items() -> impl Strategy<Value = wit::Items> {
    let span = prop_oneof![8 => 0u32..40, 1 => Just(u32::MAX), 1 => any::<u32>()];
    (prop::collection::vec(any::<u8>(), 0..32), prop::collection::vec(span, 0..12))
        .prop_map(|(data, spans)| wit::Items { data, spans })
}

/// The items the model reads from `items`, or `None` when one lies outside.
fn model_items(items: &wit::Items) -> Option<Vec<Vec<u8>>> {
    if !items.spans.len().is_multiple_of(2) {
        return None;
    }
    let at = |s: &[u32]| items.data.get(s[0] as usize..(s[0] as usize).checked_add(s[1] as usize)?).map(<[u8]>::to_vec);
    items.spans.chunks(2).map(at).collect()
}

/// Small limits, so that the budgets are reached often.
fn small_limits() -> weir_wasm::Limits {
    weir_wasm::Limits { max_emitted: 3, max_output_bytes: 120, ..weir_wasm::Limits::default() }
}

fn limit_or_contract(e: &weir_wasm::PluginError) -> bool {
    matches!(e, weir_wasm::PluginError::Contract(_) | weir_wasm::PluginError::Limit { .. })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// A window processor's values are taken exactly (each with its
    /// window's index) when they fit the windows, the emitted limit and
    /// the budget; otherwise refused whole, as a contract error or a limit.
    #[test]
    fn window_values_are_taken_exactly_or_refused(
        values in raw_items(),
        indexes in prop::collection::vec(prop_oneof![8 => 0u32..4, 1 => any::<u32>()], 0..6),
        keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4),
    ) {
        let windows: Vec<_> = keys.iter().map(|k| weir_wasm::WindowRef { key: k, start: 0, end: 10 }).collect();
        let limits = small_limits();
        let output = weir_wasm::wit_windows::WindowOutput { values: values.clone(), windows: indexes.clone() };
        let expected = model_items(&values).filter(|v| v.len() == indexes.len()).and_then(|v| {
            let bytes: u64 = values.spans.chunks(2).map(|s| 16 + u64::from(s[1])).sum::<u64>()
                + indexes.iter().map(|&w| keys.get(w as usize).map_or(0, |k| k.len() as u64)).sum::<u64>();
            let fits = indexes.len() as u64 <= limits.max_emitted && bytes <= limits.max_output_bytes;
            let known = indexes.iter().all(|&w| (w as usize) < windows.len());
            (fits && known).then(|| indexes.iter().copied().zip(v).collect::<Vec<_>>())
        });
        match (weir_wasm::window_results::window_output(&limits, &windows, output), expected) {
            (Ok(taken), Some(expected)) => prop_assert_eq!(taken, expected),
            (Err(e), None) => prop_assert!(limit_or_contract(&e), "{}", e),
            (got, expected) => prop_assert!(false, "got {:?}, the model says {:?}", got, expected),
        }
    }

    /// An aggregator's `add`: one accumulator per input, errors only for
    /// records of the batch, within the budget — or refused whole.
    #[test]
    fn added_accumulators_are_taken_exactly_or_refused(
        accumulators in raw_items(),
        expected_count in 0usize..5,
        records in 0usize..4,
        errors in prop::collection::vec((prop_oneof![8 => 0u32..4, 1 => any::<u32>()], "[a-z]{0,12}"), 0..3),
    ) {
        let limits = small_limits();
        let output = weir_wasm::wit_windows::AddOutput {
            accumulators: accumulators.clone(),
            errors: errors.iter().map(|(index, message)| wit::RecordError { index: *index, message: message.clone() }).collect(),
        };
        let bytes: u64 = accumulators.spans.chunks(2).map(|s| 16 + u64::from(s.get(1).copied().unwrap_or(0))).sum::<u64>()
            + errors.iter().map(|(_, m)| 16 + m.len() as u64).sum::<u64>();
        let model = model_items(&accumulators)
            .filter(|a| a.len() == expected_count && bytes <= limits.max_output_bytes)
            .filter(|_| errors.iter().all(|(i, _)| (*i as usize) < records));
        match (weir_wasm::window_results::add_output(&limits, output, expected_count, records), model) {
            (Ok((taken, failures)), Some(model)) => {
                prop_assert_eq!((0..taken.len()).map(|i| taken.get(i).to_vec()).collect::<Vec<_>>(), model);
                prop_assert_eq!(failures.iter().map(|f| (f.index, f.message.clone())).collect::<Vec<_>>(), errors);
            }
            (Err(e), None) => prop_assert!(limit_or_contract(&e), "{}", e),
            (got, model) => prop_assert!(false, "got {:?}, the model says {:?}", got.map(|(_, f)| f), model),
        }
    }
}
