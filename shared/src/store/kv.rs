//! Expiring values on top of [`KvStore`].
//!
//! Spin's key-value store has no TTL, so each value carries its deadline: an
//! 8-byte big-endian Unix time followed by the payload. A read past the
//! deadline deletes the entry and reports it missing.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::KvStore;
use crate::error::{Error, Result};

/// Stores `value` under `key` until `expires_at` (Unix seconds).
pub fn put(store: &dyn KvStore, key: &str, value: &[u8], expires_at: i64) -> Result<()> {
    let mut buf = Vec::with_capacity(8 + value.len());
    buf.extend_from_slice(&expires_at.to_be_bytes());
    buf.extend_from_slice(value);
    store.set(key, &buf)
}

/// The value under `key` if it has not expired at `now`.
pub fn get(store: &dyn KvStore, key: &str, now: i64) -> Result<Option<Vec<u8>>> {
    let Some(mut buf) = store.get(key)? else {
        return Ok(None);
    };
    let Some(deadline) = buf.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        // Not written by `put`: treat it as garbage and drop it.
        store.delete(key)?;
        return Ok(None);
    };
    if i64::from_be_bytes(deadline) <= now {
        store.delete(key)?;
        return Ok(None);
    }
    buf.drain(..8);
    Ok(Some(buf))
}

/// [`put`] for a value serialised as JSON.
pub fn put_json<T: Serialize>(
    store: &dyn KvStore,
    key: &str,
    value: &T,
    expires_at: i64,
) -> Result<()> {
    let bytes =
        serde_json::to_vec(value).map_err(|e| Error::Internal(format!("encode {key}: {e}")))?;
    put(store, key, &bytes, expires_at)
}

/// [`get`] for a value stored as JSON. A value that no longer decodes (an old
/// format) is treated as missing.
pub fn get_json<T: DeserializeOwned>(
    store: &dyn KvStore,
    key: &str,
    now: i64,
) -> Result<Option<T>> {
    Ok(get(store, key, now)?.and_then(|b| serde_json::from_slice(&b).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::native::MemoryKv;

    #[test]
    fn values_expire_at_their_deadline() {
        let kv = MemoryKv::default();
        put(&kv, "k", b"v", 100).unwrap();
        assert_eq!(get(&kv, "k", 99).unwrap(), Some(b"v".to_vec()));
        assert_eq!(get(&kv, "k", 100).unwrap(), None);
        // The expired entry is gone, not just hidden.
        assert_eq!(kv.get("k").unwrap(), None);
    }

    #[test]
    fn json_round_trip_and_garbage() {
        let kv = MemoryKv::default();
        put_json(&kv, "j", &vec![1, 2, 3], 50).unwrap();
        assert_eq!(
            get_json::<Vec<i32>>(&kv, "j", 10).unwrap(),
            Some(vec![1, 2, 3])
        );
        kv.set("bad", b"x").unwrap();
        assert_eq!(get(&kv, "bad", 0).unwrap(), None);
    }
}
