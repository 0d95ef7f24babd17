//! Typed keyed-state handles.
//!
//! A handle is declared once in [`Operator::init`](crate::Operator::init)
//! through [`InitContext`](crate::InitContext) and then used with the
//! [`Context`] of each call: state is always scoped to the key of the record
//! or timer being handled, as in Flink. Values are encoded with a
//! [`Codec`] (binary by default).

use std::marker::PhantomData;

use serde::{Serialize, de::DeserializeOwned};

use crate::bindings::weir::plugin::state as host;
use crate::bindings::weir::plugin::types::StateValue;
use crate::codec::{Bin, Codec};
use crate::{Context, Error, Result};

/// Where a state's content lives during a call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handle {
    pub(crate) id: u32,
    /// Prefetched with each batch (fast), or read through host calls.
    pub(crate) prefetch: bool,
}

impl Handle {
    fn lazy_get(&self, ctx: &Context<'_>) -> Result<Option<StateValue>> {
        Ok(host::get(self.id, ctx.require_key()?))
    }
}

/// Ties a handle to its value types without owning any.
type Marker<T> = PhantomData<fn() -> T>;

fn mismatch() -> Error {
    Error::new("state content does not match the declared state kind")
}

/// One value per key (Flink's `ValueState`).
pub struct ValueState<T, C: Codec = Bin> {
    pub(crate) handle: Handle,
    pub(crate) _types: Marker<(T, C)>,
}

impl<T: Serialize + DeserializeOwned, C: Codec> ValueState<T, C> {
    /// The current key's value.
    pub fn get(&self, ctx: &mut Context<'_>) -> Result<Option<T>> {
        if !self.handle.prefetch {
            return match self.handle.lazy_get(ctx)? {
                Some(StateValue::Value(bytes)) => Ok(Some(C::decode(&bytes)?)),
                Some(_) => Err(mismatch()),
                None => Ok(None),
            };
        }
        let k = ctx.key_index()?;
        ctx.table.value(k, self.handle.id)?.map(C::decode).transpose()
    }

    /// Replaces the current key's value.
    pub fn set(&self, ctx: &mut Context<'_>, value: &T) -> Result<()> {
        if !self.handle.prefetch {
            host::set(self.handle.id, ctx.require_key()?, &C::encode(value)?);
            return Ok(());
        }
        let k = ctx.key_index()?;
        ctx.table.set_value_with(k, self.handle.id, |out| C::encode_into(value, out))
    }

    /// Removes the current key's value.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<()> {
        clear(self.handle, ctx)
    }
}

fn clear(handle: Handle, ctx: &mut Context<'_>) -> Result<()> {
    if !handle.prefetch {
        host::clear(handle.id, ctx.require_key()?);
        return Ok(());
    }
    let k = ctx.key_index()?;
    ctx.table.clear(k, handle.id);
    Ok(())
}

/// A list of values per key (Flink's `ListState`).
pub struct ListState<T, C: Codec = Bin> {
    pub(crate) handle: Handle,
    pub(crate) _types: Marker<(T, C)>,
}

impl<T: Serialize + DeserializeOwned, C: Codec> ListState<T, C> {
    /// The current key's list (empty when there is none).
    pub fn get(&self, ctx: &mut Context<'_>) -> Result<Vec<T>> {
        if !self.handle.prefetch {
            return match self.handle.lazy_get(ctx)? {
                Some(StateValue::List(items)) => items.iter().map(|b| C::decode(b)).collect(),
                Some(_) => Err(mismatch()),
                None => Ok(Vec::new()),
            };
        }
        let k = ctx.key_index()?;
        ctx.table.list(k, self.handle.id)?.map(C::decode).collect()
    }

    /// Appends a value to the current key's list.
    pub fn add(&self, ctx: &mut Context<'_>, value: &T) -> Result<()> {
        if !self.handle.prefetch {
            host::append(self.handle.id, ctx.require_key()?, &[C::encode(value)?]);
            return Ok(());
        }
        let k = ctx.key_index()?;
        ctx.table.push_with(k, self.handle.id, |out| C::encode_into(value, out))
    }

    /// Replaces the current key's list.
    pub fn update(&self, ctx: &mut Context<'_>, values: &[T]) -> Result<()> {
        if !self.handle.prefetch {
            let encoded = values.iter().map(|v| C::encode(v)).collect::<Result<Vec<_>>>()?;
            let key = ctx.require_key()?;
            host::clear(self.handle.id, key);
            host::append(self.handle.id, key, &encoded);
            return Ok(());
        }
        let k = ctx.key_index()?;
        drop(ctx.table.list(k, self.handle.id)?); // checks the kind
        ctx.table.clear(k, self.handle.id);
        values.iter().try_for_each(|v| ctx.table.push_with(k, self.handle.id, |out| C::encode_into(v, out)))
    }

