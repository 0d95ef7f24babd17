//! A backend's whole content as bytes, and back: what a checkpoint stores
//! for one operator of one task. The format is the backend's logical view
//! (states by name, entries by key group and key, timers), so a snapshot
//! taken from one backend restores into either, and entries carry their key
//! group so a restore can keep only the groups it owns.
//!
//! Layout (integers little-endian, byte strings `u32` length + bytes):
//! `WEIRSNAP1`, state count `u32`, per state: name, kind `u8`, entry count
//! `u64`, per entry: key group `u16`, key, content (a value: bytes; a list:
//! `u32` count + items; a map: `u32` count + key, value pairs); then timer
//! count `u64`, per timer: key group `u16`, time `i64`, domain `u8`, key.

use weir_types::TimeDomain;

use crate::{KeyGroup, KeyedStateBackend, Result, StateContent, StateError, StateKind, TimerEntry};

const MAGIC: &[u8] = b"WEIRSNAP1";

fn corrupt(what: &str) -> StateError {
    StateError::Corrupt(format!("state snapshot: {what}"))
}

fn kind_code(kind: StateKind) -> u8 {
    match kind {
        StateKind::Value => 0,
        StateKind::List => 1,
        StateKind::Map => 2,
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Appends the backend's whole content to `out`.
pub fn write_snapshot(backend: &mut dyn KeyedStateBackend, out: &mut Vec<u8>) -> Result<()> {
    let mut w = Writer(out);
    w.0.extend_from_slice(MAGIC);
    let states = backend.states();
    w.u32(states.len() as u32);
    for (id, (name, kind)) in states.iter().enumerate() {
        let entries = backend.entries(crate::StateId(id as u32))?;
        w.bytes(name.as_bytes());
        w.0.push(kind_code(*kind));
        w.0.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (kg, key, content) in &entries {
            w.0.extend_from_slice(&kg.to_le_bytes());
            w.bytes(key);
            match content {
                StateContent::Value(v) => w.bytes(v),
                StateContent::List(items) => {
                    w.u32(items.len() as u32);
                    items.iter().for_each(|i| w.bytes(i));
                }
                StateContent::Map(entries) => {
                    w.u32(entries.len() as u32);
                    for (k, v) in entries {
                        w.bytes(k);
                        w.bytes(v);
                    }
                }
            }
        }
    }
    let timers = backend.timers()?;
    w.0.extend_from_slice(&(timers.len() as u64).to_le_bytes());
    for (kg, t) in &timers {
        w.0.extend_from_slice(&kg.to_le_bytes());
        w.0.extend_from_slice(&t.timestamp.to_le_bytes());
        w.0.push(match t.domain {
            TimeDomain::EventTime => 0,
            TimeDomain::ProcessingTime => 1,
        });
        w.bytes(&t.key);
    }
    Ok(())
}

/// Writes a snapshot's entries and timers of the key groups `keep` accepts
/// into `backend` (which should be empty), registering states by name.
pub fn restore_snapshot(
    backend: &mut dyn KeyedStateBackend,
    bytes: &[u8],
    keep: impl Fn(KeyGroup) -> bool,
) -> Result<()> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a Weir state snapshot"));
    }
    for _ in 0..r.u32()? {
        let name = std::str::from_utf8(r.bytes()?).map_err(|_| corrupt("state name is not UTF-8"))?.to_string();
        let kind = match r.u8()? {
            0 => StateKind::Value,
            1 => StateKind::List,
            2 => StateKind::Map,
            other => return Err(corrupt(&format!("unknown state kind {other}"))),
        };
        let id = backend.register(&name, kind)?;
        for _ in 0..r.u64()? {
            let kg = r.u16()?;
            let key = r.bytes()?;
            match kind {
                StateKind::Value => {
                    let v = r.bytes()?;
                    if keep(kg) {
                        backend.set_value(id, kg, key, v)?;
                    }
                }
                StateKind::List => {
                    for _ in 0..r.u32()? {
                        let item = r.bytes()?;
                        if keep(kg) {
                            backend.append(id, kg, key, item)?;
                        }
                    }
                }
                StateKind::Map => {
                    for _ in 0..r.u32()? {
                        let (k, v) = (r.bytes()?, r.bytes()?);
                        if keep(kg) {
                            backend.map_put(id, kg, key, k, v)?;
                        }
                    }
                }
            }
        }
    }
    for _ in 0..r.u64()? {
        let kg = r.u16()?;
        let timestamp = i64::from_le_bytes(r.array()?);
        let domain = match r.u8()? {
            0 => TimeDomain::EventTime,
            1 => TimeDomain::ProcessingTime,
            other => return Err(corrupt(&format!("unknown time domain {other}"))),
        };
        let key = r.bytes()?.to_vec();
        if keep(kg) {
            backend.add_timer(kg, &TimerEntry { timestamp, key, domain })?;
        }
    }
    if !r.0.is_empty() {
        return Err(corrupt("trailing bytes"));
    }
    backend.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[test]
    fn round_trips_every_kind_and_filters_key_groups() {
        let mut a = MemoryBackend::new(8);
        let v = a.register("v", StateKind::Value).unwrap();
        let l = a.register("l", StateKind::List).unwrap();
        let m = a.register("m", StateKind::Map).unwrap();
        a.set_value(v, 1, b"k1", b"one").unwrap();
        a.set_value(v, 5, b"k5", b"five").unwrap();
        a.append(l, 1, b"k1", b"x").unwrap();
        a.append(l, 1, b"k1", b"y").unwrap();
        a.map_put(m, 5, b"k5", b"a", b"1").unwrap();
        let t = TimerEntry { timestamp: -3, key: b"k5".to_vec(), domain: TimeDomain::ProcessingTime };
        a.add_timer(5, &t).unwrap();
        let mut bytes = Vec::new();
        write_snapshot(&mut a, &mut bytes).unwrap();

        let mut all = MemoryBackend::new(8);
        restore_snapshot(&mut all, &bytes, |_| true).unwrap();
        for (id, name) in [(v, "v"), (l, "l"), (m, "m")] {
            assert_eq!(all.states()[id.0 as usize].0, name);
            assert_eq!(all.entries(id).unwrap(), a.entries(id).unwrap());
        }
        assert_eq!(all.timers().unwrap(), vec![(5, t)]);

        let mut low = MemoryBackend::new(8);
        restore_snapshot(&mut low, &bytes, |kg| kg < 4).unwrap();
        assert_eq!(low.entries(v).unwrap(), vec![(1, b"k1".to_vec(), StateContent::Value(b"one".to_vec()))]);
        assert!(low.entries(m).unwrap().is_empty());
        assert!(low.timers().unwrap().is_empty());

        let err = restore_snapshot(&mut MemoryBackend::new(8), &bytes[..bytes.len() - 1], |_| true).unwrap_err();
        assert_eq!(err.to_string(), StateError::Corrupt("state snapshot: truncated".into()).to_string());
    }
}