    /// Removes the current key's list.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<()> {
        clear(self.handle, ctx)
    }
}

/// A map per key (Flink's `MapState`). Entries are ordered by their encoded
/// user key.
pub struct MapState<K, V, C: Codec = Bin> {
    pub(crate) handle: Handle,
    pub(crate) _types: Marker<(K, V, C)>,
}

/// How many entries one `map-range` host call returns at most.
const RANGE_PAGE: u32 = 256;

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned, C: Codec> MapState<K, V, C> {
    /// The value for `map_key` under the current key.
    pub fn get(&self, ctx: &mut Context<'_>, map_key: &K) -> Result<Option<V>> {
        if !self.handle.prefetch {
            let mk = C::encode(map_key)?;
            return host::map_get(self.handle.id, ctx.require_key()?, &mk).map(|b| C::decode(&b)).transpose();
        }
        let (k, id) = (ctx.key_index()?, self.handle.id);
        ctx.table
            .with_scratch(|mk| C::encode_into(map_key, mk), |t, mk| t.map_get(k, id, mk)?.map(C::decode).transpose())
    }

    /// Whether `map_key` is present under the current key.
    pub fn contains(&self, ctx: &mut Context<'_>, map_key: &K) -> Result<bool> {
        if !self.handle.prefetch {
            return Ok(host::map_get(self.handle.id, ctx.require_key()?, &C::encode(map_key)?).is_some());
        }
        let (k, id) = (ctx.key_index()?, self.handle.id);
        ctx.table.with_scratch(|mk| C::encode_into(map_key, mk), |t, mk| Ok(t.map_get(k, id, mk)?.is_some()))
    }

    /// Inserts or replaces an entry under the current key.
    pub fn put(&self, ctx: &mut Context<'_>, map_key: &K, value: &V) -> Result<()> {
        if !self.handle.prefetch {
            let (mk, v) = (C::encode(map_key)?, C::encode(value)?);
            host::map_put(self.handle.id, ctx.require_key()?, &mk, &v);
            return Ok(());
        }
        let (k, id) = (ctx.key_index()?, self.handle.id);
        ctx.table.with_scratch(
            |mk| C::encode_into(map_key, mk),
            |t, mk| t.map_put_with(k, id, mk, |out| C::encode_into(value, out)),
        )
    }

    /// Removes an entry under the current key.
    pub fn remove(&self, ctx: &mut Context<'_>, map_key: &K) -> Result<()> {
        if !self.handle.prefetch {
            host::map_remove(self.handle.id, ctx.require_key()?, &C::encode(map_key)?);
            return Ok(());
        }
        let (k, id) = (ctx.key_index()?, self.handle.id);
        ctx.table.with_scratch(|mk| C::encode_into(map_key, mk), |t, mk| t.map_remove(k, id, mk))
    }

    /// All entries under the current key, in encoded-key order.
    pub fn entries(&self, ctx: &mut Context<'_>) -> Result<Vec<(K, V)>> {
        let decode = |(k, v): (&[u8], &[u8])| Ok((C::decode(k)?, C::decode(v)?));
        if !self.handle.prefetch {
            let key = ctx.require_key()?.to_vec();
            let mut out = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = host::map_range(self.handle.id, &key, after.as_deref(), RANGE_PAGE);
                let full = page.len() as u32 == RANGE_PAGE;
                for (k, v) in &page {
                    out.push(decode((k.as_slice(), v.as_slice()))?);
                }
                after = page.into_iter().last().map(|(k, _)| k);
                if !full || after.is_none() {
                    return Ok(out);
                }
            }
        }
        let k = ctx.key_index()?;
        ctx.table.map_iter(k, self.handle.id)?.map(decode).collect()
    }

    /// Whether the current key has no entries.
    pub fn is_empty(&self, ctx: &mut Context<'_>) -> Result<bool> {
        if !self.handle.prefetch {
            return Ok(host::map_range(self.handle.id, ctx.require_key()?, None, 1).is_empty());
        }
        let k = ctx.key_index()?;
        Ok(ctx.table.map_iter(k, self.handle.id)?.next().is_none())
    }

    /// Removes every entry under the current key.
    pub fn clear(&self, ctx: &mut Context<'_>) -> Result<()> {
        clear(self.handle, ctx)
    }
}
